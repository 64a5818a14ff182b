import assert from "node:assert/strict";
import type { Actor } from "../kit/actor_record.ts";
import { KvActorStore } from "./actors.ts";

function anActor(changes: Partial<Actor> = {}): Actor {
  return {
    actor_id: "jobsup_job-1",
    class_name: "JobSupervisor",
    name: "job_supervisor_job-1",
    namespace: "jobs",
    state: "ALIVE",
    pid: 100,
    node_id: "node",
    start_time: 1_000,
    end_time: null,
    resources: {},
    runtime_env: {},
    owner: { kind: "job", id: "job-1" },
    port: null,
    num_restarts: 0,
    death_cause: null,
    metadata: {},
    ...changes,
  };
}

Deno.test("KvActorStore.put() replaces records and list() filters them, newest first", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = new KvActorStore<Actor>(kv);
  const replica = anActor({
    actor_id: "servereplica_web_a",
    class_name: "ServeReplica",
    namespace: "serve",
    owner: { kind: "deployment", id: "web" },
    start_time: 2_000,
  });
  await store.put([anActor({ state: "PENDING_CREATION", pid: null }), replica]);
  await store.put([anActor()]);
  assert.equal((await store.get("jobsup_job-1"))?.state, "ALIVE");

  const ids = (actors: Actor[]) => actors.map((a) => a.actor_id);
  assert.deepEqual(ids(await store.list()), ["servereplica_web_a", "jobsup_job-1"]);
  assert.deepEqual(ids(await store.list({ className: "ServeReplica" })), ["servereplica_web_a"]);
  assert.deepEqual(ids(await store.list({ owner: { kind: "job" } })), ["jobsup_job-1"]);
  assert.deepEqual(ids(await store.list({ owner: { id: "web" }, states: ["ALIVE"] })), [
    "servereplica_web_a",
  ]);
  assert.deepEqual(await store.list({ states: ["DEAD"] }), []);

  await store.delete(["jobsup_job-1", "no-such-actor"]);
  assert.equal(await store.get("jobsup_job-1"), undefined);
  assert.deepEqual(ids(await store.list()), ["servereplica_web_a"]);
});
