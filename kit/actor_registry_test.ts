import assert from "node:assert/strict";
import { KvActorStore } from "../storage/actors.ts";
import type { Actor } from "./actor_record.ts";
import { ActorRegistry } from "./actor_registry.ts";
import { EventBus, type HeadEvent } from "./events.ts";

/** A DEAD actor of an operator's module. */
function anActor(id: string): Actor {
  return {
    actor_id: id,
    class_name: "Probe",
    name: id,
    namespace: "probes",
    state: "DEAD",
    pid: null,
    node_id: "n",
    start_time: 1_000,
    end_time: 2_000,
    resources: {},
    runtime_env: {},
    owner: { kind: "probes", id },
    port: null,
    num_restarts: 0,
    death_cause: "done",
    metadata: {},
  };
}

Deno.test("ActorRegistry announces each record it writes or removes, once it is stored", async () => {
  using kv = await Deno.openKv(":memory:");
  const events = new EventBus();
  const registry = new ActorRegistry(new KvActorStore<Actor>(kv), events);
  // What a listener reads back when it hears of a change: the change is already stored.
  const reads: Promise<[HeadEvent, Actor | undefined]>[] = [];
  events.on((event) => {
    const id = event.type === "actor"
      ? event.actor.actor_id
      : (event as { actorId: string }).actorId;
    reads.push(registry.get(id).then((actor) => [event, actor]));
  });

  await registry.record([anActor("a"), anActor("b")]);
  await Promise.all(reads);
  await registry.remove(["a"]);
  await registry.record([]);
  await registry.remove([]);
  const seen = await Promise.all(reads); // in the order of the events, whichever read ended first
  assert.deepEqual(seen.map(([event, stored]) => [event.type, stored?.actor_id]), [
    ["actor", "a"],
    ["actor", "b"],
    ["actor-deleted", undefined],
  ]);
  assert.deepEqual((await registry.list({ limit: 5 })).map((a) => a.actor_id), ["b"]);
});
