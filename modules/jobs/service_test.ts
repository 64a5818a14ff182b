import assert from "node:assert/strict";
import { ValidationError } from "../../kit/errors.ts";
import { InvalidStateError, NotFoundError } from "../../storage/errors.ts";
import { aJob } from "../../kit/job_record_fixture.ts";
import { nextStatus, withContext } from "./context_fixture.ts";
import type { SubmitJobRequest } from "./schemas.ts";
import {
  exitOutcome,
  jobConfigMetadata,
  JobService,
  MAX_JOB_SPEC_BYTES,
  STATUS_MESSAGES,
} from "./service.ts";

const exited = (code: number) => ({ kind: "exited", code, endTime: 5_000 } as const);

Deno.test("exitOutcome() makes a stored stop win over how the process ended", () => {
  const running = aJob({ status: "RUNNING" });
  const stopped = aJob({ status: "RUNNING", stop_requested_at: 4_000 });
  assert.equal(exitOutcome(running, exited(0), { tail: "", pid: 1 }).status, "SUCCEEDED");
  for (const code of [0, 1, -15]) {
    const outcome = exitOutcome(stopped, exited(code), { tail: "", pid: 1 });
    assert.deepEqual(outcome, {
      status: "STOPPED",
      message: STATUS_MESSAGES.STOPPED,
      end_time: 5_000,
      driver_exit_code: code,
    });
  }
  const died = exitOutcome(running, { kind: "died", endTime: 5_000 }, { tail: "x", pid: 7 });
  assert.equal(died.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
  assert.ok(died.message!.includes("(pid 7)"), died.message);
  assert.ok(died.message!.endsWith(". Last available logs (truncated to 20,000 chars):\nx"));
});

Deno.test("exitOutcome() notes a full disk only for jobs that ran while it lasted", () => {
  const job = aJob({ status: "RUNNING", start_time: 2_000 });
  const before = { from: 500, to: 1_000 };
  const during = { from: 1_500, to: 3_000 };
  const ongoing = { from: 4_000, to: null };
  const message = (diskFull?: { from: number; to: number | null }) =>
    exitOutcome(job, exited(3), { tail: "", pid: 1, diskFull }).message!;
  assert.equal(
    message(before),
    "Job entrypoint command failed with exit code 3. No logs available.",
  );
  assert.match(
    message(during),
    /^Job entrypoint .*\n\[jobhead: the disk .* to 1970-01-01T00:00:03\.000Z\)/s,
  );
  assert.match(
    message(ongoing),
    /until this end was recorded\): output the job wrote then may be missing/,
  );
});

