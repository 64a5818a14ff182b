import assert from "node:assert/strict";
import { deploymentStatus, readyAt, type ReplicaHealth } from "./health.ts";

function aReplica(changes: Partial<ReplicaHealth> = {}): ReplicaHealth {
  return {
    replica_tag: "web#a",
    version: "v1",
    state: "ALIVE",
    ready: true,
    num_restarts: 0,
    death_cause: null,
    ...changes,
  };
}

const SPEC = { version: "v1", num_replicas: 1 };

Deno.test("readyAt() readies a first run at once, a restarted replica after it stays up", () => {
  assert.equal(readyAt({ num_restarts: 0 }, 5_000, 10_000), 5_000);
  assert.equal(readyAt({ num_restarts: 1 }, 5_000, 10_000), 15_000);
  assert.equal(readyAt({ num_restarts: 7 }, 5_000, 2_000), 7_000);
});

Deno.test("deploymentStatus() never reads HEALTHY between the crashes of a crash loop", () => {
  // The loop: it runs (restarted, not ready yet), crashes, waits to restart, runs again.
  const loop: ReplicaHealth[] = [
    aReplica({ state: "ALIVE", ready: false, num_restarts: 1 }),
    aReplica({ state: "RESTARTING", ready: false, num_restarts: 2, death_cause: "exit 1" }),
    aReplica({ state: "ALIVE", ready: false, num_restarts: 2 }),
  ];
  for (const replica of loop) {
    const { status, message } = deploymentStatus(SPEC, [replica]);
    assert.equal(status, "UNHEALTHY", `${replica.state}: ${message}`);
  }
  assert.match(
    deploymentStatus(SPEC, [loop[2]]).message,
    /^Replica web#a runs again after restart 2, not ready yet$/,
  );
  // Up long enough to be ready again: healthy.
  assert.equal(deploymentStatus(SPEC, [aReplica({ num_restarts: 2 })]).status, "HEALTHY");
});

Deno.test("deploymentStatus() tells starting, rolling and dead deployments apart", () => {
  assert.deepEqual(deploymentStatus(SPEC, [aReplica()]), { status: "HEALTHY", message: "" });
  assert.deepEqual(deploymentStatus(SPEC, [aReplica({ ready: false })]), {
    status: "UPDATING",
    message: "0 of 1 replicas of version v1 are ready",
  });
  assert.deepEqual(
    deploymentStatus(SPEC, [aReplica(), aReplica({ version: "v0", replica_tag: "web#old" })]),
    {
      status: "UPDATING",
      message: "1 of 1 replicas of version v1 are ready; 1 of another version still run",
    },
  );
  const dead = aReplica({ state: "DEAD", ready: false, num_restarts: 3, death_cause: "exit 3" });
  assert.deepEqual(deploymentStatus(SPEC, [dead]), {
    status: "UNHEALTHY",
    message: "Replica web#a is DEAD and will not be restarted: exit 3",
  });
  // A dead replica of an older version does not hold the new one back.
  assert.equal(
    deploymentStatus(SPEC, [aReplica(), { ...dead, version: "v0", replica_tag: "web#old" }])
      .status,
    "UPDATING",
  );
});
