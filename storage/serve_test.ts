import assert from "node:assert/strict";
import { type Deployment, DeploymentSpec } from "../kit/deployment_record.ts";
import type { Replica } from "../modules/serve/replica.ts";
import { KvServeStore } from "./serve.ts";

const PREFIX = ["mod", "serve"];

function aReplica(actorId: string, deployment = "web"): Replica {
  return {
    actor_id: actorId,
    replica_tag: `${deployment}#x`,
    deployment,
    version: "v1",
    port: 8000,
    state: "ALIVE",
    supervisor: { pid: 1, start_ticks: 2 },
    num_restarts: 0,
    start_time: 1_000,
    end_time: null,
    restart_at: null,
    death_cause: null,
  };
}

function aDeployment(name: string): Deployment {
  const spec = DeploymentSpec.parse({ name, entrypoint: "true", version: "v1" });
  return {
    name,
    spec: { ...spec, version: "v1" },
    status: "HEALTHY",
    message: "",
    created_at: 1,
    updated_at: 1,
  };
}

Deno.test("KvServeStore.deleteDeployment() removes its replicas and nobody else's", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = new KvServeStore<Deployment, Replica>(kv, PREFIX);
  await store.putDeployment(aDeployment("web"));
  await store.putDeployment(aDeployment("web2"));
  await store.putReplica(aReplica("r1"));
  await store.putReplica(aReplica("r2"));
  await store.putReplica(aReplica("r3", "web2"));
  await store.deleteReplica("web", "r2");
  assert.deepEqual((await store.listReplicas("web")).map((r) => r.actor_id), ["r1"]);

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

Deno.test("DeploymentSpec fills in defaults and wants one kind of health check", () => {
  const spec = DeploymentSpec.parse({ name: "web", entrypoint: "serve" });
  assert.equal(spec.num_replicas, 1);
  assert.deepEqual(spec.restart_policy, {
    max_restarts: 3,
    initial_backoff_s: 1,
    max_backoff_s: 30,
    min_uptime_s: 10,
  });
  assert.equal(
    DeploymentSpec.safeParse({ name: "web", entrypoint: "x", health_check: {} }).success,
    false,
  );
  assert.equal(
    DeploymentSpec.safeParse({
      name: "web",
      entrypoint: "x",
      health_check: { command: "true", http_path: "/" },
    }).success,
    false,
  );
  assert.equal(DeploymentSpec.safeParse({ name: "a/b", entrypoint: "x" }).success, false);
  assert.equal(DeploymentSpec.safeParse({ name: "web", entrypoint: "x", extra: 1 }).success, false);
});
