import type { KvStore } from "../../storage/kv.ts";
import assert from "node:assert/strict";
import { ActorRegistry } from "../../kit/actor_registry.ts";
import type { Job } from "../../kit/job_record.ts";
import { aJob as baseJob, aJobStore } from "../../kit/job_record_fixture.ts";
import { EventBus, type HeadEvent } from "../../kit/events.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { KvActorStore } from "../../storage/actors.ts";
import {
  jobActor,
  jobIdOfSupervisor,
  supervisorActorId,
  SupervisorActors,
} from "./supervisor_actors.ts";

const sanitized = { sanitizeOps: true, sanitizeResources: true };

/** A job whose supervisor is an actor worth listing. */
function aJob(changes: Partial<Job> = {}): Job {
  return baseJob({
    entrypoint: "sleep 1000",
    runtime_env: { env_vars: { A: "1" } },
    entrypoint_num_cpus: 1,
    entrypoint_resources: { disk: 2 },
    ...changes,
  });
}

/** Supervisor actors over in-memory stores; `seen` collects the bus's events. */
function setUp(kv: KvStore) {
  const events = new EventBus();
  const jobs = aJobStore(kv);
  const actors = new ActorRegistry(new KvActorStore(kv), events);
  const shutdown = new AbortController();
  const ctx = {
    stores: { jobs },
    actors,
    info: { nodeId: "node-1" },
    logger: { info() {}, warn() {}, error() {} },
    events,
    signal: shutdown.signal,
  } as unknown as ModuleContext;
  const seen: HeadEvent[] = [];
  events.on((event) => seen.push(event));
  return { mirror: new SupervisorActors(ctx), jobs, actors, events, seen };
}

Deno.test("supervisorActorId() and jobIdOfSupervisor() name a job's supervisor both ways", () => {
  assert.equal(supervisorActorId("job-1"), "jobsup_job-1");
  assert.equal(jobIdOfSupervisor("jobsup_job-1"), "job-1");
  assert.equal(jobIdOfSupervisor("servereplica_web_x"), undefined);
});

Deno.test(
  "SupervisorActors records a job's supervisor from the job's events",
  sanitized,
  async () => {
    using kv = await Deno.openKv(":memory:");
    const { mirror, jobs, actors, events, seen } = setUp(kv);
    mirror.follow();
    await jobs.create(aJob());
    events.emit({ type: "job", job: aJob() });
    const running = await jobs.update("job-1", "PENDING", {
      status: "RUNNING",
      supervisor: { pid: 4242, start_ticks: 7 },
    });
    events.emit({ type: "job", job: running });
    await mirror.resync();

    const [actor] = await actors.list({ owner: { kind: "job", id: "job-1" }, states: ["ALIVE"] });
    assert.equal(actor.actor_id, "jobsup_job-1");
    assert.equal(actor.class_name, "JobSupervisor");
    assert.equal(actor.pid, 4242);
    assert.equal(actor.node_id, "node-1");
    assert.deepEqual(actor.resources, { CPU: 1, disk: 2 });
    assert.deepEqual(actor.runtime_env, { env_vars: { A: "1" } });
    assert.deepEqual(actor.owner, { kind: "job", id: "job-1" });
    // The record's change went out on the bus once it was stored.
    const announced = seen.filter((e) => e.type === "actor").map((e) => e.actor.state);
    assert.equal(announced.at(-1), "ALIVE");

    const failed = await jobs.update("job-1", "RUNNING", {
      status: "FAILED",
      error_type: "JOB_SUPERVISOR_ACTOR_DIED",
      end_time: 2_000,
    });
    events.emit({ type: "job", job: failed });
    await mirror.close();
    const dead = await actors.get("jobsup_job-1");
    assert.equal(dead?.state, "DEAD");
    assert.equal(dead?.end_time, 2_000);
    assert.equal(dead?.death_cause, "job job-1 ended FAILED (JOB_SUPERVISOR_ACTOR_DIED)");
  },
);

Deno.test(
  "SupervisorActors removes a deleted job's supervisor record, and says so",
  sanitized,
  async () => {
    using kv = await Deno.openKv(":memory:");
    const { mirror, jobs, actors, events, seen } = setUp(kv);
    mirror.follow();
    const done = aJob({ status: "SUCCEEDED", end_time: 2_000 });
    await jobs.create(done);
    events.emit({ type: "job", job: done });
    await mirror.resync();
    assert.equal((await actors.get("jobsup_job-1"))?.state, "DEAD");

    await jobs.delete("job-1");
    events.emit({ type: "job-deleted", jobId: "job-1" });
    await mirror.close();
    assert.equal(await actors.get("jobsup_job-1"), undefined);
    assert.deepEqual(seen.at(-1), { type: "actor-deleted", actorId: "jobsup_job-1" });
  },
);

Deno.test(
  "SupervisorActors.resync() removes the records of jobs deleted unannounced",
  sanitized,
  async () => {
    using kv = await Deno.openKv(":memory:");
    const { mirror, jobs, actors, seen } = setUp(kv);
    const ended = ["kept", "gone"].map((id) => aJob({ id, status: "SUCCEEDED", end_time: 2_000 }));
    for (const job of ended) await jobs.create(job);
    await actors.record(ended.map((job) => jobActor(job, "node-1")));
    await jobs.delete("gone"); // as a head before job-deleted events did
    seen.length = 0;

    await mirror.resync();
    assert.deepEqual((await actors.list()).map((a) => a.actor_id), ["jobsup_kept"]);
    assert.deepEqual(seen, [{ type: "actor-deleted", actorId: "jobsup_gone" }]);
    await mirror.close();
  },
);
