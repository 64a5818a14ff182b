import type { KvStore } from "../../storage/kv.ts";
import assert from "node:assert/strict";
import { createApp } from "../../host/app.ts";
import type { Actor } from "../../kit/actor_record.ts";
import { ActorRegistry } from "../../kit/actor_registry.ts";
import { EventBus } from "../../kit/events.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { KvActorStore } from "../../storage/actors.ts";
import { actorRoutes } from "./routes.ts";
import { ActorService } from "./service.ts";

const sanitized = { sanitizeOps: true, sanitizeResources: true };

/** An actor an operator's module owns, ALIVE, with `changes` applied. */
function anActor(changes: Partial<Actor> = {}): Actor {
  return {
    actor_id: "cron_nightly",
    class_name: "CronRunner",
    name: "cron nightly",
    namespace: "cron",
    state: "ALIVE",
    pid: 4242,
    node_id: "node-1",
    start_time: 1_000,
    end_time: null,
    resources: { CPU: 1 },
    runtime_env: {},
    owner: { kind: "cron", id: "nightly" },
    port: null,
    num_restarts: 0,
    death_cause: null,
    metadata: {},
    ...changes,
  };
}

/** The actors API over an in-memory registry, with a supervisor that runs nothing. */
function setUp(kv: KvStore) {
  const events = new EventBus();
  const actors = new ActorRegistry(new KvActorStore(kv), events);
  const ctx = {
    actors,
    config: { stopGraceMs: 3_000 },
    logger: { info() {}, warn() {}, error() {} },
    supervisor: { get: () => undefined },
  } as unknown as ModuleContext;
  const app = createApp({ maxBodyBytes: 1024 });
  app.route("/", actorRoutes(new ActorService(ctx)));
  return { app, actors };
}

Deno.test(
  "GET /api/actors lists whatever module owns an actor, by its filters",
  sanitized,
  async () => {
    using kv = await Deno.openKv(":memory:");
    const { app, actors } = setUp(kv);
    await actors.record([
      anActor(),
      anActor({
        actor_id: "jobsup_a",
        class_name: "JobSupervisor",
        owner: { kind: "job", id: "a" },
      }),
    ]);
    const ids = async (path: string) => {
      const res = await app.request(path);
      assert.equal(res.status, 200, path);
      return (await res.json()).map((actor: Actor) => actor.actor_id);
    };
    assert.deepEqual(await ids("/api/actors?class_name=CronRunner&state=alive"), ["cron_nightly"]);
    assert.deepEqual(await ids("/api/actors?job_id=a"), ["jobsup_a"]);
    assert.deepEqual(await ids("/api/actors?deployment=a"), []);
    const one = await (await app.request("/api/actors/cron_nightly")).json();
    assert.deepEqual(one, anActor());
  },
);

Deno.test("GET /api/actors/kill answers Ray's envelope, errors included", sanitized, async () => {
  using kv = await Deno.openKv(":memory:");
  const { app, actors } = setUp(kv);
  await actors.record([anActor({ actor_id: "jobsup_job-1", owner: { kind: "job", id: "job-1" } })]);

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
