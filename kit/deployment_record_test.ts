import assert from "node:assert/strict";
import { DeploymentSpec } from "./deployment_record.ts";

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
