import assert from "node:assert/strict";
import { byteRange } from "./raw_log.ts";

Deno.test("byteRange() reads one range, clamps its end, and tells unsatisfiable from ignored", () => {
  assert.deepEqual(byteRange("bytes=0-9", 100), { start: 0, end: 9 });
  assert.deepEqual(byteRange("bytes=90-", 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange("bytes=90-500", 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange("bytes=-10", 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange("bytes=-500", 100), { start: 0, end: 99 });
  for (const unsatisfiable of ["bytes=100-", "bytes=200-300", "bytes=-0"]) {
    assert.equal(byteRange(unsatisfiable, 100), "unsatisfiable", unsatisfiable);
  }
  assert.equal(byteRange("bytes=-5", 0), "unsatisfiable");
  for (const ignored of [undefined, "", "bytes=-", "bytes=5-2", "bytes=0-1,3-4", "items=0-1"]) {
    assert.equal(byteRange(ignored, 100), undefined, String(ignored));
  }
});
