import assert from "node:assert/strict";
import type { Replica, RestartPolicy } from "../../storage/serve.ts";
import { afterEnd, describeEnd, restartBackoffS } from "./restarts.ts";

function aReplica(changes: Partial<Replica> = {}): Replica {
  return {
    actor_id: "servereplica_web_a",
    replica_tag: "web#a",
    deployment: "web",
    version: "v1",
    port: 8000,
    state: "ALIVE",
    supervisor: { pid: 42, start_ticks: 7 },
    num_restarts: 0,
    start_time: 1_000,
    end_time: null,
    restart_at: null,
    death_cause: null,
    ...changes,
  };
}

const POLICY: RestartPolicy = {
  max_restarts: 3,
  initial_backoff_s: 1,
  max_backoff_s: 30,
  min_uptime_s: 10,
};
const SPEC = { version: "v1", restart_policy: POLICY };
const NOW = 50_000;

Deno.test("afterEnd() restarts a crashed replica with backoff, as its next restart", () => {
  const next = afterEnd(aReplica({ num_restarts: 1 }), SPEC, { cause: "exit 1" }, NOW);
  assert.deepEqual(next, {
    action: "restart",
    backoffS: 2,
    replica: aReplica({
      state: "RESTARTING",
      supervisor: null,
      num_restarts: 2,
      restart_at: NOW + 2_000,
      death_cause: "exit 1",
    }),
  });
});

Deno.test("afterEnd() gives up on a replica restarted max_restarts times, and keeps it", () => {
  const next = afterEnd(aReplica({ num_restarts: 3 }), SPEC, { cause: "exit 1" }, NOW);
  assert.deepEqual(next, {
    action: "give_up",
    replica: aReplica({
      state: "DEAD",
      supervisor: null,
      num_restarts: 3,
      end_time: NOW,
      death_cause: "exit 1; not restarted: it was restarted 3 times, the most its " +
        "max_restarts allows",
    }),
  });
  const never = { ...SPEC, restart_policy: { ...POLICY, max_restarts: 0 } };
  assert.equal(afterEnd(aReplica(), never, { cause: "exit 1" }, NOW).action, "give_up");
  const always = { ...SPEC, restart_policy: { ...POLICY, max_restarts: -1 } };
  const veteran = aReplica({ num_restarts: 1_000 });
  assert.equal(afterEnd(veteran, always, { cause: "exit 1" }, NOW).action, "restart");
});

Deno.test("afterEnd() buries a replica stopped on purpose, killed for good, or outdated", () => {
  const replica = aReplica({ num_restarts: 0 });
  const end = { cause: "exit 0" };
  // A stop names why, whatever the process did and whatever the policy allows.
  assert.deepEqual(
    afterEnd(replica, SPEC, { ...end, stopping: "scaled down", noRestart: true }, NOW),
    { action: "bury", cause: "stopped: scaled down" },
  );
  assert.deepEqual(afterEnd(replica, SPEC, { ...end, noRestart: true }, NOW), {
    action: "bury",
    cause: "exit 0; not restarted: no_restart was asked",
  });
  assert.deepEqual(afterEnd(replica, { ...SPEC, version: "v2" }, end, NOW), {
    action: "bury",
    cause: "exit 0; not restarted: version v2 replaces it",
  });
});

Deno.test("restartBackoffS() doubles from the initial wait up to the maximum", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => restartBackoffS(POLICY, n)), [
    1,
    2,
    4,
    8,
    16,
    30,
    30,
  ]);
  // A maximum below the initial wait does not shorten it.
  assert.equal(restartBackoffS({ initial_backoff_s: 5, max_backoff_s: 1 }, 3), 5);
  assert.equal(restartBackoffS({ initial_backoff_s: 0, max_backoff_s: 1 }, 3), 0);
});

Deno.test("describeEnd() tells an exit, a kill through the API and a supervisor's death apart", () => {
  assert.equal(describeEnd({ kind: "exited", code: -9, endTime: 1 }), "it exited with code -9");
  assert.equal(
    describeEnd({ kind: "died", endTime: 1, killed: { force_kill: true, no_restart: false } }),
    "it was killed through the actors API (force_kill=true)",
  );
  assert.equal(
    describeEnd({ kind: "died", endTime: 1 }),
    "its supervisor died, and its process group with it",
  );
});
