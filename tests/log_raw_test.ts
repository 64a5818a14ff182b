/** End to end: a log's exact bytes with HTTP ranges, its line numbers, and search over it. */
import assert from "node:assert/strict";
import { startHead, waitForStatus } from "./harness.ts";
import { assertError, submitJob } from "./helpers.ts";

/** `line-000\n` … `line-099\n`: 100 lines of 9 bytes. */
const PRINT_HUNDRED_LINES =
  "i=0; while [ $i -lt 100 ]; do printf 'line-%03d\\n' $i; i=$((i+1)); done";

Deno.test("GET /api/jobs/{id}/logs/raw answers every byte value exactly", async () => {
  await using head = await startHead();
  const id = await submitJob(head, {
    entrypoint: 'i=0; while [ $i -lt 256 ]; do printf "\\\\$(printf %o $i)"; i=$((i+1)); done',
  });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  const res = await head.fetch(`/api/jobs/${id}/logs/raw`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(res.headers.get("accept-ranges"), "bytes");
  assert.equal(res.headers.get("content-length"), "256");
  const bytes = new Uint8Array(await res.arrayBuffer());
  assert.deepEqual(bytes, Uint8Array.from({ length: 256 }, (_, i) => i));
});

Deno.test("GET /api/jobs/{id}/logs/raw serves single byte ranges, 416 past the end, 404 for no job", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: PRINT_HUNDRED_LINES });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  const get = async (range?: string) => {
    const res = await head.fetch(`/api/jobs/${id}/logs/raw`, {
      headers: range ? { range } : {},
    });
    return { status: res.status, range: res.headers.get("content-range"), text: await res.text() };
  };
  assert.deepEqual(await get("bytes=0-8"), {
    status: 206,
    range: "bytes 0-8/900",
    text: "line-000\n",
  });
  assert.deepEqual(await get("bytes=-9"), {
    status: 206,
    range: "bytes 891-899/900",
    text: "line-099\n",
  });
  assert.deepEqual(await get("bytes=882-"), {
    status: 206,
    range: "bytes 882-899/900",
    text: "line-098\nline-099\n",
  });
  const clamped = await get("bytes=891-5000");
  assert.deepEqual([clamped.status, clamped.range], [206, "bytes 891-899/900"]);
  const whole = await get();
  assert.deepEqual([whole.status, whole.range, whole.text.length], [200, null, 900]);
  // Several ranges, another unit or nonsense: the whole log (RFC 9110 lets a server ignore them).
  for (const ignored of ["bytes=0-1,5-6", "lines=1-2", "bytes=5-2", "bytes=x-"]) {
    const res = await get(ignored);
    assert.deepEqual([res.status, res.text.length], [200, 900], ignored);
  }
  for (const unsatisfiable of ["bytes=900-", "bytes=1000-2000", "bytes=-0"]) {
    assert.deepEqual(await get(unsatisfiable), {
      status: 416,
      range: "bytes */900",
      text: "",
    }, unsatisfiable);
  }
  assertError(await head.json("/api/jobs/no-such-job/logs/raw"), 404, "NOT_FOUND");
});

Deno.test("GET /api/jobs/{id}/logs/lines and /logs/search number and find lines over the file", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: PRINT_HUNDRED_LINES });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  const json = async (path: string) => {
    const res = await head.json(`/api/jobs/${id}/logs/${path}`);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  assert.deepEqual(await json("lines?offset=-9"), { line: 99, offset: 891, size: 900 });
  assert.deepEqual(await json("lines?offset=454"), { line: 50, offset: 454, size: 900 });
  assert.deepEqual(await json("lines?line=50"), { line: 50, offset: 450, size: 900 });
  assert.deepEqual(await json("lines?line=5000"), { line: 99, offset: 891, size: 900 });

  const lines = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => ({ line: from + i, offset: (from + i) * 9 }));
  // Either case; occurrences from `from` on, or before it going backwards.
  assert.deepEqual(await json("search?q=LINE-05"), {
    matches: lines(50, 60),
    next: null,
    size: 900,
  });
  assert.deepEqual(await json("search?q=ne-05&from=456"), {
    matches: lines(51, 60),
    next: null,
    size: 900,
  });
  assert.deepEqual(await json("search?q=ne-05&from=456&direction=backward"), {
    matches: lines(50, 51),
    next: null,
    size: 900,
  });
  assert.deepEqual(await json("search?q=line-09&from=900&direction=backward"), {
    matches: lines(90, 100).reverse(),
    next: null,
    size: 900,
  });
  assert.deepEqual((await json("search?q=nowhere")).matches, []);

  for (const bad of ["search", "search?q=", "search?q=a&direction=up", "lines?offset=x", "lines"]) {
    assertError(await head.json(`/api/jobs/${id}/logs/${bad}`), 400, "BAD_REQUEST");
  }
  assertError(await head.json("/api/jobs/no-such-job/logs/search?q=a"), 404, "NOT_FOUND");
});
