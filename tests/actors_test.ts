/** End to end: job supervisors as actors, listed and killed through the actors API. */
import assert from "node:assert/strict";
import { openStoreOf, startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertNoJobProcesses, q, submitJob } from "./helpers.ts";
import { waitForEvent } from "./events.ts";
import { aJobStore } from "../kit/job_record_fixture.ts";

Deno.test("killing a job's supervisor actor fails the job and takes its process group", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const aliveA = await fifos.reader("a.alive");
  const aliveB = await fifos.reader("b.alive");
  // Processes are found by their job id: ids no concurrent test run shares.
  const run = crypto.randomUUID().slice(0, 8);
  // Each job's processes hold its fifo open: EOF means every one of them is gone.
  const a = await submitJob(head, {
    submission_id: `kill-force-${run}`,
    entrypoint: `exec 3>${q(aliveA.path)}; sleep 1000 & wait`,
    entrypoint_num_cpus: 1,
  });
  const b = await submitJob(head, {
    submission_id: `kill-graceful-${run}`,
    entrypoint: `exec 3>${q(aliveB.path)}; sleep 1000 & wait`,
  });
  const jobA = await waitForStatus(head, a, ["RUNNING"]);
  await waitForStatus(head, b, ["RUNNING"]);
  await aliveA.opened();
  await aliveB.opened();

  const alive = await waitForEvent(head, "both supervisors to be ALIVE", async () => {
    const { body } = await head.json("/api/actors?class_name=JobSupervisor&state=ALIVE");
    return body.length === 2 && body;
  }, { types: ["actor"] });
  const actor = alive.find((x: { owner: { id: string } }) => x.owner.id === a);
  assert.equal(actor.actor_id, jobA.driver_info.id);
  assert.equal(String(actor.pid), jobA.driver_info.pid);
  assert.equal(actor.node_id, jobA.driver_node_id);
  assert.deepEqual(actor.resources, { CPU: 1 });
  assert.equal(actor.namespace, "jobs");
  assert.deepEqual((await head.json(`/api/actors/${actor.actor_id}`)).body, actor);
  const ofB = (await head.json(`/api/actors?job_id=${b}`)).body;
  assert.deepEqual(ofB.map((x: { actor_id: string }) => x.actor_id), [`jobsup_${b}`]);

  const forced = await head.json(`/api/actors/kill?actor_id=${actor.actor_id}&force_kill=true`);
  assert.equal(forced.status, 200, JSON.stringify(forced.body));
  assert.equal(forced.body.result, true);
  assert.deepEqual(forced.body.data, {});
  await aliveA.eof();
  const failedA = await waitForStatus(head, a, ["FAILED"]);
  assert.equal(failedA.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
  assert.match(failedA.message, /killed through the actors API \(force_kill=true\)/);
  await assertNoJobProcesses(head, a);

  const graceful = await head.json(`/api/actors/kill?actor_id=jobsup_${b}&force_kill=false`);
  assert.equal(graceful.body.result, true, JSON.stringify(graceful.body));
  await aliveB.eof();
  const failedB = await waitForStatus(head, b, ["FAILED"]);
  assert.equal(failedB.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
  assert.match(failedB.message, /force_kill=false/);
  await assertNoJobProcesses(head, b);

  const dead = await waitForEvent(head, "both supervisors to be DEAD", async () => {
    const { body } = await head.json("/api/actors?state=DEAD");
    return body.length === 2 && body;
  }, { types: ["actor"] });
  for (const x of dead) assert.equal(typeof x.end_time, "number");
  const again = await head.json(`/api/actors/kill?actor_id=jobsup_${b}`);
  assert.equal(again.status, 409);
  assert.equal(again.body.result, false);

  const missing = await head.json("/api/actors/kill?force_kill=true");
  assert.equal(missing.status, 400);
  assert.equal(missing.body.result, false);
  const unknown = await head.json("/api/actors/kill?actor_id=no-such-actor");
  assert.equal(unknown.status, 404);
  assert.deepEqual([unknown.body.result, unknown.body.error.code], [false, "NOT_FOUND"]);
});

Deno.test("a head deletes the supervisor records a previous head left for deleted jobs", async () => {
  await using first = await startHead();
  const kept = await submitJob(first, { entrypoint: "true", submission_id: "kept" });
  const gone = await submitJob(first, { entrypoint: "true", submission_id: "gone" });
  for (const id of [kept, gone]) await waitForStatus(first, id, ["SUCCEEDED"]);
  await waitForEvent(first, "both supervisors to be recorded DEAD", async () => {
    const { body } = await first.json("/api/actors?state=DEAD");
    return body.length === 2;
  }, { types: ["actor"] });
  await first.kill("SIGTERM");
  // As a head before job-deleted events did: the job goes, its supervisor's record stays.
  {
    await using store = await openStoreOf(first);
    await aJobStore(store.kv).delete(gone);
  }

  await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
  const { body } = await second.json("/api/actors?class_name=JobSupervisor");
  assert.deepEqual(body.map((x: { actor_id: string }) => x.actor_id), [`jobsup_${kept}`]);
});
