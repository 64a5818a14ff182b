/** End to end: jobs outlive their head, and a restarted head takes them back. */
import assert from "node:assert/strict";
import { isAlive, processInfo, startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { canUseCgroups, cgroupOfHead } from "./cgroups.ts";
import { waitFor } from "./poll.ts";
import {
  assertGroupGone,
  assertNoJobProcesses,
  jobLogs,
  q,
  stopJob,
  submitJob,
} from "./helpers.ts";

/** Whether stops must go through cgroups on this machine. */
const cgroupsUsable = await canUseCgroups();

Deno.test("after a head SIGKILL the next head re-adopts running jobs and records what ended meanwhile", async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead();
  const aliveA = await fifos.reader("a.alive");
  const aliveB = await fifos.reader("b.alive");
  const aliveC = await fifos.reader("c.alive");
  const aliveD = await fifos.reader("d.alive");
  for (const name of ["a.go", "c.go", "d.go"]) await fifos.make(name);
  // A fails and C succeeds while no head runs; B keeps running and is stopped by the
  // next head; D ends under the next head, which must notice without being its parent.
  const a = await submitJob(first, {
    submission_id: "during-downtime-fails",
    entrypoint: `exec 3>${q(aliveA.path)}; read x <${q(fifos.path("a.go"))}; echo "A $x"; exit 7`,
  });
  const b = await submitJob(first, {
    submission_id: "keeps-running",
    entrypoint: `echo B started; exec 3>${q(aliveB.path)}; exec sleep 1000`,
  });
  const c = await submitJob(first, {
    submission_id: "during-downtime-succeeds",
    entrypoint: `exec 3>${q(aliveC.path)}; read x <${q(fifos.path("c.go"))}; exit 0`,
  });
  const d = await submitJob(first, {
    submission_id: "ends-after-restart",
    entrypoint: `exec 3>${q(aliveD.path)}; read x <${q(fifos.path("d.go"))}; exit 5`,
  });
  for (const reader of [aliveA, aliveB, aliveC, aliveD]) await reader.opened();
  const bBefore = await waitForStatus(first, b, ["RUNNING"]);
  const endingMeanwhile = [
    await waitForStatus(first, a, ["RUNNING"]),
    await waitForStatus(first, c, ["RUNNING"]),
  ];
  await waitForStatus(first, d, ["RUNNING"]);

  await first.kill("SIGKILL");
  const t0 = Date.now();
  await fifos.send("a.go", "bye\n");
  await fifos.send("c.go");
  await aliveA.eof();
  await aliveC.eof();
  // Their supervisors record the end times as they go. Polled: nothing announces that a
  // process is gone.
  for (const { submission_id, driver_info } of endingMeanwhile) {
    const pid = Number(driver_info.pid);
    await waitFor(`the supervisor of ${submission_id} to end`, async () => !await isAlive(pid));
  }
  const t1 = Date.now();
  assert.ok(await isAlive(Number(bBefore.driver_info.pid)), "B survived the head");

  await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
  const jobA = await waitForStatus(second, a, ["FAILED"]);
  assert.equal(jobA.driver_exit_code, 7);
  assert.equal(jobA.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
  assert.ok(jobA.message.includes("A bye"), jobA.message);
  // The real end time, not the moment the second head noticed.
  assert.ok(
    jobA.end_time >= t0 - 1000 && jobA.end_time <= t1,
    `end_time ${jobA.end_time} not in [${t0}, ${t1}]`,
  );
  const jobC = await waitForStatus(second, c, ["SUCCEEDED"]);
  assert.equal(jobC.driver_exit_code, 0);
  assert.ok(jobC.end_time >= t0 - 1000 && jobC.end_time <= t1, `end_time ${jobC.end_time}`);

  const bAfter = await waitForStatus(second, b, ["RUNNING"]);
  assert.equal(bAfter.start_time, bBefore.start_time);
  assert.deepEqual(bAfter.driver_info, bBefore.driver_info);
  assert.equal(await jobLogs(second, b), "B started\n");

  await fifos.send("d.go");
  await aliveD.eof();
  const jobD = await waitForStatus(second, d, ["FAILED"]);
  assert.equal(jobD.driver_exit_code, 5);

  assert.equal(await stopJob(second, b), true);
  await aliveB.eof();
  await waitForStatus(second, b, ["STOPPED"]);
  for (const id of [a, b, c, d]) await assertNoJobProcesses(second, id);
});

Deno.test("a head stopped with SIGTERM leaves jobs running for the next head", async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead();
  const alive = await fifos.reader("alive");
  await fifos.make("go");
  const id = await submitJob(first, {
    entrypoint: `exec 3>${q(alive.path)}; read x <${q(fifos.path("go"))}; echo done`,
  });
  await alive.opened();
  await waitForStatus(first, id, ["RUNNING"]);
  await first.kill("SIGTERM");

  await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
  await waitForStatus(second, id, ["RUNNING"]);
  await fifos.send("go");
  await alive.eof();
  const job = await waitForStatus(second, id, ["SUCCEEDED"]);
  assert.equal(job.driver_exit_code, 0);
  assert.equal(await jobLogs(second, id), "done\n");
  await assertNoJobProcesses(second, id);
});

