/**
 * The head's metrics: one registry for the head and its modules, served at `GET /metrics`
 * in the Prometheus text format. A host service rather than a plugin module: its HTTP
 * middleware, its timing of store writes and the modules' `ctx.metrics` must exist before
 * any module is built.
 *
 * @example
 * ```ts
 * const metrics = new HeadMetrics();
 * const stores = metrics.timeStores({ jobs, logs, packages, actors });
 * const ctx = { ...rest, stores, metrics: metrics.forModule("hello") };
 * app.use(metrics.middleware); // first, before authentication
 * metrics.start({ stores, events, supervisor, scheduler }); // before any job can change
 * ```
 * @module
 */
import { describeRoute } from "../../kit/route_doc.ts";
import { Hono, type MiddlewareHandler } from "hono";
import { setTimeout as delay } from "node:timers/promises";
import type { EventBus } from "../../kit/events.ts";
import type { Supervisor } from "../../kit/supervision.ts";
import type { LogStore } from "../../storage/logs.ts";
import type { Scheduler } from "../../scheduler/scheduler.ts";
import { httpMetrics } from "./http.ts";
import { JobMetrics } from "./jobs.ts";
import { registerProcessMetrics, watchEventLoopLag } from "./process.ts";
import { watchQueue } from "./queue.ts";
import { EXPOSITION_CONTENT_TYPE, MetricsRegistry, type MetricsScope } from "../../kit/metrics.ts";
import { type TimedStores, timeStoreWrites } from "./stores.ts";

export type { Counter, Gauge, Histogram, MetricOptions, MetricsScope } from "../../kit/metrics.ts";

/** Where the metrics are served. */
export const METRICS_PATH = "/metrics";
/** How often running jobs' logs are measured for `jobhead_job_log_written_bytes_total`. */
const LOG_SAMPLE_MS = 5_000;

/** What `start()` watches. */
export interface MetricsSources {
  stores: Pick<TimedStores, "jobs"> & { logs: LogStore };
  events: EventBus;
  supervisor: Supervisor;
  scheduler: Scheduler;
}

/** The head's metrics; `start()` before serving, `stop()` at shutdown. */
export class HeadMetrics {
  #registry = new MetricsRegistry();
  #jobs = new JobMetrics(this.#registry);
  #stopped = new AbortController();
  #unwatchQueue = () => {};
  /** Counts and times every request; the head's first middleware. */
  readonly middleware: MiddlewareHandler = httpMetrics(this.#registry);

  constructor() {
    registerProcessMetrics(this.#registry);
  }

  /** A module's scope: its metric names start with `jobhead_<module>_`. */
  forModule(name: string): MetricsScope {
    return this.#registry.scope(`jobhead_${name.replaceAll("-", "_")}_`);
  }

  /** `stores` with their KV writes timed, and job deletions counted out of `jobhead_jobs`. */
  timeStores<T extends TimedStores>(stores: T): T {
    return timeStoreWrites(
      this.#registry,
      stores,
      (id, status) => this.#jobs.deleted(id, status),
    );
  }

  /**
   * Starts watching: call once, before any job can change (before modules start). Jobs
   * are counted in the background; timers run until `stop()`.
   */
  start({ stores, events, supervisor, scheduler }: MetricsSources): void {
    const signal = this.#stopped.signal;
    const processes = this.#registry.gauge({
      name: "jobhead_supervised_processes",
      help: "Process groups (jobs and actors) the head's supervisor runs or adopted.",
      collect: () => processes.set(supervisor.liveCount),
    });
    this.#jobs.start(stores, events);
    this.#unwatchQueue = watchQueue(this.#registry, scheduler);
    watchEventLoopLag(this.#registry, signal);
    this.#sampleLogs(stores.logs, signal);
  }

  /** Stops the timers and listeners; safe to call twice. */
  stop(): void {
    this.#stopped.abort();
    this.#jobs.stop();
    this.#unwatchQueue();
  }

  /** `GET /metrics`: the exposition of every metric. */
  routes(): Hono {
    const doc = describeRoute({
      summary: "The head's metrics in the Prometheus text format",
      description: "Needs the token unless the head runs with `--metrics-public`; the README " +
        "lists every series.",
      response: { mediaType: EXPOSITION_CONTENT_TYPE },
    });
    return new Hono().get(METRICS_PATH, doc, async (c) => {
      return c.body(await this.#registry.expose(), 200, {
        "content-type": EXPOSITION_CONTENT_TYPE,
      });
    });
  }

  async #sampleLogs(logs: LogStore, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#jobs.sampleLogs(logs);
      await delay(LOG_SAMPLE_MS, undefined, { signal }).catch(() => {});
    }
  }
}
