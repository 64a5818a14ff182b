/**
 * A deployment's reconcile step, as a pure decision: which one move takes its replicas
 * closer to the spec (scale up, scale down, or the next step of a rollout), and in which
 * order replicas are stopped. The controller performs the move, then asks again.
 */
import type { ActorState } from "../../storage/actors.ts";

/** A replica as a reconcile step weighs it. */
export interface ReplicaView {
  actor_id: string;
  version: string;
  state: ActorState;
  /** Passed its health check (or, without one, has been up long enough) since it started. */
  ready: boolean;
  start_time: number;
}

/** The one move a reconcile step makes. */
export type Step =
  /** Nothing to do until something changes. */
  | { action: "none" }
  /** Start `count` replicas of the current version. */
  | { action: "start"; count: number }
  /**
   * A rollout short of replicas of the current version: start one, and once it is ready
   * retire the replica `nextToReplace()` picks then, for `why`.
   */
  | { action: "surge"; why: string }
  /** Stop these replicas for good, for `why`. */
  | { action: "retire"; actorIds: string[]; why: string };

/**
 * The next move for a deployment that wants `spec`, given its `replicas` (those not being
 * stopped already). Surplus replicas of the current version are retired first. Missing
 * ones are started all at once when no old ones are left; while old ones serve, one at a
 * time, each taking an old one's place once it is ready; then the last old ones are
 * retired one by one. A replica of the current version that used up its restarts (DEAD)
 * halts a rollout: the old version keeps serving until another spec is applied.
 */
export function planStep(
  spec: { version: string; num_replicas: number },
  replicas: readonly ReplicaView[],
): Step {
  const current = replicas.filter((r) => r.version === spec.version);
  const old = nextToReplace(spec, replicas);
  const surplus = current.length - spec.num_replicas;
  const halted = current.some((r) => r.state === "DEAD");
  const why = `replaced by version ${spec.version}`;
  if (surplus > 0) {
    const extra = retireOrder(current).slice(0, surplus);
    return { action: "retire", actorIds: extra.map((r) => r.actor_id), why: "scaled down" };
  }
  if (surplus < 0 && !old) return { action: "start", count: -surplus };
  if (halted || !old) return { action: "none" };
  if (surplus < 0) return { action: "surge", why };
  return { action: "retire", actorIds: [old.actor_id], why };
}

/** The replica of another version than `spec`'s to retire next, if any is left. */
export function nextToReplace<T extends ReplicaView>(
  spec: { version: string },
  replicas: readonly T[],
): T | undefined {
  return retireOrder(replicas.filter((r) => r.version !== spec.version))[0];
}

/**
 * `replicas` in the order they are stopped: dead ones, then those waiting to restart,
 * then those not ready, then ready ones; within each, the newest first.
 */
export function retireOrder<T extends ReplicaView>(replicas: readonly T[]): T[] {
  const rank = (r: ReplicaView) =>
    r.state === "DEAD" ? 0 : r.state === "RESTARTING" ? 1 : r.ready ? 3 : 2;
  return replicas.toSorted((a, b) => rank(a) - rank(b) || b.start_time - a.start_time);
}
