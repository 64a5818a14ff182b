/**
 * A module context for unit tests of modules: over an in-memory KV the test opens, files
 * under a temp dir, with the supervisor the test chooses. The one hand-built context.
 */
import type { KvStore } from "../storage/kv.ts";
import { join } from "node:path";
import { parseConfig } from "../host/config.ts";
import { ActorRegistry } from "../kit/actor_registry.ts";
import type { HeadConfig } from "../kit/config.ts";
import { EventBus } from "../kit/events.ts";
import { aJobStore } from "../kit/job_record_fixture.ts";
import { createLogger } from "../kit/log.ts";
import { MetricsRegistry } from "../kit/metrics.ts";
import type { ModuleContext } from "../kit/module.ts";
import type { Supervisor } from "../kit/supervision.ts";
import { WorkerPool } from "../kit/worker_pool.ts";
import { Scheduler } from "../scheduler/scheduler.ts";
import { KvActorStore } from "../storage/actors.ts";
import { FileLogStore } from "../storage/logs.ts";
import { FilePackageStore } from "../storage/packages.ts";

/** What a test gives the context. */
export interface TestContextOptions {
  kv: KvStore;
  /** Holds the logs and packages; the config's data dir. */
  dir: string;
  /** Names the KV prefix, `["mod", module]`. */
  module: string;
  supervisor: Supervisor;
  /** Over the defaults of `parseConfig([], {})`. */
  config?: Partial<HeadConfig>;
}

/** A context, and `close()` to end what it started (scheduler, workers, its signal). */
export function testContext(options: TestContextOptions): { ctx: ModuleContext; close(): void } {
  const shutdown = new AbortController();
  const events = new EventBus();
  const scheduler = new Scheduler({
    nodes: [{ name: "test", total: { CPU: 1 } }],
    reserveAfterMs: 0,
  });
  const workers = new WorkerPool({ size: 1 });
  const ctx: ModuleContext = {
    kv: options.kv,
    kvPrefix: ["mod", options.module],
    stores: {
      jobs: aJobStore(options.kv),
      logs: new FileLogStore(join(options.dir, "logs")),
      packages: new FilePackageStore(join(options.dir, "packages")),
    },
    config: { ...parseConfig([], {}), dataDir: options.dir, ...options.config },
    info: {
      address: "http://127.0.0.1:1",
      sessionName: "s",
      nodeId: "n",
      version: "0",
      commit: "",
    },
    logger: createLogger("test"),
    events,
    actors: new ActorRegistry(new KvActorStore(options.kv), events),
    supervisor: options.supervisor,
    scheduler,
    workers,
    metrics: new MetricsRegistry(),
    signal: shutdown.signal,
  };
  return {
    ctx,
    close: () => {
      shutdown.abort();
      scheduler.close();
      workers.close();
    },
  };
}
