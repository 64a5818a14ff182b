/**
 * The head: opens the data directory and KV store, loads the modules, serves their
 * routes, starts them, and shuts everything down cleanly (running jobs keep running).
 */
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import type { Hono } from "hono";
import { KvActorStore } from "../../storage/actors.ts";
import { KvJobStore } from "../../storage/jobs.ts";
import { FileLogStore } from "../../storage/logs.ts";
import { FilePackageStore } from "../../storage/packages.ts";
import { Supervisor } from "../actors/supervisor.ts";
import { createApp } from "./app.ts";
import { DEFAULT_HEADER_TIMEOUT_S, type HeadConfig } from "./config.ts";
import { EventBus } from "./events.ts";
import { defaultMaxConnections, openGate, readOpenFilesLimit } from "./gate.ts";
import { loadModules, RouteTable } from "./loader.ts";
import { createLogger, type HeadInfo, type HeadModule, type ModuleContext } from "./module.ts";
import { readGitCommit, snapshotRoutes } from "./snapshot.ts";
import { sessionRoutes } from "./session.ts";
import { WorkerPool } from "./worker_pool.ts";
import denoJson from "../../deno.json" with { type: "json" };

/** A running head. */
export interface Head {
  info: HeadInfo;
  modules: HeadModule[];
  /** Stops serving and stops the modules; supervised jobs keep running. Safe to call twice. */
  shutdown(): Promise<void>;
  /** Settles when the head has shut down. */
  finished: Promise<void>;
}

/** How long shutdown waits for open connections before it closes them. */
const SHUTDOWN_GRACE_MS = 2_000;

/** Starts a head with `config`; resolves once it serves and its modules have started. */
export async function startHead(config: HeadConfig): Promise<Head> {
  const logger = createLogger("head");
  const dataDir = resolve(config.dataDir);
  const logsDir = join(dataDir, "logs");
  await Deno.mkdir(logsDir, { recursive: true });
  const kv = await Deno.openKv(join(dataDir, "jobhead.kv"));
  const session = await loadSession(kv);
  const info: HeadInfo = {
    address: "",
    sessionName: session.name,
    nodeId: session.nodeId,
    version: denoJson.version,
    commit: await readGitCommit(fileURLToPath(new URL("../..", import.meta.url))),
  };
  const supervisor = new Supervisor(join(dataDir, "run"));
  await supervisor.start();
  const stores = {
    jobs: new KvJobStore(kv),
    logs: new FileLogStore(logsDir),
    packages: new FilePackageStore(join(dataDir, "packages")),
    actors: new KvActorStore(kv),
  };
  const workers = new WorkerPool();
  const events = new EventBus();
  const shutdownController = new AbortController();
  const headConfig = { ...config, dataDir };

  const modules = await loadModules(headConfig, logger);
  const contexts = new Map<HeadModule, ModuleContext>();
  const moduleRoutes = new Map<HeadModule, Hono>();
  const hostRoutes = snapshotRoutes(() => modules, info, logger).get(
    "/-/healthz",
    (c) => c.text("ok"),
  ).route("/", sessionRoutes(config.token));
  const routeTable = new RouteTable();
  routeTable.claim("the head", hostRoutes);
  // Built once the modules are known, and again without those that fail to start.
  const buildApp = () => {
    const app = createApp({
      token: config.token,
      maxBodyBytes: config.maxBodyBytes,
      // Package uploads are zips with a limit of their own, checked by the packages module.
      rawBodyPrefixes: ["/api/packages/"],
    });
    app.route("/", hostRoutes);
    for (const module of modules) {
      const routes = moduleRoutes.get(module);
      if (routes) app.route("/", routes);
    }
    return app;
  };
  for (const module of [...modules]) {
    const ctx: ModuleContext = {
      kv,
      kvPrefix: ["mod", module.name],
      stores,
      config: headConfig,
      info,
      logger: createLogger(module.name),
      events,
      supervisor,
      workers,
      signal: shutdownController.signal,
    };
    contexts.set(module, ctx);
    try {
      const routes = module.routes?.(ctx);
      if (routes) {
        routeTable.claim(`module "${module.name}"`, routes);
        moduleRoutes.set(module, routes);
      }
    } catch (err) {
      logger.error(`module "${module.name}" skipped: ${(err as Error).message ?? err}`);
      modules.splice(modules.indexOf(module), 1);
      await Promise.resolve(module.stop?.()).catch(() => {});
    }
  }
  let app = buildApp();

  const gate = await openGate({
    hostname: config.host,
    port: config.port,
    headerTimeoutS: config.headerTimeoutS ?? DEFAULT_HEADER_TIMEOUT_S,
    maxConnections: config.maxConnections ?? defaultMaxConnections(readOpenFilesLimit()),
    handler: async (request, connInfo) => await app.fetch(request, connInfo),
    log: (line) => logger.warn(line),
  });
  const addr = gate.addr;
  info.address = `http://${formatHost(addr.hostname)}:${addr.port}`;

  const modulesBefore = modules.length;
  for (const module of [...modules]) {
    try {
      await module.start?.(contexts.get(module)!);
    } catch (err) {
      logger.error(`module "${module.name}" skipped: it failed to start:`, err);
      modules.splice(modules.indexOf(module), 1);
      await Promise.resolve(module.stop?.()).catch(() => {});
    }
  }
  if (modules.length < modulesBefore) app = buildApp(); // without the routes of those skipped

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      shutdownController.abort();
      for (const module of modules) {
        try {
          await module.stop?.();
        } catch (err) {
          logger.error(`module "${module.name}" failed to stop:`, err);
        }
      }
      supervisor.close();
      workers.close();
      await gate.shutdown(SHUTDOWN_GRACE_MS);
      kv.close();
    })();
    return shuttingDown;
  };
  return { info, modules, shutdown, finished: gate.finished };
}

/** The session name and node id: made once per data directory, then kept in KV. */
async function loadSession(kv: Deno.Kv): Promise<{ name: string; nodeId: string }> {
  const key = ["session"];
  const existing = await kv.get<{ name: string; nodeId: string }>(key);
  if (existing.value) return existing.value;
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
  const hex = (n: number) =>
    Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0"))
      .join("");
  const session = { name: `session_${stamp}_${hex(4)}`, nodeId: hex(28) };
  const result = await kv.atomic().check(existing).set(key, session).commit();
  return result.ok ? session : (await kv.get<{ name: string; nodeId: string }>(key)).value!;
}

function formatHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
