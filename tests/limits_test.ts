/**
 * End to end: a job held to its `entrypoint_memory` by the kernel, and with `--enforce-cpu`
 * to its `entrypoint_num_cpus`, where a cgroup controller is writable (as root, or with a
 * delegated subtree); skipped with a message elsewhere. The head names at start where each
 * limit is held, and leaves no cgroup of an ended job behind.
 */
import assert from "node:assert/strict";
import { type RunningHead, startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { jobLogs, q, submitJob } from "./helpers.ts";
import { supervisorActorId } from "../modules/jobs/supervisor_actors.ts";

const MIB = 1024 ** 2;

/** The parent cgroup and version a head said it holds `what` limits in, if any. */
function limitPlaceOf(head: RunningHead, what: string): { version: 1 | 2; path: string } | null {
  const stderr = head.output().stderr;
  const line = new RegExp(`^jobhead: ${what} use cgroup v([12]) at (\\S+)$`, "m").exec(stderr);
  if (line) return { version: Number(line[1]) as 1 | 2, path: line[2] };
  assert.match(stderr, new RegExp(`^jobhead: ${what} are admission only: `, "m"));
  return null;
}

/** The actors' cgroups left in a parent cgroup. */
async function actorCgroupsIn(parent: string): Promise<string[]> {
  const left: string[] = [];
  try {
    for await (const entry of Deno.readDir(parent)) {
      if (entry.isDirectory && entry.name.startsWith("actor-")) left.push(entry.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return left;
}

Deno.test({
  name: "a job past its entrypoint_memory is killed by the kernel and ends FAILED saying so",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async (t) => {
    await using head = await startHead();
    const place = limitPlaceOf(head, "memory limits");
    if (!place) {
      console.warn("skipped: no writable cgroup memory controller, memory is admission only");
      await t.step({ name: "needs a cgroup memory controller", ignore: true, fn: () => {} });
      return;
    }
    const hog = await submitJob(head, {
      entrypoint: "echo allocating; x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived",
      entrypoint_memory: 64 * MIB,
    });
    const within = await submitJob(head, {
      entrypoint: "x=$(head -c 1000000 /dev/zero | tr '\\0' a); echo ${#x}",
      entrypoint_memory: 64 * MIB,
    });
    // Too little to start a process in: the kernel kills the supervisor or the command.
    const tiny = await submitJob(head, { entrypoint: "echo started", entrypoint_memory: 1024 });
    const failed = await waitForStatus(head, hog, ["FAILED"]);
    assert.equal(failed.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
    assert.match(
      failed.message,
      /^Job ran out of its memory limit \(entrypoint_memory 64 MiB\) and (was killed by the kernel \(exit code (-9|137)\)|the kernel killed a process of it)/,
    );
    // The shell may add a word on the kill (dash: "Killed").
    assert.match(
      failed.message,
      /Last available logs \(truncated to 20,000 chars\):\nallocating\n/,
    );
    assert.doesNotMatch(await jobLogs(head, hog), /survived/);
    const starved = await waitForStatus(head, tiny, ["FAILED"]);
    assert.match(
      starved.message,
      /^Job ran out of its memory limit \(entrypoint_memory 1 KiB\) and /,
    );
    await waitForStatus(head, within, ["SUCCEEDED"]);
    assert.equal(await jobLogs(head, within), "1000000\n");
    assert.deepEqual(await actorCgroupsIn(place.path), [], "cgroups of ended jobs are left");
  },
});

Deno.test({
  name: "a re-adopted job keeps its memory cgroup, and the next head tells it ran out of it",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async (t) => {
    await using fifos = await Fifos.create();
    await using first = await startHead();
    const place = limitPlaceOf(first, "memory limits");
    if (!place) {
      console.warn("skipped: no writable cgroup memory controller, memory is admission only");
      await t.step({ name: "needs a cgroup memory controller", ignore: true, fn: () => {} });
      return;
    }
    const started = await fifos.reader("started");
    await fifos.make("go");
    const id = await submitJob(first, {
      entrypoint: `echo >${q(started.path)}; read x <${q(fifos.path("go"))}; ` +
        "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived",
      entrypoint_memory: 64 * MIB,
    });
    await started.eof();
    await waitForStatus(first, id, ["RUNNING"]);
    const cgroup = `${place.path}/actor-${supervisorActorId(id)}`;
    const limitFile = place.version === 2 ? "memory.max" : "memory.limit_in_bytes";
    assert.equal((await Deno.readTextFile(`${cgroup}/${limitFile}`)).trim(), String(64 * MIB));
    await first.kill("SIGKILL");

    await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
    assert.deepEqual(limitPlaceOf(second, "memory limits"), place, "the same parent cgroup");
    await waitForStatus(second, id, ["RUNNING"]);
    await fifos.send("go");
    const failed = await waitForStatus(second, id, ["FAILED"]);
    assert.match(failed.message, /^Job ran out of its memory limit \(entrypoint_memory 64 MiB\)/);
    assert.deepEqual(await actorCgroupsIn(place.path), [], "the job's cgroup is left");
  },
});

Deno.test({
  name: "--enforce-cpu holds a running job to its entrypoint_num_cpus, and a 0-CPU job to none",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async (t) => {
    await using fifos = await Fifos.create();
    await using head = await startHead({ extraArgs: ["--enforce-cpu", "--num-cpus", "2"] });
    const place = limitPlaceOf(head, "cpu limits \\(--enforce-cpu\\)");
    if (!place) {
      console.warn("skipped: no writable cgroup cpu controller, CPUs are admission only");
      await t.step({ name: "needs a cgroup cpu controller", ignore: true, fn: () => {} });
      return;
    }
    const quotaOf = async (id: string) => {
      const dir = `${place.path}/actor-${supervisorActorId(id)}`;
      const file = place.version === 2 ? "cpu.max" : "cpu.cfs_quota_us";
      return (await Deno.readTextFile(`${dir}/${file}`).catch(() => "")).trim();
    };
    const ids: string[] = [];
    for (const [name, cpus] of [["half", 0.5], ["none", 0]] as const) {
      await fifos.make(`${name}.go`);
      const started = await fifos.reader(`${name}.started`);
      ids.push(
        await submitJob(head, {
          submission_id: name,
          entrypoint: `echo >${q(started.path)}; read x <${q(fifos.path(`${name}.go`))}`,
          entrypoint_num_cpus: cpus,
        }),
      );
      await started.eof();
    }
    assert.equal(await quotaOf("half"), place.version === 2 ? "50000 100000" : "50000");
    // No quota: v2 says "max"; v1 makes no cgroup for a limit not set.
    assert.equal(await quotaOf("none"), place.version === 2 ? "max 100000" : "");
    for (const id of ids) {
      await fifos.send(`${id}.go`);
      await waitForStatus(head, id, ["SUCCEEDED"]);
    }
    assert.deepEqual(await actorCgroupsIn(place.path), [], "cgroups of ended jobs are left");
  },
});
