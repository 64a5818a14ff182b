/**
 * Job metrics: jobs by status, counted from the store once at start and then kept
 * current from the event bus; submit→RUNNING and stop→gone latencies; log growth.
 */
import type { EventBus } from "../../kit/events.ts";
import {
  isTerminal,
  type Job,
  type JobStatus,
  JobStatus as JobStatuses,
} from "../../kit/job_record.ts";
import type { JobStore } from "../../storage/jobs.ts";
import type { LogStore } from "../../storage/logs.ts";
import type { MetricsScope } from "../../kit/metrics.ts";
import { createLogger } from "../../kit/log.ts";

const log = createLogger("metrics");

/** Jobs read from the store at a time by the count at start. */
const COUNT_PAGE_SIZE = 1000;
/** Buckets of the job latencies, in seconds: jobs start in ms and may stop for minutes. */
const JOB_LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Keeps the job series current; `start()` once, `stop()` at shutdown. */
export class JobMetrics {
  #byStatus;
  #toRunning;
  #stopToGone;
  #logBytes;
  /** Status of every job not yet terminal: where a change comes from. */
  #active = new Map<string, JobStatus>();
  /**
   * While the count at start runs: the status each job changed to meanwhile (null:
   * deleted). These are newer than what the count reads, and win over it.
   */
  #changedDuringCount?: Map<string, JobStatus | null>;
  /** Settles when the count at start is done. */
  #counted: Promise<void> = Promise.resolve();
  /** Log size last measured, by running job. */
  #logSizes = new Map<string, number>();
  /** Last measures of the logs of jobs that just ended, under way. */
  #lastMeasures = new Set<Promise<void>>();
  #unsubscribe = () => {};
  #stopped = false;
  #logs?: LogStore;

  constructor(metrics: MetricsScope) {
    this.#byStatus = metrics.gauge({
      name: "jobhead_jobs",
      help: "Jobs in the store, by status.",
      labelNames: ["status"],
      // The first scrapes wait for the count at start (about 1 s per 10,000 jobs).
      collect: () => this.#counted,
    });
    for (const status of JobStatuses.options) this.#byStatus.set(0, { status });
    this.#toRunning = metrics.histogram({
      name: "jobhead_job_start_latency_seconds",
      help: "Time from a job's submission to its RUNNING status, for jobs this head started.",
      buckets: JOB_LATENCY_BUCKETS,
    });
    this.#stopToGone = metrics.histogram({
      name: "jobhead_job_stop_latency_seconds",
      help: "Time from a stop request to the end of the job's process, for running jobs stopped.",
      buckets: JOB_LATENCY_BUCKETS,
    });
    this.#logBytes = metrics.counter({
      name: "jobhead_job_log_written_bytes_total",
      help: "Growth of running jobs' logs, measured every few seconds and when a job ends.",
      // A scrape waits for the last measures under way: a job's growth shows once it ended.
      collect: async () => {
        await Promise.all(this.#lastMeasures);
      },
    });
  }

  /**
   * Subscribes to `events`, then counts the jobs in `stores.jobs` by status in the
   * background, so the head need not wait for it; changes made meanwhile win over what
   * the count reads.
   */
  start(stores: { jobs: JobStore<Job>; logs: LogStore }, events: EventBus): void {
    this.#logs = stores.logs;
    this.#changedDuringCount = new Map();
    this.#unsubscribe = events.on((event) => {
      if (event.type === "job") this.#onChange(event.job);
    });
    this.#counted = this.#count(stores.jobs, this.#changedDuringCount).catch((err) => {
      if (!this.#stopped) log.error("counting the jobs for /metrics failed:", err);
    });
  }

  /** Stops listening and counting; safe to call twice. */
  stop(): void {
    this.#stopped = true;
    this.#unsubscribe();
  }

  /** Counts a deleted job out; `status` is the status it had. */
  deleted(id: string, status: JobStatus): void {
    if (this.#changedDuringCount) this.#changedDuringCount.set(id, null);
    else this.#byStatus.dec({ status });
  }

  /** Measures the logs of running jobs and counts their growth; cheap: one stat per job. */
  async sampleLogs(logs: LogStore): Promise<void> {
    for (const [id, status] of this.#active) {
      if (status === "RUNNING") await this.#measureLog(logs, id);
    }
  }

  async #count(store: JobStore<Job>, changed: Map<string, JobStatus | null>): Promise<void> {
    const statuses = new Map<string, JobStatus>();
    let cursor: string | undefined;
    do {
      const page = await store.list({ limit: COUNT_PAGE_SIZE, cursor });
      if (this.#stopped) return;
      for (const job of page.jobs) {
        if (!changed.has(job.id)) statuses.set(job.id, job.status);
      }
      cursor = page.cursor;
    } while (cursor);
    // No await from here on: no change can slip between these reads and the switch to events.
    for (const [id, status] of changed) {
      if (status === null) statuses.delete(id);
      else statuses.set(id, status);
    }
    this.#changedDuringCount = undefined;
    for (const [id, status] of statuses) {
      this.#byStatus.inc({ status });
      if (!isTerminal(status)) this.#active.set(id, status);
    }
  }

  #onChange(job: Job): void {
    const changed = this.#changedDuringCount;
    const before = changed ? changed.get(job.id) ?? undefined : this.#active.get(job.id);
    if (changed) {
      changed.set(job.id, job.status); // counted when the count ends
    } else {
      if (before !== job.status) {
        if (before !== undefined) this.#byStatus.dec({ status: before });
        this.#byStatus.inc({ status: job.status });
      }
      if (isTerminal(job.status)) this.#active.delete(job.id);
      else this.#active.set(job.id, job.status);
    }
    const now = Date.now();
    if (before === "PENDING" && job.status === "RUNNING") {
      this.#toRunning.observe(Math.max(0, now - job.start_time) / 1000);
      this.#logSizes.set(job.id, 0); // its log starts empty: all of it is growth
    }
    if (before === "RUNNING" && isTerminal(job.status)) {
      if (job.stop_requested_at !== null) {
        const end = job.end_time ?? now;
        this.#stopToGone.observe(Math.max(0, end - job.stop_requested_at) / 1000);
      }
      if (this.#logs) this.#measureLast(this.#logs, job.id);
    }
  }

  /** Measures an ended job's log once more, right away: before anyone can delete it. */
  #measureLast(logs: LogStore, id: string): void {
    const measure = this.#measureLog(logs, id).finally(() => {
      this.#lastMeasures.delete(measure);
      this.#logSizes.delete(id);
    });
    this.#lastMeasures.add(measure);
  }

  async #measureLog(logs: LogStore, id: string): Promise<void> {
    let size: number;
    try {
      size = await logs.size(id);
    } catch {
      return; // no log (yet, or any more)
    }
    const last = this.#logSizes.get(id);
    // The first measure of a log is a baseline: a job adopted from a previous head wrote
    // it before; a log cut under its cap is smaller, and its growth counts from there.
    if (last !== undefined && size > last) this.#logBytes.inc(undefined, size - last);
    if (this.#active.has(id)) this.#logSizes.set(id, size);
  }
}
