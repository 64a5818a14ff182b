/** A module context for the jobs module's tests: in-memory KV, a temp data dir, a real supervisor. */
import { join } from "node:path";
import { parseConfig } from "../../host/config.ts";
import { EventBus } from "../../kit/events.ts";
import { createLogger } from "../../kit/log.ts";
import { MetricsRegistry } from "../../kit/metrics.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { WorkerPool } from "../../kit/worker_pool.ts";
import { KvActorStore } from "../../storage/actors.ts";
import { isTerminal, type Job, type JobStatus, KvJobStore } from "../../storage/jobs.ts";
import { FileLogStore } from "../../storage/logs.ts";
import { FilePackageStore } from "../../storage/packages.ts";
import { Scheduler } from "../../scheduler/scheduler.ts";
import { ShellSupervisor } from "../../supervision/supervisor.ts";

/**
 * Runs `fn` with a context whose supervisor spawns real processes (without cgroups), then
 * closes everything and removes the data directory.
 */
export async function withContext(fn: (ctx: ModuleContext) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-jobs-" });
  using kv = await Deno.openKv(":memory:");
  const shutdown = new AbortController();
  const supervisor = new ShellSupervisor(join(dir, "run"), { cgroup: "off" });
  await supervisor.start();
  const workers = new WorkerPool({ size: 1 });
  const scheduler = new Scheduler({
    nodes: [{ name: "test", total: { CPU: 1 } }],
    reserveAfterMs: 0,
  });
  try {
    await fn({
      kv,
      kvPrefix: ["mod", "jobs"],
      stores: {
        jobs: new KvJobStore(kv),
        logs: new FileLogStore(join(dir, "logs")),
        actors: new KvActorStore(kv),
        packages: new FilePackageStore(join(dir, "packages")),
      },
      config: { ...parseConfig([], {}), dataDir: dir },
      info: {
        address: "http://127.0.0.1:1",
        sessionName: "s",
        nodeId: "n",
        version: "0",
        commit: "",
      },
      logger: createLogger("test"),
      events: new EventBus(),
      supervisor,
      scheduler,
      workers,
      metrics: new MetricsRegistry(),
      signal: shutdown.signal,
    });
  } finally {
    shutdown.abort();
    scheduler.close();
    await supervisor.close();
    workers.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves with the job once the bus announces it in one of `statuses`. */
export function nextStatus(
  ctx: ModuleContext,
  id: string,
  statuses: (status: JobStatus) => boolean = isTerminal,
): Promise<Job> {
  return new Promise((resolve) => {
    const off = ctx.events.on((event) => {
      if (event.type === "job" && event.job.id === id && statuses(event.job.status)) {
        off();
        resolve(event.job);
      }
    });
  });
}
