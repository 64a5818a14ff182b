/**
 * Job retention (`--job-retention-days`, `--max-finished-jobs`): finished jobs past either
 * bound are deleted, oldest first, with everything of theirs, in small batches that
 * yield to the API between deletions. By default nothing is deleted, as in Ray.
 */
import { setTimeout as delay } from "node:timers/promises";
import { isTerminal, type Job } from "../../kit/job_record.ts";
import type { Logger } from "../../kit/log.ts";

/** What retention keeps; an absent bound does not apply. */
export interface RetentionPolicy {
  /** Finished jobs that ended longer ago than this many days go. */
  retentionDays?: number;
  /** Past this many finished jobs, the oldest go. */
  maxFinished?: number;
}

/** How far a sweep has walked the jobs, newest first. */
export interface SweepState {
  /** Finished jobs seen so far, the ones chosen to go included. */
  finishedSeen: number;
}

/**
 * Which of `jobs` (a page, newest first, continuing `state`) retention deletes: the
 * finished ones past the `maxFinished` newest, and those that ended before the cutoff.
 * Running and pending jobs never go, nor count.
 */
export function expiredJobs(
  jobs: readonly Pick<Job, "id" | "status" | "end_time">[],
  policy: RetentionPolicy,
  state: SweepState,
  now: number,
): string[] {
  const cutoff = policy.retentionDays === undefined
    ? undefined
    : now - policy.retentionDays * 86_400_000;
  const expired: string[] = [];
  for (const job of jobs) {
    if (!isTerminal(job.status)) continue;
    state.finishedSeen++;
    const tooMany = policy.maxFinished !== undefined && state.finishedSeen > policy.maxFinished;
    const tooOld = cutoff !== undefined && job.end_time !== null && job.end_time < cutoff;
    if (tooMany || tooOld) expired.push(job.id);
  }
  return expired;
}

/** Whether `policy` deletes anything at all. */
export function retains(policy: RetentionPolicy): boolean {
  return policy.retentionDays !== undefined || policy.maxFinished !== undefined;
}

/** What a sweep needs of the job service. */
export interface RetentionTarget {
  list(options: { limit: number; cursor?: string }): Promise<{ jobs: Job[]; cursor?: string }>;
  /** Deletes a finished job with its log and files. */
  delete(id: string): Promise<void>;
}

/** Jobs read at a time during a sweep. */
const SWEEP_PAGE_SIZE = 500;

/**
 * Walks every job once, newest first, deleting what `policy` lets go; resolves to how
 * many it deleted. Each deletion yields to the event loop first, so a sweep of thousands
 * never stalls the API. A job that cannot be deleted (deleted meanwhile) is skipped.
 */
export async function sweepJobs(
  target: RetentionTarget,
  policy: RetentionPolicy,
  options: { now: () => number; logger: Logger; signal?: AbortSignal },
): Promise<number> {
  const state: SweepState = { finishedSeen: 0 };
  let cursor: string | undefined;
  let deleted = 0;
  do {
    const page = await target.list({ limit: SWEEP_PAGE_SIZE, cursor });
    for (const id of expiredJobs(page.jobs, policy, state, options.now())) {
      if (options.signal?.aborted) return deleted;
      await delay(0);
      try {
        await target.delete(id);
        deleted++;
      } catch (err) {
        options.logger.warn(`retention could not delete job "${id}":`, err);
      }
    }
    cursor = page.cursor;
  } while (cursor && !options.signal?.aborted);
  return deleted;
}

/** How often a sweep runs for the day-based bound. */
const SWEEP_INTERVAL_MS = 3_600_000;

/**
 * Keeps `policy` until `signal` aborts: a sweep at start, every hour, and soon after a
 * job finishes while `maxFinished` applies. Sweeps never overlap; events that arrive
 * during one add up to one more sweep after it.
 */
export async function keepRetention(
  target: RetentionTarget,
  policy: RetentionPolicy,
  options: {
    now: () => number;
    logger: Logger;
    signal: AbortSignal;
    /** Subscribes to job ends; returns the unsubscribe. */
    onJobFinished: (listener: () => void) => () => void;
  },
): Promise<void> {
  if (!retains(policy)) return;
  const { signal } = options;
  let again = true;
  let wake = () => {};
  const unsubscribe = policy.maxFinished === undefined ? () => {} : options.onJobFinished(() => {
    again = true;
    wake();
  });
  signal.addEventListener("abort", () => wake(), { once: true });
  try {
    while (!signal.aborted) {
      if (again) {
        again = false;
        try {
          const deleted = await sweepJobs(target, policy, options);
          if (deleted > 0) options.logger.info(`retention deleted ${deleted} finished jobs`);
        } catch (err) {
          options.logger.error("job retention failed:", err);
        }
        continue;
      }
      const timer = new AbortController();
      await new Promise<void>((resolve) => {
        wake = resolve;
        delay(SWEEP_INTERVAL_MS, undefined, { signal: timer.signal }).then(() => {
          again = true;
          resolve();
        }, () => {});
      });
      timer.abort();
    }
  } finally {
    unsubscribe();
  }
}
