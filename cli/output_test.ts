import assert from "node:assert/strict";
import { formatBytes, formatDuration, oneLine, OrderedOutput } from "./output.ts";

Deno.test("formatBytes() and formatDuration() read well", () => {
  assert.equal(formatBytes(512), "512 bytes");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(5 * 1024 ** 3), "5.0 GiB");
  assert.equal(formatDuration(850), "850ms");
  assert.equal(formatDuration(12_340), "12.3s");
  assert.equal(formatDuration(245_000), "4m05s");
  assert.equal(formatDuration(7_380_000), "2h03m");
  assert.equal(oneLine("first\nsecond"), "first …");
  assert.equal(oneLine("abcdef", 4), "abc…");
});

Deno.test("OrderedOutput holds text back while held and keeps its order", async () => {
  const written: string[] = [];
  const output = new OrderedOutput(async (text) => {
    await Promise.resolve();
    written.push(text);
  });
  await output.write("a");
  output.hold();
  await output.write("b");
  await output.write("c");
  assert.deepEqual(written, ["a"]);
  await output.release();
  await output.write("d");
  assert.deepEqual(written, ["a", "b", "c", "d"]);
});
