import assert from "node:assert/strict";
import { Job } from "../storage/jobs.ts";
import { type FoundSupervisor, isOfDataDir, jobIdOfActor, recoveredJob } from "./recover.ts";

/** A supervisor as ShellSupervisor.run() starts it. */
function aSupervisor(overrides: Partial<FoundSupervisor> = {}): FoundSupervisor {
  return {
    actorId: "jobsup_k1",
    pid: 4242,
    startTicks: 1_000,
    argv: ["/usr/bin/sh", "/data/run/jobhead-supervisor", "jobsup_k1"],
    fdTargets: ["/dev/null", "/data/logs/k1.log", "/data/run/fifo/jobsup_k1.fifo"],
    env: {
      JOBHEAD_ACTOR_ID: "jobsup_k1",
      JOBHEAD_SUPERVISOR_COMMAND: "python train.py --epochs 3",
      JOBHEAD_JOB_CONFIG_JSON: JSON.stringify({
        runtime_env: { env_vars: { A: "1" } },
        metadata: { owner: "ops" },
      }),
    },
    ...overrides,
  };
}

Deno.test("jobIdOfActor() knows job supervisors only", () => {
  assert.equal(jobIdOfActor("jobsup_k1"), "k1");
  assert.equal(jobIdOfActor("servereplica_web_ab12"), undefined);
  assert.equal(jobIdOfActor("jobsup_../x"), undefined);
});

Deno.test("isOfDataDir() tells this head's supervisors from another's", () => {
  assert.ok(isOfDataDir(aSupervisor(), ["/data"]));
  assert.ok(isOfDataDir(aSupervisor({ argv: [] }), ["/data"]), "by its open files alone");
  assert.ok(!isOfDataDir(aSupervisor(), ["/dat"]));
  assert.ok(!isOfDataDir(aSupervisor(), ["/data2"]));
});

Deno.test("recoveredJob() rebuilds a valid RUNNING record from the process", () => {
  const job = recoveredJob(aSupervisor(), { bootTimeMs: 1_700_000_000_000 });
  Job.parse(job);
  assert.equal(job.id, "k1");
  assert.equal(job.status, "RUNNING");
  assert.equal(job.entrypoint, "python train.py --epochs 3");
  assert.deepEqual(job.runtime_env, { env_vars: { A: "1" } });
  assert.deepEqual(job.metadata, { job_name: "k1", owner: "ops", job_submission_id: "k1" });
  assert.deepEqual(job.supervisor, { pid: 4242, start_ticks: 1_000 });
  assert.equal(job.start_time, 1_700_000_000_000 + 10_000); // 1,000 ticks of 10 ms
  assert.match(job.message, /recovered/);
});

Deno.test("recoveredJob() keeps a usable record when the process shows little", () => {
  const job = recoveredJob(aSupervisor({ argv: [], env: { JOBHEAD_JOB_CONFIG_JSON: "{bad" } }), {
    bootTimeMs: 0,
  });
  Job.parse(job);
  assert.equal(job.entrypoint, "");
  assert.deepEqual(job.runtime_env, {});
  assert.match(job.message, /entrypoint could not be read/);
});
