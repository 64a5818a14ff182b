import assert from "node:assert/strict";
import { nextToReplace, planStep, type ReplicaView, retireOrder } from "./reconcile.ts";

let started = 0;
/** A ready replica of v2, started after every replica made before it. */
function aReplica(changes: Partial<ReplicaView> = {}): ReplicaView {
  started += 1;
  return {
    actor_id: `r${started}`,
    version: "v2",
    state: "ALIVE",
    ready: true,
    start_time: started,
    ...changes,
  };
}

const spec = (num_replicas: number) => ({ version: "v2", num_replicas });

Deno.test("planStep() starts the missing replicas at once when no old ones serve", () => {
  assert.deepEqual(planStep(spec(3), []), { action: "start", count: 3 });
  assert.deepEqual(planStep(spec(3), [aReplica()]), { action: "start", count: 2 });
  // Scaling up is not a rollout: a dead replica does not hold it back.
  assert.deepEqual(planStep(spec(2), [aReplica({ state: "DEAD", ready: false })]), {
    action: "start",
    count: 1,
  });
  assert.deepEqual(planStep(spec(1), [aReplica()]), { action: "none" });
  assert.deepEqual(planStep(spec(0), []), { action: "none" });
});

Deno.test("planStep() scales down the failing, then the unready, then the newest first", () => {
  const oldestReady = aReplica();
  const newestReady = aReplica();
  const unready = aReplica({ ready: false, state: "PENDING_CREATION" });
  const restarting = aReplica({ ready: false, state: "RESTARTING" });
  const replicas = [oldestReady, unready, newestReady, restarting];
  assert.deepEqual(planStep(spec(3), replicas), {
    action: "retire",
    actorIds: [restarting.actor_id],
    why: "scaled down",
  });
  assert.deepEqual(planStep(spec(1), replicas), {
    action: "retire",
    actorIds: [restarting.actor_id, unready.actor_id, newestReady.actor_id],
    why: "scaled down",
  });
  // Surplus of the current version goes before any old replica is replaced.
  const old = aReplica({ version: "v1" });
  assert.deepEqual(planStep(spec(0), [old, oldestReady]), {
    action: "retire",
    actorIds: [oldestReady.actor_id],
    why: "scaled down",
  });
});

Deno.test("planStep() rolls out one replica at a time, a new one ready before an old one stops", () => {
  const v1 = [aReplica({ version: "v1" }), aReplica({ version: "v1" })];
  const why = "replaced by version v2";
  // Short of v2 replicas: one more, which then takes an old one's place.
  assert.deepEqual(planStep(spec(2), v1), { action: "surge", why });
  const v2 = aReplica();
  assert.deepEqual(planStep(spec(2), [...v1, v2]), { action: "surge", why });
  // As many v2 replicas as wanted: the old ones go one by one.
  const full = [...v1, v2, aReplica()];
  assert.deepEqual(planStep(spec(2), full), { action: "retire", actorIds: [v1[1].actor_id], why });
  // Fewer replicas wanted than the old version ran: the surplus old ones go one by one.
  assert.deepEqual(planStep(spec(0), v1), { action: "retire", actorIds: [v1[1].actor_id], why });
});

Deno.test("planStep() halts a rollout while a replica of the new version is out of restarts", () => {
  const old = aReplica({ version: "v1" });
  const dead = aReplica({ state: "DEAD", ready: false });
  assert.deepEqual(planStep(spec(2), [old, dead]), { action: "none" });
  assert.deepEqual(planStep(spec(1), [old, dead]), { action: "none" });
  // A dead replica of the old version is replaced like any other.
  const deadOld = aReplica({ version: "v1", state: "DEAD", ready: false });
  assert.deepEqual(planStep(spec(1), [deadOld, aReplica()]), {
    action: "retire",
    actorIds: [deadOld.actor_id],
    why: "replaced by version v2",
  });
});

Deno.test("nextToReplace() picks the old replica that serves least, and none once all are new", () => {
  const ready = aReplica({ version: "v1" });
  const waiting = aReplica({ version: "v1", state: "RESTARTING", ready: false });
  const current = aReplica({ state: "DEAD", ready: false });
  assert.equal(nextToReplace(spec(1), [ready, waiting, current]), waiting);
  assert.equal(nextToReplace(spec(1), [ready, current]), ready);
  assert.equal(nextToReplace(spec(1), [current]), undefined);
});

Deno.test("retireOrder() ranks dead, restarting, unready, ready; newest first within each", () => {
  const [readyOld, readyNew] = [aReplica(), aReplica()];
  const unready = aReplica({ ready: false });
  const restarting = aReplica({ state: "RESTARTING", ready: false });
  const dead = aReplica({ state: "DEAD", ready: false });
  const given = [readyOld, dead, readyNew, restarting, unready];
  assert.deepEqual(retireOrder(given), [dead, restarting, unready, readyNew, readyOld]);
  assert.equal(given[0], readyOld, "the input is left in its order");
});
