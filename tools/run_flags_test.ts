import assert from "node:assert/strict";
import { headRunFlags } from "./run_flags.ts";
import { startHead } from "../tests/harness.ts";

Deno.test("deno.json's start, node and jobhead tasks run main.ts with the same flags", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const flags = headRunFlags();
  assert.ok(flags.includes("--allow-all"));
  assert.ok(flags.includes("--v8-flags=--max-semi-space-size=4"));
  const prefix = ["deno", "run", ...flags, "main.ts"].join(" ");
  assert.equal(tasks.start, `${prefix} start`);
  assert.equal(tasks.node, `${prefix} node`);
  assert.equal(tasks.jobhead, prefix);
});

Deno.test("heads under test run with the flags of `deno task start`", async () => {
  await using head = await startHead();
  const cmdline = (await Deno.readTextFile(`/proc/${head.pid}/cmdline`)).split("\0");
  const main = cmdline.findIndex((arg) => arg.endsWith("/main.ts"));
  assert.deepEqual(cmdline.slice(cmdline.indexOf("run") + 1, main), headRunFlags());
});
