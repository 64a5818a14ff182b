import assert from "node:assert/strict";
import { createApp } from "../../host/app.ts";
import { EventBus } from "../../kit/events.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { KvActorStore } from "../../storage/actors.ts";
import { type Job, KvJobStore } from "../../storage/jobs.ts";
import { aJob as baseJob } from "../../storage/jobs_fixture.ts";
import { actorRoutes } from "./routes.ts";
import { ActorService } from "./service.ts";

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

/** An actor service over in-memory stores, with a supervisor that runs nothing. */
function setUp(kv: Deno.Kv) {
  const events = new EventBus();
  const jobs = new KvJobStore(kv);
  const ctx = {
    kv,
    kvPrefix: ["mod", "actors"],
    stores: { jobs, actors: new KvActorStore(kv) },
    config: { stopGraceMs: 3_000 },
    info: { nodeId: "node-1" },
    logger: { info() {}, warn() {}, error() {} },
    events,
    supervisor: { get: () => undefined },
  } as unknown as ModuleContext;
  const service = new ActorService(ctx);
  const app = createApp({ maxBodyBytes: 1024 });
  app.route("/", actorRoutes(service));
  return { service, app, jobs, events };
}

Deno.test("ActorService mirrors a job's supervisor from the job's events", sanitized, async () => {
  using kv = await Deno.openKv(":memory:");
  const { service, app, jobs, events } = setUp(kv);
  service.followJobs();
  await jobs.create(aJob());
  events.emit({ type: "job", job: aJob() });
  const running = await jobs.update("job-1", "PENDING", {
    status: "RUNNING",
    supervisor: { pid: 4242, start_ticks: 7 },
  });
  events.emit({ type: "job", job: running });
  await service.resync();

  const res = await app.request("/api/actors?job_id=job-1&state=alive");
  assert.equal(res.status, 200);
  const [actor] = await res.json();
  assert.equal(actor.actor_id, "jobsup_job-1");
  assert.equal(actor.class_name, "JobSupervisor");
  assert.equal(actor.state, "ALIVE");
  assert.equal(actor.pid, 4242);
  assert.equal(actor.node_id, "node-1");
  assert.deepEqual(actor.resources, { CPU: 1, disk: 2 });
  assert.deepEqual(actor.runtime_env, { env_vars: { A: "1" } });
  assert.deepEqual(actor.owner, { kind: "job", id: "job-1" });

  const failed = await jobs.update("job-1", "RUNNING", {
    status: "FAILED",
    error_type: "JOB_SUPERVISOR_ACTOR_DIED",
    end_time: 2_000,
  });
  events.emit({ type: "job", job: failed });
  await service.close();
  const dead = await (await app.request("/api/actors/jobsup_job-1")).json();
  assert.equal(dead.state, "DEAD");
  assert.equal(dead.end_time, 2_000);
  assert.equal(dead.death_cause, "job job-1 ended FAILED (JOB_SUPERVISOR_ACTOR_DIED)");
});

Deno.test("GET /api/actors/kill answers Ray's envelope, errors included", sanitized, async () => {
  using kv = await Deno.openKv(":memory:");
  const { service, app, jobs, events } = setUp(kv);
  service.followJobs();
  await jobs.create(aJob({ status: "RUNNING", supervisor: { pid: 1, start_ticks: 1 } }));
  events.emit({ type: "job", job: (await jobs.get("job-1"))! });
  await service.close();

  const cases: [string, number, RegExp][] = [
    ["/api/actors/kill", 400, /actor_id: required/],
    ["/api/actors/kill?actor_id=nope", 404, /^Actor nope does not exist$/],
    ["/api/actors/kill?actor_id=jobsup_job-1&force_kill=maybe", 400, /force_kill/],
    ["/api/actors/kill?actor_id=jobsup_job-1", 409, /actor is ALIVE and has no running process/],
  ];
  for (const [path, status, message] of cases) {
    const res = await app.request(path);
    const body = await res.json();
    assert.equal(res.status, status, path);
    assert.equal(body.result, false, path);
    assert.match(body.msg, message, path);
    assert.deepEqual(body.data, {});
    assert.equal(body.error.message, body.msg);
  }
  const missing = await app.request("/api/actors/nope");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "NOT_FOUND");
  const bad = await app.request("/api/actors?state=SLEEPING");
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
});