Deno.test("a stop accepted just before the head died is carried out by the next head", async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead();
  const alive = await fifos.reader("alive");
  const ready = await fifos.reader("ready");
  const id = await submitJob(first, {
    entrypoint: `trap '' TERM; exec 3>${q(alive.path)}; echo ready >${q(ready.path)}; ` +
      `exec sleep 1000`,
    runtime_env: { env_vars: { JOBHEAD_STOP_WAIT_S: "2" } },
  });
  await ready.text();
  await waitForStatus(first, id, ["RUNNING"]);
  // The job ignores SIGTERM, so it is still alive, inside its grace, when the head dies.
  assert.equal(await stopJob(first, id), true);
  await first.kill("SIGKILL");

  await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
  await alive.eof();
  const job = await waitForStatus(second, id, ["STOPPED"]);
  assert.equal(job.message, "Job was intentionally stopped.");
  await assertNoJobProcesses(second, id);
});

Deno.test("a job whose supervisor is killed ends FAILED with its whole group", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const alive = await fifos.reader("alive");
  const shell = await fifos.reader("shell");
  const id = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; sleep 1000 & echo $$ >${q(shell.path)}; wait`,
  });
  const { supervisor, pgid } = await supervisorOf(Number(await shell.text()));
  await waitForStatus(head, id, ["RUNNING"]);

  Deno.kill(supervisor, "SIGKILL");
  await alive.eof();
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
  assert.ok(job.message.length > 0, "the message says why");
  await assertGroupGone(pgid);
  await assertNoJobProcesses(head, id);
});

Deno.test("a supervisor that died while the head was down is found by the next head", async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead();
  const alive = await fifos.reader("alive");
  const shell = await fifos.reader("shell");
  const id = await submitJob(first, {
    entrypoint: `exec 3>${q(alive.path)}; sleep 1000 & echo $$ >${q(shell.path)}; wait`,
  });
  const { supervisor, pgid } = await supervisorOf(Number(await shell.text()));
  await waitForStatus(first, id, ["RUNNING"]);
  await first.kill("SIGKILL");

  Deno.kill(supervisor, "SIGKILL");
  await alive.eof(); // the group dies with its supervisor even with no head running
  await assertGroupGone(pgid);

  await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
  const job = await waitForStatus(second, id, ["FAILED"]);
  assert.equal(job.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
  await assertNoJobProcesses(second, id);
});

/** The supervisor of the job whose entrypoint shell is `shellPid`: the leader of its session. */
async function supervisorOf(shellPid: number): Promise<{ supervisor: number; pgid: number }> {
  const info = await processInfo(shellPid);
  assert.ok(info, `no process ${shellPid}`);
  assert.notEqual(info.sid, shellPid, "the entrypoint runs under a supervisor");
  const leader = await processInfo(info.sid);
  assert.ok(leader && leader.state !== "Z", `the session leader ${info.sid} is gone`);
  return { supervisor: info.sid, pgid: info.pgid };
}

Deno.test({
  name: "a re-adopted job keeps its cgroup: a stop by the next head reaches a cleared escapee",
  ignore: !cgroupsUsable,
}, async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead();
  const parent = cgroupOfHead(first.output().stderr);
  assert.ok(parent, `no cgroup line: ${first.output().stderr}`);
  const alive = await fifos.reader("alive");
  const cleared = await fifos.reader("cleared");
  const id = await submitJob(first, {
    entrypoint: `exec 3>${q(alive.path)}; ` +
      `env -i setsid sh -c 'echo $$ >${cleared.path}; exec sleep 1000' & exec sleep 1000`,
  });
  const escapee = Number(await cleared.text());
  try {
    await waitForStatus(first, id, ["RUNNING"]);
    await first.kill("SIGKILL");

    await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
    assert.equal(cgroupOfHead(second.output().stderr), parent, "the same parent cgroup");
    await waitForStatus(second, id, ["RUNNING"]);
    assert.equal(await stopJob(second, id), true);
    await alive.eof();
    await waitForStatus(second, id, ["STOPPED"]);
    assert.equal(await isAlive(escapee), false, "the escapee survived the stop");
    await assertNoJobProcesses(second, id);
  } finally {
    if (await isAlive(escapee)) Deno.kill(escapee, "SIGKILL");
  }
});
