import assert from "node:assert/strict";
import { join } from "node:path";
import { Supervisor, withoutKeys } from "./supervisor.ts";
import { readStat } from "./procfs.ts";

Deno.test("withoutKeys() drops exactly the named variables", () => {
  assert.deepEqual(withoutKeys({ A: "1", B: "2", C: "3" }, ["B", "X"]), { A: "1", C: "3" });
});

Deno.test({
  name:
    "Supervisor.spawn() withholds the head's configuration from every actor, and adds its own env",
  sanitizeOps: true,
  // libc, loaded once for mkfifo, stays loaded for the life of the process by design.
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "jobhead-supervisor-" });
    Deno.env.set("JOBHEAD_UNIT_SECRET", "s3cret");
    Deno.env.set("JOBHEAD_UNIT_KEPT", "kept");
    const supervisor = new Supervisor(join(dir, "run"), {
      withheldEnv: ["JOBHEAD_UNIT_SECRET"],
      cgroup: "off",
    });
    try {
      await supervisor.start();
      const logPath = join(dir, "env.log");
      const process = supervisor.spawn({
        id: "unit-env",
        command: "env",
        logPath,
        env: { OWN: "own", JOBHEAD_UNIT_SECRET: "given on purpose" },
      });
      assert.deepEqual(await process.exited.then((r) => r.kind === "exited" && r.code), 0);
      await supervisor.release(process);
      const env = await Deno.readTextFile(logPath);
      assert.doesNotMatch(env, /s3cret/);
      assert.match(env, /^JOBHEAD_UNIT_SECRET=given on purpose$/m, "the spawn's own env wins");
      assert.match(env, /^JOBHEAD_UNIT_KEPT=kept$/m);
      assert.match(env, /^OWN=own$/m);
      assert.match(env, /^JOBHEAD_ACTOR_ID=unit-env$/m);
      assert.deepEqual([...Deno.readDirSync(join(dir, "run", "fifo"))], [], "released");
    } finally {
      await supervisor.close();
      Deno.env.delete("JOBHEAD_UNIT_SECRET");
      Deno.env.delete("JOBHEAD_UNIT_KEPT");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "Supervisor.release() right when a command's end is known leaves no exit file behind",
  sanitizeOps: true,
  // libc, loaded once for mkfifo, stays loaded for the life of the process by design.
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "jobhead-supervisor-" });
    const runDir = join(dir, "run");
    const supervisor = new Supervisor(runDir);
    try {
      await supervisor.start();
      for (let i = 0; i < 20; i++) {
        const process = supervisor.spawn({
          id: `quick-${i}`,
          command: "true",
          logPath: join(dir, "quick.log"),
        });
        await process.exited;
        await supervisor.release(process);
        // The watchdog kills its group last; once the group is gone it can write nothing.
        await waitFor(`the group of quick-${i} to be gone`, () => !groupExists(process.pid));
      }
      const left = [...Deno.readDirSync(runDir)].filter((e) => e.isFile).map((e) => e.name);
      assert.deepEqual(left, [], "stray exit files");
    } finally {
      await supervisor.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Whether any live process is in process group `pgid`. */
function groupExists(pgid: number): boolean {
  for (const entry of Deno.readDirSync("/proc")) {
    const stat = /^\d+$/.test(entry.name) ? readStat(Number(entry.name)) : undefined;
    if (stat?.pgid === pgid && stat.state !== "Z") return true;
  }
  return false;
}

/** Polls `probe` until it holds: no event says when a process group is empty. */
async function waitFor(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
