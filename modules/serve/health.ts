/**
 * Pure decisions about a deployment's health: when a replica counts as ready, and the
 * deployment's status from its replicas. The controller does the I/O around them.
 */
import type { DeploymentStatus } from "../../kit/deployment_record.ts";
import type { ActorState } from "../../kit/actor_record.ts";

/** `restart_policy.min_uptime_s` when a stored spec predates it. */
export const DEFAULT_MIN_UPTIME_S = 10;

/**
 * When a replica without a health check that started running at `aliveSince` counts as
 * ready: at once on its first run; once it has been restarted, only after it stayed up
 * `minUptimeMs`, so a crash-looping replica never reads ready (nor its deployment
 * HEALTHY) in the gaps between its crashes.
 */
export function readyAt(
  replica: { num_restarts: number },
  aliveSince: number,
  minUptimeMs: number,
): number {
  return replica.num_restarts === 0 ? aliveSince : aliveSince + minUptimeMs;
}

/** What the status of a deployment is derived from, for one of its replicas. */
export interface ReplicaHealth {
  replica_tag: string;
  version: string;
  state: ActorState;
  /** Passed its health check (or, without one, has been up long enough) since it started. */
  ready: boolean;
  num_restarts: number;
  death_cause: string | null;
}

/**
 * The status of a deployment that wants `spec` from its `replicas` (those not being
 * stopped on purpose): UNHEALTHY while a replica of the current version is dead, waits
 * to restart, or runs again after a restart without being ready yet; HEALTHY once every
 * wanted replica is ready and no other runs; UPDATING otherwise.
 */
export function deploymentStatus(
  spec: { version: string; num_replicas: number },
  replicas: readonly ReplicaHealth[],
): { status: DeploymentStatus; message: string } {
  const current = replicas.filter((r) => r.version === spec.version);
  const failing = current.find((r) => r.state === "DEAD") ??
    current.find((r) => r.state === "RESTARTING");
  if (failing) {
    const { replica_tag, state, num_restarts, death_cause } = failing;
    const what = state === "DEAD"
      ? "is DEAD and will not be restarted"
      : `is RESTARTING (restart ${num_restarts})`;
    return { status: "UNHEALTHY", message: `Replica ${replica_tag} ${what}: ${death_cause}` };
  }
  const recovering = current.find((r) => r.state === "ALIVE" && !r.ready && r.num_restarts > 0);
  if (recovering) {
    const { replica_tag, num_restarts } = recovering;
    return {
      status: "UNHEALTHY",
      message: `Replica ${replica_tag} runs again after restart ${num_restarts}, not ready yet`,
    };
  }
  const ready = current.filter((r) => r.ready).length;
  const olderCount = replicas.length - current.length;
  if (ready === spec.num_replicas && current.length === ready && olderCount === 0) {
    return { status: "HEALTHY", message: "" };
  }
  return {
    status: "UPDATING",
    message: `${ready} of ${spec.num_replicas} replicas of version ${spec.version} are ready` +
      (olderCount > 0 ? `; ${olderCount} of another version still run` : ""),
  };
}