Deno.test("exitOutcome() says a job the kernel killed past its entrypoint_memory ran out of it", () => {
  const job = aJob({ status: "RUNNING", entrypoint_memory: 64 * 1024 ** 2 });
  const outOfMemory = (code: number) => ({ ...exited(code), outOfMemory: true });
  const killed = exitOutcome(job, outOfMemory(-9), { tail: "x\n", pid: 1 });
  assert.equal(killed.status, "FAILED");
  assert.equal(killed.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
  assert.equal(killed.driver_exit_code, -9);
  assert.equal(
    killed.message,
    "Job ran out of its memory limit (entrypoint_memory 64 MiB) and was killed by the kernel " +
      "(exit code -9). Last available logs (truncated to 20,000 chars):\nx\n",
  );
  assert.equal(
    exitOutcome(job, outOfMemory(1), { tail: "", pid: 1 }).message,
    "Job ran out of its memory limit (entrypoint_memory 64 MiB) and the kernel killed a " +
      "process of it; the entrypoint command failed with exit code 1. No logs available.",
  );
  const died = { kind: "died", endTime: 5_000, outOfMemory: true } as const;
  assert.match(
    exitOutcome(job, died, { tail: "", pid: 7 }).message!,
    /memory limit .* killed its supervisor process \(pid 7\)/,
  );
  // A success, a stop, a kill on purpose and a job with no limit keep their usual outcome.
  assert.equal(exitOutcome(job, outOfMemory(0), { tail: "", pid: 1 }).status, "SUCCEEDED");
  const stopped = aJob({ ...job, stop_requested_at: 4_000 });
  assert.equal(exitOutcome(stopped, outOfMemory(-9), { tail: "", pid: 1 }).status, "STOPPED");
  const kill = { force_kill: true, no_restart: false };
  const killedOnPurpose = exitOutcome(job, { ...died, killed: kill }, { tail: "", pid: 7 });
  assert.equal(killedOnPurpose.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
  const unlimited = aJob({ status: "RUNNING", entrypoint_memory: 0 });
  assert.match(
    exitOutcome(unlimited, outOfMemory(-9), { tail: "", pid: 1 }).message!,
    /^Job entrypoint command failed with exit code -9/,
  );
});

Deno.test("jobConfigMetadata() adds the id and a default name to what was submitted", () => {
  assert.deepEqual(jobConfigMetadata(aJob({ id: "a1" })), {
    job_name: "a1",
    job_submission_id: "a1",
  });
  assert.deepEqual(
    jobConfigMetadata(
      aJob({ id: "a1", metadata: { job_name: "n", job_submission_id: "x", k: "v" } }),
    ),
    { job_name: "n", job_submission_id: "a1", k: "v" },
  );
});

Deno.test({
  name: "JobService.submit() refuses a bad request and stores nothing",
  sanitizeOps: true,
  // libc, loaded once by the supervisor for mkfifo, stays loaded by design.
  sanitizeResources: false,
  fn: async () => {
    await withContext(async (ctx) => {
      const service = new JobService(ctx);
      const bad: [SubmitJobRequest, RegExp][] = [
        [{ entrypoint: "true", submission_id: "a", job_id: "b" }, /submission_id and job_id/],
        [
          { entrypoint: "true", runtime_env: { env_vars: { JOBHEAD_STOP_WAIT_S: "-1" } } },
          /JOBHEAD_STOP_WAIT_S: must be a number of seconds >= 0/,
        ],
        [{ entrypoint: "x".repeat(MAX_JOB_SPEC_BYTES) }, /the limit is 24576$/],
      ];
      for (const [request, message] of bad) {
        await assert.rejects(
          service.submit(request),
          (err: Error) => err instanceof ValidationError && message.test(err.message),
        );
      }
      assert.deepEqual((await service.list({})).jobs, []);
    });
  },
});

Deno.test({
  name: "JobService runs a job: PENDING, RUNNING, SUCCEEDED, each announced",
  sanitizeOps: true,
  // libc, loaded once by the supervisor for mkfifo, stays loaded by design.
  sanitizeResources: false,
  fn: async () => {
    await withContext(async (ctx) => {
      const service = new JobService(ctx);
      const seen: string[] = [];
      const off = ctx.events.on((event) => {
        if (event.type === "job") seen.push(event.job.status);
      });
      const ended = nextStatus(ctx, "j1");
      await service.submit({ entrypoint: "printf 'h\\303\\251llo'", submission_id: "j1" });
      const job = await ended;
      off();
      assert.deepEqual(seen, ["PENDING", "RUNNING", "SUCCEEDED"]);
      assert.equal(job.driver_exit_code, 0);
      // Byte 2 is inside "é": the range starts after it.
      assert.deepEqual(await service.readLogs("j1", { offset: 2 }), {
        logs: "llo",
        offset: 3,
        size: 6,
      });
      await service.delete("j1");
      await assert.rejects(service.get("j1"), NotFoundError);
      assert.equal(await ctx.stores.logs.size("j1"), 0);
    });
  },
});

Deno.test({
  name: "JobService.stop() ends a job STOPPED once; delete() refuses it until then",
  // The service does not wait for the stop it asks for: the supervisor may still be
  // reading /proc (for escapees) once the job's end is stored. Keep these tests last.
  sanitizeOps: false,
  // libc, loaded once by the supervisor for mkfifo, stays loaded by design.
  sanitizeResources: false,
  fn: async () => {
    await withContext(async (ctx) => {
      const service = new JobService(ctx);
      const running = nextStatus(ctx, "j2", (status) => status === "RUNNING");
      await service.submit({ entrypoint: "sleep 60", submission_id: "j2" });
      await running;
      await assert.rejects(service.delete("j2"), InvalidStateError);
      const ended = nextStatus(ctx, "j2");
      assert.equal(await service.stop("j2"), true);
      const job = await ended;
      assert.equal(job.status, "STOPPED");
      assert.notEqual(job.stop_requested_at, null);
      assert.equal(await service.stop("j2"), false);
      await service.delete("j2");
    });
  },
});

Deno.test({
  name: "JobService.stop() of a job just submitted ends it STOPPED, started or not",
  // The service does not wait for the stop it asks for: the supervisor may still be
  // reading /proc (for escapees) once the job's end is stored. Keep these tests last.
  sanitizeOps: false,
  // libc, loaded once by the supervisor for mkfifo, stays loaded by design.
  sanitizeResources: false,
  fn: async () => {
    await withContext(async (ctx) => {
      const service = new JobService(ctx);
      const ended = nextStatus(ctx, "j3");
      await service.submit({ entrypoint: "sleep 60", submission_id: "j3" });
      assert.equal(await service.stop("j3"), true);
      assert.equal((await ended).status, "STOPPED");
      await service.delete("j3");
    });
  },
});
