import assert from "node:assert/strict";

/**
 * In a process of its own (V8's flags are process-wide): the young generation grown by
 * objects that survive, then collected; and whether `gc` reached any context after.
 */
const PROBE = `
import { getHeapSpaceStatistics } from "node:v8";
import { runInNewContext } from "node:vm";
import { collectStartupGarbage } from ${JSON.stringify(new URL("./heap.ts", import.meta.url).href)};
const youngKb = () =>
  getHeapSpaceStatistics().find((s) => s.space_name === "new_space").physical_space_size >> 10;
const survivors = [];
for (let i = 0; i < 300_000; i++) survivors.push({ i, text: "x" + i });
const before = youngKb();
const collected = collectStartupGarbage();
console.log(JSON.stringify({
  before,
  collected,
  after: youngKb(),
  survivors: survivors.length,
  gcHere: typeof globalThis.gc,
  gcInNewContext: runInNewContext("typeof gc"),
}));
`;

Deno.test("one collection after start shrinks the young generation and exposes no gc()", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", PROBE],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const probe = JSON.parse(new TextDecoder().decode(stdout));
  assert.equal(probe.collected, true);
  assert.equal(probe.survivors, 300_000);
  assert.ok(probe.before >= 4096, `young generation grown to ${probe.before} kB`);
  assert.ok(probe.after <= 1024, `young generation ${probe.after} kB after the collection`);
  assert.equal(probe.gcHere, "undefined");
  assert.equal(probe.gcInNewContext, "undefined");
});
