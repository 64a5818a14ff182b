import assert from "node:assert/strict";
import { KvActorStore, type StoredActor } from "./actors.ts";

/** A record the store can list: the fields it filters by, and one it keeps as given. */
type TestActor = StoredActor & { pid: number | null };

function anActor(changes: Partial<TestActor> = {}): TestActor {
  return {
    actor_id: "jobsup_job-1",
    class_name: "JobSupervisor",
    namespace: "jobs",
    state: "ALIVE",
    pid: 100,
    start_time: 1_000,
    owner: { kind: "job", id: "job-1" },
    ...changes,
  };
}

Deno.test("KvActorStore.put() replaces records and list() filters them, newest first", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = new KvActorStore<TestActor>(kv);
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

  const ids = (actors: TestActor[]) => actors.map((a) => a.actor_id);
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
