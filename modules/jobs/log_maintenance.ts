/**
 * Log maintenance: keeps running jobs' logs under the size cap by dropping their middle,
 * and deletes the logs of jobs that ended longer ago than the retention period.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../../kit/log.ts";
import { type Job, type JobStore, TERMINAL_STATUSES } from "../../storage/jobs.ts";
import type { LogStore } from "../../storage/logs.ts";

/** How often running jobs' logs are measured against the cap. */
const LOG_CAP_CHECK_MS = 2_000;
/** How often logs past their retention are looked for. */
const LOG_RETENTION_CHECK_MS = 3_600_000;
/** Jobs read from the store at a time while looking for expired logs. */
const EXPIRY_PAGE_SIZE = 1000;

/** What `LogMaintenance` works on, and its limits. */
export interface LogMaintenanceOptions {
  jobs: JobStore;
  logs: LogStore;
  logger: Logger;
  /** A log past this size loses its middle, keeping its head and tail. */
  maxBytes: number;
  /** Logs of jobs that ended longer ago than this are deleted; 0 keeps them. */
  retentionDays: number;
}

/**
 * What to keep of a log of `sizeBytes` under a cap of `capBytes`: about a quarter of the
 * cap from its head and half from its tail; undefined while it is within the cap.
 */
export function trimOf(
  sizeBytes: number,
  capBytes: number,
): { keepHead: number; keepTail: number } | undefined {
  if (sizeBytes <= capBytes) return undefined;
  return { keepHead: Math.floor(capBytes / 4), keepTail: Math.floor(capBytes / 2) };
}

/** Whether a job's log is due for deletion: it ended before `cutoff` and still has one. */
export function isLogExpired(job: Job, cutoff: number): boolean {
  return job.end_time !== null && job.end_time < cutoff && job.log_removed_at === undefined;
}

/** Caps and expires job logs. */
export class LogMaintenance {
  #options: LogMaintenanceOptions;

  constructor(options: LogMaintenanceOptions) {
    this.#options = options;
  }

  /**
   * Caps the logs of the jobs `runningIds()` names every 2 s, and, with a retention
   * period, deletes expired logs every hour, until `signal` aborts.
   */
  async run(runningIds: () => Iterable<string>, signal: AbortSignal): Promise<void> {
    let lastExpiry = 0;
    while (!signal.aborted) {
      for (const id of [...runningIds()]) await this.capLog(id);
      if (this.#options.retentionDays > 0 && Date.now() - lastExpiry > LOG_RETENTION_CHECK_MS) {
        lastExpiry = Date.now();
        await this.expireLogs(lastExpiry).catch((err) =>
          this.#options.logger.error("log retention failed:", err)
        );
      }
      await delay(LOG_CAP_CHECK_MS, undefined, { signal }).catch(() => {});
    }
  }

  /** Drops the middle of a job's log that is over the cap. Logs a failure; never throws. */
  async capLog(id: string): Promise<void> {
    const { logs, maxBytes, logger } = this.#options;
    try {
      const trim = trimOf(await logs.size(id), maxBytes);
      if (trim) await logs.trim(id, trim.keepHead, trim.keepTail);
    } catch (err) {
      logger.error(`capping the log of job "${id}" failed:`, err);
    }
  }

  /**
   * Deletes the logs of jobs that ended more than the retention period before `now`, and
   * marks each job's log removed. A job whose mark fails is tried again by the next call.
   */
  async expireLogs(now: number): Promise<void> {
    const { jobs, logs, logger, retentionDays } = this.#options;
    const cutoff = now - retentionDays * 86_400_000;
    let cursor: string | undefined;
    do {
      const page = await jobs.list({
        statuses: [...TERMINAL_STATUSES],
        limit: EXPIRY_PAGE_SIZE,
        cursor,
      });
      for (const job of page.jobs) {
        if (!isLogExpired(job, cutoff)) continue;
        await logs.remove(job.id);
        await jobs.update(job.id, job.status, { log_removed_at: Date.now() }).catch((err) => {
          // Deleted meanwhile, or the disk is full: the next sweep tries again.
          logger.warn(`marking the log of job "${job.id}" removed failed:`, err);
        });
      }
      cursor = page.cursor;
    } while (cursor);
  }
}
