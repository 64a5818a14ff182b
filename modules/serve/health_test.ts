import assert from "node:assert/strict";
import type { HealthCheck } from "../../storage/serve.ts";
import {
  deploymentStatus,
  judgeProbe,
  type ProbeRun,
  readyAt,
  type ReplicaHealth,
  STARTUP_PROBE_MS,
} from "./health.ts";

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

const CHECK: HealthCheck = {
  http_path: "/",
  period_s: 10,
  timeout_s: 5,
  failure_threshold: 3,
  startup_timeout_s: 30,
};
const START = 1_000;
const starting: ProbeRun = { ready: false, failures: 0, startedAt: START };

Deno.test("judgeProbe() probes a starting replica every 100 ms until it passes, then every period", () => {
  assert.deepEqual(judgeProbe(CHECK, starting, false, START + 500), {
    action: "wait",
    run: starting,
    waitMs: STARTUP_PROBE_MS,
  });
  assert.deepEqual(judgeProbe(CHECK, starting, true, START + 500), {
    action: "wait",
    run: { ...starting, ready: true },
    waitMs: 10_000,
  });
  // A period shorter than the startup interval is kept.
  const quick = { ...CHECK, period_s: 0.05 };
  assert.deepEqual(judgeProbe(quick, starting, false, START), {
    action: "wait",
    run: starting,
    waitMs: 50,
  });
});

Deno.test("judgeProbe() stops a replica that does not pass within startup_timeout_s", () => {
  assert.equal(judgeProbe(CHECK, starting, false, START + 29_999).action, "wait");
  assert.deepEqual(judgeProbe(CHECK, starting, false, START + 30_000), {
    action: "stop",
    why: "it did not pass its health check within 30 s of starting",
  });
  // A pass in time counts even at the deadline.
  assert.equal(judgeProbe(CHECK, starting, true, START + 30_000).action, "wait");
});

Deno.test("judgeProbe() stops a ready replica after failure_threshold failures in a row", () => {
  let run: ProbeRun = { ready: true, failures: 0, startedAt: START };
  const late = START + 3_600_000; // long past the startup timeout: it no longer applies
  for (const failures of [1, 2]) {
    const verdict = judgeProbe(CHECK, run, false, late);
    assert.deepEqual(verdict, { action: "wait", run: { ...run, failures }, waitMs: 10_000 });
    run = verdict.run;
  }
  // A pass in between starts the count again.
  const passed = judgeProbe(CHECK, run, true, late);
  assert.deepEqual(passed, { action: "wait", run: { ...run, failures: 0 }, waitMs: 10_000 });
  assert.deepEqual(judgeProbe(CHECK, run, false, late), {
    action: "stop",
    why: "its health check failed 3 times in a row",
  });
});
