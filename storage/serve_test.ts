import assert from "node:assert/strict";
import { KvServeStore, type StoredDeployment, type StoredReplica } from "./serve.ts";

const PREFIX = ["mod", "serve"];

/** A replica's record: the store needs its keys, and keeps the rest as given. */
function aReplica(actorId: string, deployment = "web"): StoredReplica & { port: number } {
  return { actor_id: actorId, deployment, port: 8000 };
}

function aDeployment(name: string): StoredDeployment & { status: string } {
  return { name, status: "HEALTHY" };
}

Deno.test("KvServeStore.deleteDeployment() removes its replicas and nobody else's", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = new KvServeStore<
    StoredDeployment & { status: string },
    StoredReplica & { port: number }
  >(kv, PREFIX);
  await store.putDeployment(aDeployment("web"));
  await store.putDeployment(aDeployment("web2"));
  await store.putReplica(aReplica("r1"));
  await store.putReplica(aReplica("r2"));
  await store.putReplica(aReplica("r3", "web2"));
  await store.deleteReplica("web", "r2");
  assert.deepEqual(await store.listReplicas("web"), [aReplica("r1")]);

  await store.deleteDeployment("web");
  await store.deleteDeployment("web");
  assert.deepEqual((await store.listDeployments()).map((d) => d.name), ["web2"]);
  assert.deepEqual(await store.listReplicas("web"), []);
  assert.deepEqual((await store.listReplicas("web2")).map((r) => r.actor_id), ["r3"]);
  // Everything stays under the module's prefix.
  for await (const entry of kv.list({ prefix: [] })) {
    assert.deepEqual(entry.key.slice(0, 2), PREFIX);
  }
});
