import assert from "node:assert/strict";
import { join } from "node:path";
import { LogLines, SEARCH_WINDOW_BYTES } from "./log_lines.ts";

/** A temp log of `lines` numbered lines of 32 bytes; removed on dispose. */
async function aLog(lines: number, extra: (text: string[]) => void = () => {}) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-lines-" });
  const path = join(dir, "job.log");
  const text = Array.from(
    { length: lines },
    (_, i) => `line ${String(i).padStart(10, "0")} abcdefghijklmno\n`,
  );
  extra(text);
  await Deno.writeTextFile(path, text.join(""));
  return { path, text, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

Deno.test("LogLines numbers lines and finds where they start, across remembered megabytes", async () => {
  await using log = await aLog(100_000); // 3.2 MB
  const lines = new LogLines();
  for (const line of [0, 1, 32_767, 32_768, 65_537, 99_999]) {
    assert.equal(await lines.lineAt("job", log.path, line * 32), line);
    assert.equal(await lines.lineAt("job", log.path, line * 32 + 5), line);
    assert.equal(await lines.offsetOf("job", log.path, line), line * 32);
  }
  assert.equal(
    await lines.offsetOf("job", log.path, 200_000),
    99_999 * 32,
    "past the end: the last",
  );
  assert.equal(await lines.lineAt("job", log.path, 10 << 20), 100_000, "past the end: the size");
});

Deno.test("LogLines.search() scans a window at a time, and a hit straddling a window's end counts", async () => {
  const count = Math.ceil((SEARCH_WINDOW_BYTES * 1.5) / 32);
  // The first window (from byte 284) ends inside this line's NEEDLE, at byte 28 of the line.
  const straddle = SEARCH_WINDOW_BYTES / 32 + 8;
  await using log = await aLog(count, (text) => {
    text[7] = "the Needle is here, line seven.\n";
    text[straddle] = "xxxxxxxxxxxxxxxxxxxxxxxxxNEEDLE\n";
    text[count - 2] = "and a needle near the end......\n";
  });
  const lines = new LogLines();
  const forward = await lines.search("job", log.path, "needle", { from: 284 });
  assert.deepEqual(forward.matches, [{ line: straddle, offset: straddle * 32 }]);
  assert.equal(forward.next, 284 + SEARCH_WINDOW_BYTES);
  const rest = await lines.search("job", log.path, "needle", { from: forward.next! });
  assert.deepEqual(rest, {
    matches: [{ line: count - 2, offset: (count - 2) * 32 }],
    next: null,
    size: count * 32,
  });
  const backward = await lines.search("job", log.path, "NEEDLE", {
    from: (count - 2) * 32,
    backward: true,
  });
  assert.deepEqual(backward.matches, [{ line: straddle, offset: straddle * 32 }]);
  const start = await lines.search("job", log.path, "needle", {
    from: backward.next!,
    backward: true,
  });
  assert.deepEqual(start, { matches: [{ line: 7, offset: 7 * 32 }], next: null, size: count * 32 });
});
