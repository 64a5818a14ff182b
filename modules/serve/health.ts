/**
 * Pure decisions about a deployment's health: when a replica counts as ready, what its
 * prober does after each probe, and the deployment's status from its replicas. The
 * prober (prober.ts) and the controller do the I/O around them.
 */
import type { DeploymentStatus, HealthCheck } from "../../storage/serve.ts";
import type { ActorState } from "../../storage/actors.ts";

/** `restart_policy.min_uptime_s` when a stored spec predates it. */
export const DEFAULT_MIN_UPTIME_S = 10;

/** How often a replica that has not yet passed its health check is probed. */
export const STARTUP_PROBE_MS = 100;

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

/** Where a replica's health checks stand in its current run. */
export interface ProbeRun {
  /** Passed a check in this run (or was serving already when adopted). */
  ready: boolean;
  /** Checks failed in a row since it was last ready. */
  failures: number;
  /** When its checks began (epoch ms). */
  startedAt: number;
}

/** What a prober does after one probe. */
export type ProbeVerdict =
  /** Probe again in `waitMs`, from `run`. */
  | { action: "wait"; run: ProbeRun; waitMs: number }
  /** Stop the replica (its restart policy then restarts it), for `why`. */
  | { action: "stop"; why: string };

/**
 * The verdict on one probe of `check` that passed or not (`healthy`) at `now`: a pass
 * makes the replica ready; `failure_threshold` failures in a row once ready, or no pass
 * within `startup_timeout_s` of the start, stop it. A replica not yet ready is probed
 * every 100 ms (at most `period_s`), a ready one every `period_s`.
 */
export function judgeProbe(
  check: HealthCheck,
  run: ProbeRun,
  healthy: boolean,
  now: number,
): ProbeVerdict {
  let { ready, failures } = run;
  if (healthy) {
    ready = true;
    failures = 0;
  } else if (ready && ++failures >= check.failure_threshold) {
    return { action: "stop", why: `its health check failed ${failures} times in a row` };
  } else if (!ready && now - run.startedAt >= check.startup_timeout_s * 1000) {
    return {
      action: "stop",
      why: `it did not pass its health check within ${check.startup_timeout_s} s of starting`,
    };
  }
  const periodMs = check.period_s * 1000;
  const waitMs = ready ? periodMs : Math.min(periodMs, STARTUP_PROBE_MS);
  return { action: "wait", run: { ...run, ready, failures }, waitMs };
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
