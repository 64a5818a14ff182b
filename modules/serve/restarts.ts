/**
 * The restart policy of serve replicas, as pure decisions: what becomes of a replica whose
 * run ended, and how long it waits before it runs again. The controller applies them.
 */
import type { ExitReason } from "../../kit/module.ts";
import type { Replica, RestartPolicy } from "../../storage/serve.ts";

/** How a replica's run ended, as the controller knows it. */
export interface RunEnd {
  /** Why it ended, for its record (see `describeEnd()`). */
  cause: string;
  /** Why it was being stopped on purpose, when it was: then its end ends it for good. */
  stopping?: string;
  /** It was killed through the actors API with `no_restart`. */
  noRestart?: boolean;
}

/** What becomes of a replica whose run ended. */
export type AfterEnd =
  /** Record it DEAD with `cause` and forget it: it was stopped, or is not wanted any more. */
  | { action: "bury"; cause: string }
  /** Keep it as `replica`: DEAD, having used up its restarts, which halts a rollout. */
  | { action: "give_up"; replica: Replica }
  /** Keep it as `replica`: RESTARTING, due to run again `backoffS` seconds from now. */
  | { action: "restart"; replica: Replica; backoffS: number };

/**
 * What becomes of `replica` after `end` at `now` while the deployment wants `spec`: a
 * replica stopped on purpose, killed with `no_restart`, or of another version is buried;
 * one restarted `max_restarts` times (-1: no limit) is given up; any other restarts.
 */
export function afterEnd(
  replica: Replica,
  spec: { version: string; restart_policy: RestartPolicy },
  end: RunEnd,
  now: number,
): AfterEnd {
  const { cause } = end;
  if (end.stopping !== undefined) return { action: "bury", cause: `stopped: ${end.stopping}` };
  if (end.noRestart) {
    return { action: "bury", cause: `${cause}; not restarted: no_restart was asked` };
  }
  if (replica.version !== spec.version) {
    return {
      action: "bury",
      cause: `${cause}; not restarted: version ${spec.version} replaces it`,
    };
  }
  const policy = spec.restart_policy;
  if (policy.max_restarts !== -1 && replica.num_restarts >= policy.max_restarts) {
    const death_cause = `${cause}; not restarted: it was restarted ${replica.num_restarts} ` +
      `times, the most its max_restarts allows`;
    return {
      action: "give_up",
      replica: { ...replica, state: "DEAD", supervisor: null, end_time: now, death_cause },
    };
  }
  const restarts = replica.num_restarts + 1;
  const backoffS = restartBackoffS(policy, restarts);
  return {
    action: "restart",
    backoffS,
    replica: {
      ...replica,
      state: "RESTARTING",
      supervisor: null,
      num_restarts: restarts,
      restart_at: now + backoffS * 1000,
      death_cause: cause,
    },
  };
}

/**
 * Seconds to wait before restart number `restarts` (from 1): `initial_backoff_s`,
 * doubled with every restart, up to `max_backoff_s` (never below the initial wait).
 */
export function restartBackoffS(
  policy: { initial_backoff_s: number; max_backoff_s: number },
  restarts: number,
): number {
  return Math.min(
    policy.initial_backoff_s * 2 ** (restarts - 1),
    Math.max(policy.max_backoff_s, policy.initial_backoff_s),
  );
}

/** How a replica's process ended, in words for its `death_cause`. */
export function describeEnd(reason: ExitReason): string {
  if (reason.kind === "exited") return `it exited with code ${reason.code}`;
  if (reason.killed) {
    return `it was killed through the actors API (force_kill=${reason.killed.force_kill})`;
  }
  return "its supervisor died, and its process group with it";
}
