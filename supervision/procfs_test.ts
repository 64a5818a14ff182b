import assert from "node:assert/strict";
import { groupProcessesByEnv, isSameLiveProcess, readStat } from "./procfs.ts";

Deno.test("groupProcessesByEnv() finds processes by a variable's value", async () => {
  const marker = `procfs-test-${crypto.randomUUID()}`;
  const child = new Deno.Command("sleep", {
    args: ["30"],
    env: { JOBHEAD_PROCFS_TEST: marker },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const groups = await groupProcessesByEnv("JOBHEAD_PROCFS_TEST");
    assert.deepEqual(groups.get(marker), [child.pid]);
    const stat = readStat(child.pid)!;
    assert.equal(stat.ppid, Deno.pid);
    assert.ok(isSameLiveProcess(child.pid, stat.startTicks));
    assert.ok(!isSameLiveProcess(child.pid, stat.startTicks + 1));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
