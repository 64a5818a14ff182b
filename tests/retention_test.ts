/**
 * End to end: finished jobs past --max-finished-jobs or --job-retention-days are deleted
 * with their logs and files, oldest first; unused packages and dead actors' records go too.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Fifos } from "./fifos.ts";
import { startHead, waitForStatus } from "./harness.ts";
import { exists, q, submitJob } from "./helpers.ts";
// Polled throughout: the event stream does not announce deletions.
import { waitFor } from "./poll.ts";
import { makeZip } from "./zip.ts";

Deno.test("--max-finished-jobs keeps the newest finished jobs and deletes the oldest with their logs", async () => {
  await using head = await startHead({ extraArgs: ["--max-finished-jobs", "3"] });
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    const id = await submitJob(head, { entrypoint: `echo job-${i}`, submission_id: `keep-${i}` });
    await waitForStatus(head, id, ["SUCCEEDED"]);
    ids.push(id);
  }
  const left = await waitFor("retention to delete the oldest jobs", async () => {
    const jobs = (await head.json("/api/jobs/")).body as { submission_id: string }[];
    return jobs.length === 3 && jobs.map((job) => job.submission_id);
  });
  assert.deepEqual(left, ["keep-5", "keep-4", "keep-3"]);
  for (const id of ids.slice(0, 3)) {
    assert.equal((await head.json(`/api/jobs/${id}`)).status, 404);
    // Its log goes right after its record: polled, nothing announces it.
    const log = join(head.dataDir, "logs", `${id}.log`);
    await waitFor(`the log of ${id} to go`, async () => !await exists(log));
  }
  for (const id of ids.slice(3)) {
    assert.equal((await head.json(`/api/jobs/${id}/logs`)).body.logs, `job-${id.slice(5)}\n`);
  }
});

Deno.test("a running job is never deleted by retention, nor counted", async () => {
  await using head = await startHead({ extraArgs: ["--max-finished-jobs", "0"] });
  const running = await submitJob(head, { entrypoint: "exec sleep 600", submission_id: "runs" });
  await waitForStatus(head, running, ["RUNNING"]);
  // With a limit of 0 the job may go as soon as it ends: wait for it to be gone.
  const done = await submitJob(head, { entrypoint: "true", submission_id: "done" });
  await waitFor("the finished job to go", async () => {
    return (await head.json(`/api/jobs/${done}`)).status === 404;
  });
  assert.equal((await head.json(`/api/jobs/${running}`)).body.status, "RUNNING");
});

/** A retention period of 1.728 s, in days: the clock of a real head is not ours to move. */
const SHORT_RETENTION_DAYS = 0.00002;

Deno.test("--job-retention-days: a head's first sweep deletes jobs that ended longer ago, with their files", async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead();
  const put = await first.fetch("/api/packages/pkg/work.zip", {
    method: "PUT",
    body: await makeZip({ "run.sh": "echo from the package\n" }),
  });
  assert.equal(put.status, 200);
  await put.body?.cancel();
  const old = await submitJob(first, {
    entrypoint: "sh run.sh",
    submission_id: "ended-long-ago",
    // Its own writable copy of the package, which goes with the job.
    runtime_env: { working_dir: "pkg://work.zip", env_vars: { JOBHEAD_WORKING_DIR_COPY: "1" } },
  });
  await waitForStatus(first, old, ["SUCCEEDED"]);
  await fifos.make("go");
  const running = await submitJob(first, {
    entrypoint: `read x <${q(fifos.path("go"))}`,
    submission_id: "runs-across-the-restart",
  });
  await waitForStatus(first, running, ["RUNNING"]);
  const log = join(first.dataDir, "logs", `${old}.log`);
  const copy = join(first.dataDir, "working_dirs", old);
  await Deno.stat(log);
  await Deno.stat(copy);
  const endTime: number = (await first.json(`/api/jobs/${old}`)).body.end_time;
  // The period passes on the machine's clock; then a head that starts sweeps.
  await waitFor("the retention period to pass", () => {
    return Promise.resolve(Date.now() > endTime + SHORT_RETENTION_DAYS * 86_400_000);
  });
  await first.kill(); // the running job goes on, for the next head
  await using second = await startHead({
    dataDir: first.dataDir,
    runId: first.runId,
    extraArgs: ["--job-retention-days", String(SHORT_RETENTION_DAYS)],
  });
  // The record goes first, then its files (a failure between leaves no job without a log):
  // polled, nothing announces the files' removal.
  await waitFor("the old job and its files to go", async () => {
    return (await second.json(`/api/jobs/${old}`)).status === 404 &&
      !await exists(log) && !await exists(copy);
  });
  assert.equal((await second.json("/api/packages/pkg/work.zip")).status, 200);
  // A job that runs is never deleted, however old it is.
  assert.equal((await second.json(`/api/jobs/${running}`)).body.status, "RUNNING");
  await fifos.send("go");
  await waitForStatus(second, running, ["SUCCEEDED"]);
});

Deno.test("packages no job names are deleted after --package-retention-days; named ones stay", async () => {
  await using first = await startHead();
  for (const name of ["unused.zip", "named.zip"]) {
    const put = await first.fetch(`/api/packages/pkg/${name}`, {
      method: "PUT",
      body: await makeZip({ "run.sh": "echo packaged\n" }),
    });
    assert.equal(put.status, 200);
    await put.body?.cancel();
  }
  const id = await submitJob(first, {
    entrypoint: "sh run.sh",
    runtime_env: { working_dir: "pkg://named.zip" },
  });
  await waitForStatus(first, id, ["SUCCEEDED"]);
  await first.kill();
  // A head with a retention period of a few milliseconds sweeps at start.
  await using second = await startHead({
    dataDir: first.dataDir,
    runId: first.runId,
    extraArgs: ["--package-retention-days", "0.0000001"],
  });
  await waitFor("the unused package to go", async () => {
    return (await second.json("/api/packages/pkg/unused.zip")).status === 404;
  });
  assert.equal((await second.json("/api/packages/pkg/named.zip")).status, 200);
  await assert.rejects(
    Deno.stat(join(second.dataDir, "packages", "pkg", "unused.zip")),
    Deno.errors.NotFound,
  );
});

Deno.test("the record of a DEAD actor is removed after --actor-retention-minutes; its job stays", async () => {
  await using head = await startHead({ extraArgs: ["--actor-retention-minutes", "0.0001"] });
  const id = await submitJob(head, { entrypoint: "true", submission_id: "short-lived" });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  await waitFor("the supervisor's record to go", async () => {
    return (await head.json(`/api/actors/jobsup_${id}`)).status === 404;
  });
  assert.equal((await head.json(`/api/jobs/${id}`)).body.status, "SUCCEEDED");
});
