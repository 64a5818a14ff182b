import assert from "node:assert/strict";
import { aJob } from "../../kit/job_record_fixture.ts";
import { exitOutcome, jobConfigMetadata, STATUS_MESSAGES } from "./service.ts";

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
