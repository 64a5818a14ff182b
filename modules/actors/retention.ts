/**
 * Actor retention (`--actor-retention-minutes`, default 60): the records of DEAD actors
 * (job supervisors, serve replicas) are removed that long after they died. The jobs and
 * deployments they belonged to keep their own records.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Actor } from "../../kit/actor_record.ts";
import type { ActorRegistry } from "../../kit/actor_registry.ts";
import type { Logger } from "../../kit/log.ts";

/** The longest a sweep waits for the next one. */
const MAX_SWEEP_INTERVAL_MS = 5 * 60_000;
/** The shortest: a tiny retention period does not make a busy loop. */
const MIN_SWEEP_INTERVAL_MS = 1_000;

/** The ids of the DEAD actors among `actors` that died more than `retentionMinutes` ago. */
export function expiredActors(
  actors: readonly Pick<Actor, "actor_id" | "state" | "end_time">[],
  now: number,
  retentionMinutes: number,
): string[] {
  const cutoff = now - retentionMinutes * 60_000;
  return actors
    .filter((a) => a.state === "DEAD" && a.end_time !== null && a.end_time < cutoff)
    .map((a) => a.actor_id);
}

/**
 * Removes expired DEAD actors at start, then as often as the period needs (at most every
 * 5 minutes), until `signal` aborts. Each removal is announced (`actor-deleted`).
 */
export async function keepActorRetention(
  actors: ActorRegistry,
  options: { retentionMinutes: number; now: () => number; logger: Logger; signal: AbortSignal },
): Promise<void> {
  const interval = Math.min(
    MAX_SWEEP_INTERVAL_MS,
    Math.max(MIN_SWEEP_INTERVAL_MS, options.retentionMinutes * 60_000),
  );
  while (!options.signal.aborted) {
    try {
      const dead = await actors.list({ states: ["DEAD"] });
      const expired = expiredActors(dead, options.now(), options.retentionMinutes);
      await actors.remove(expired); // each goes out on the bus
    } catch (err) {
      options.logger.error("actor retention failed:", err);
    }
    await delay(interval, undefined, { signal: options.signal }).catch(() => {});
  }
}
