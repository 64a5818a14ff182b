/** The contract between the head and its plugin modules (DESIGN.md, "The head and its modules"). */
import type { KvStore } from "../storage/kv.ts";
import type { Cluster } from "./cluster.ts";
import type { Hono } from "hono";
import type { JobStore } from "../storage/jobs.ts";
import type { LogStore } from "../storage/logs.ts";
import type { PackageStore } from "../storage/packages.ts";
import type { Supervisor } from "./supervision.ts";
import type { ActorRegistry } from "./actor_registry.ts";
import type { Job } from "./job_record.ts";
import type { MetricsScope } from "./metrics.ts";
import type { Scheduler } from "../scheduler/scheduler.ts";
import type { HeadConfig } from "./config.ts";
import type { EventBus } from "./events.ts";
import type { Logger } from "./log.ts";
import type { WorkerPool } from "./worker_pool.ts";

export type { Logger } from "./log.ts";
export type { ActorRegistry } from "./actor_registry.ts";

// The supervisor's types come with it in the context: modules import them from here.
export type {
  ExitHandler,
  ExitReason,
  KillRequest,
  RunSpec,
  SupervisedProcess,
  Supervisor,
  SupervisorIdentity,
} from "./supervision.ts";
export type {
  Allocation,
  ClusterState,
  NodeUse,
  QueuedJob,
  Scheduler,
} from "../scheduler/scheduler.ts";
export type {
  Counter,
  Gauge,
  Histogram,
  HistogramOptions,
  MetricOptions,
  MetricsScope,
} from "./metrics.ts";

/** A plugin module: built-in or an operator's, loaded by the host. */
export interface HeadModule {
  /** Unique; names the module's snapshot section and KV prefix. */
  name: string;
  /** Loaded under `--minimal` too. */
  minimal: boolean;
  /** Registers the module's routes: returns a Hono app the host mounts at `/`. */
  routes?(ctx: ModuleContext): Hono;
  /** Starts long-lived work; it watches `ctx.signal`. */
  start?(ctx: ModuleContext): Promise<void> | void;
  /** Stops the module; safe to call twice. Supervised processes keep running. */
  stop?(): Promise<void> | void;
  /** Contributes `data.snapshot.<snapshotKey ?? name>` to `GET /api/snapshot`. */
  snapshot?(): Promise<unknown> | unknown;
  /** The key of the snapshot section when it is not the name (serve's is `deployments`). */
  snapshotKey?: string;
  /** Pages the module adds to the dashboard: a nav entry and an ES module each. */
  views?: ModuleView[];
}

/**
 * A dashboard page of a module (docs/modules.md, "Dashboard views"). The head serves
 * `file` at `/ui/modules/<module>/<id>.js`; the page shows it at `#/m/<module>/<id>`.
 */
export interface ModuleView {
  /** `[a-z0-9_-]{1,64}`, unique within the module. */
  id: string;
  /** The nav entry's text. */
  title: string;
  /** A `file:` URL of an ES module exporting `mount(el, ctx)` and, optionally, `unmount()`. */
  file: URL;
}

/** A view together with the module that contributes it. */
export interface ContributedView {
  module: string;
  view: ModuleView;
}

/** A module file's export: `createModule()`. */
export type ModuleFactory = () => HeadModule | Promise<HeadModule>;

/** Facts about the running head, filled in once it listens. */
export interface HeadInfo {
  /** URL clients and jobs reach the head at, e.g. `http://127.0.0.1:8265`. */
  address: string;
  /** Stable for the life of a data directory. */
  sessionName: string;
  /** This head's node id (hex). */
  nodeId: string;
  /** jobhead's own version. */
  version: string;
  /** The git commit jobhead runs from, or "" when unknown. */
  commit: string;
}

/** The stores modules share. */
export interface Stores {
  /** Job records; the jobs module writes them. */
  jobs: JobStore<Job>;
  logs: LogStore;
  /** Uploaded working_dir packages. */
  packages: PackageStore;
}

/** What the host gives each module. */
export interface ModuleContext {
  /** The shared KV store; a module keeps its own data under `kvPrefix`. */
  kv: KvStore;
  /** `["mod", <name>]`. */
  kvPrefix: Deno.KvKey;
  stores: Stores;
  config: HeadConfig;
  info: HeadInfo;
  logger: Logger;
  events: EventBus;
  /**
   * Actor records (supervised processes): a module records the actors it owns here, and
   * each change goes out on the bus. The one writer of the actor store.
   */
  actors: ActorRegistry;
  /**
   * Runs, stops, kills and re-adopts supervised process groups, and sees each to its end
   * (the actors' machinery; kit/supervision.ts).
   */
  supervisor: Supervisor;
  /**
   * The nodes' capacity and the queue: modules read its state, and jobs (or anything that
   * needs resources) wait in it until they fit.
   */
  scheduler: Scheduler;
  /** The cluster this process is part of (PostgreSQL store); absent on a single machine. */
  cluster?: Cluster;
  /** Runs CPU-heavy functions in workers, off the event loop; shared by all modules. */
  workers: WorkerPool;
  /** Registers the module's own metrics, served at `GET /metrics` as `jobhead_<name>_…`. */
  metrics: MetricsScope;
  /** Aborted when the head shuts down. */
  signal: AbortSignal;
  /** The dashboard views of the modules loaded now (the head always sets it). */
  moduleViews?: () => ContributedView[];
}
