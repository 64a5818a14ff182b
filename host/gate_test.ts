import assert from "node:assert/strict";
import { defaultMaxConnections, readOpenFilesLimit } from "./gate.ts";

Deno.test("defaultMaxConnections() leaves descriptors for the rest of the head", () => {
  assert.equal(defaultMaxConnections(1024), 192, "ulimit -n 1024: (1024 - 256) / 4");
  assert.equal(defaultMaxConnections(20_000), 4096);
  assert.equal(defaultMaxConnections(Infinity), 4096);
  assert.equal(defaultMaxConnections(100), 1, "one connection, however low the limit");
});

Deno.test("readOpenFilesLimit() reads this process's soft limit", () => {
  const limit = readOpenFilesLimit();
  assert.ok(limit > 0);
});
