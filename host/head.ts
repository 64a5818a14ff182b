/**
 * The head: opens the data directory and the store (host/store.ts), loads the modules, serves their
 * routes, starts them, and shuts everything down cleanly (running jobs keep running).
 */
import type { KvStore } from "../storage/kv.ts";
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import type { Hono } from "hono";
import { KvActorStore } from "../storage/actors.ts";
import { errorMessage } from "../storage/errors.ts";
import { KvJobStore } from "../storage/jobs.ts";
import { FileLogStore } from "../storage/logs.ts";
import { ShellSupervisor } from "../supervision/supervisor.ts";
import { HeadMetrics } from "../modules/metrics/mod.ts";
import { createApp } from "./app.ts";
import { clusterRoutes, clusterState, createScheduler } from "./cluster.ts";
import { ClusterLink } from "./cluster_link.ts";
import { type HeadConfig, WITHHELD_ENV_NAMES } from "./config.ts";
import { dataModes, ensureDataDir, lockDataDir, prepareDataDir } from "./datadir.ts";
import { type HeadStore, openHeadStore } from "./store.ts";
import { EventBus } from "../kit/events.ts";
import type { Actor } from "../kit/actor_record.ts";
import { ActorRegistry } from "../kit/actor_registry.ts";
import { type Job, JOB_LIFECYCLE } from "../kit/job_record.ts";
import { defaultMaxConnections, openGate, readOpenFilesLimit } from "./gate.ts";
import { loadModules, RouteTable } from "./loader.ts";
import { createLogger } from "../kit/log.ts";
import type { HeadInfo, HeadModule, ModuleContext, ModuleFactory } from "../kit/module.ts";
import { openApiRoutes, type RouteSource } from "./openapi.ts";
import { fenceStrayJobs, recoverRunningJobs } from "./recover.ts";
import { describeRoute } from "../kit/route_doc.ts";
import { readGitCommit, snapshotRoutes } from "./snapshot.ts";
import { sessionRoutes } from "./session.ts";
import { WorkerPool } from "../kit/worker_pool.ts";
import denoJson from "../deno.json" with { type: "json" };

/** A running head. */
export interface Head {
  info: HeadInfo;
  modules: HeadModule[];
  /** Hono's list of what the app serves now: each route's method and path, middleware too. */
  routes(): readonly { method: string; path: string }[];
  /** Stops serving and stops the modules; supervised jobs keep running. Safe to call twice. */
  shutdown(): Promise<void>;
  /** Settles when the head has shut down. */
  finished: Promise<void>;
}

const PLAIN_TEXT = { mediaType: "text/plain" };

/** How long shutdown waits for open connections before it closes them. */
const SHUTDOWN_GRACE_MS = 2_000;

/**
 * Starts a head with `config` and the `builtIns` (`main.ts` gives modules/mod.ts's list);
 * resolves once it serves and its modules have started. Throws DataDirInUseError when
 * another head uses the data directory.
 */
export async function startHead(
  config: HeadConfig,
  builtIns: readonly ModuleFactory[],
): Promise<Head> {
  const logger = createLogger("head");
  const dataDir = resolve(config.dataDir);
  const logsDir = join(dataDir, "logs");
  const modes = dataModes(config.dataMode);
  await ensureDataDir(dataDir, modes.dir);
  // Held until shutdown; the kernel releases it however the head dies.
  const lock = await lockDataDir(dataDir, modes.file);
  const workers = new WorkerPool();
  let store: HeadStore;
  let session: { name: string; nodeId: string };
  try {
    await prepareDataDir(dataDir, modes, logger);
    store = await openHeadStore(config, { dataDir, modes, logger, runner: workers });
  } catch (err) {
    workers.close();
    lock.close();
    throw err;
  }
  const kv = store.kv;
  // A cluster's store: PostgreSQL, shared by its heads and nodes.
  const shared = store.postgres;
  try {
    session = await loadSession(kv);
    // In a cluster the session is the cluster's; each data directory is a node of its own.
    if (shared) session = { ...session, nodeId: await loadNodeId(dataDir, modes.file) };
  } catch (err) {
    await store.close();
    workers.close();
    lock.close();
    throw err;
  }
  const info: HeadInfo = {
    address: "",
    sessionName: session.name,
    nodeId: session.nodeId,
    version: denoJson.version,
    commit: await readGitCommit(fileURLToPath(new URL("..", import.meta.url))),
  };
  const supervisor = new ShellSupervisor(join(dataDir, "run"), {
    logger: createLogger("supervisor"),
    withheldEnv: WITHHELD_ENV_NAMES,
    cgroup: config.cgroup,
    enforceCpu: config.enforceCpu,
  });
  await supervisor.start();
  // Operators and tests look for these exact lines; the JSON log gets them as records.
  for (const line of [supervisor.stopMode, ...supervisor.limitModes]) {
    if (config.logFormat === "json") logger.info(line);
    else console.error(`jobhead: ${line}`);
  }
  const { scheduler, total } = await createScheduler(config, {
    nodeName: config.nodeName,
    logger: createLogger("scheduler"),
    clustered: shared !== undefined,
  });
  const metrics = new HeadMetrics();
  const { actors: actorStore, ...stores } = metrics.timeStores({
    jobs: new KvJobStore<Job>(kv, {
      ...JOB_LIFECYCLE,
      log: (line) => logger.warn(line),
    }),
    logs: new FileLogStore(logsDir, { fileMode: modes.file }),
    packages: store.packages,
    actors: new KvActorStore<Actor>(kv),
  });
  if (config.recover) await recoverRunningJobs(stores.jobs, dataDir, logger);
  const events = new EventBus();
  const runsJobs = config.role === "node" || config.localJobs;
  const cluster = shared && new ClusterLink({
    store: shared,
    jobs: stores.jobs,
    events,
    scheduler,
    logger: createLogger("cluster"),
    nodeTimeoutS: config.nodeTimeoutS,
    maySchedule: config.role === "head",
    token: config.token,
    // Its modules hold a scheduler's state: a fresh start is the safe way back.
    onLostScheduling: () => {
      shutdown().finally(() => Deno.exit(1));
    },
    node: runsJobs
      ? { name: config.nodeName, id: info.nodeId, address: "", total, labels: config.labels }
      : undefined,
  });
  const actors = new ActorRegistry(actorStore, events);
  const shutdownController = new AbortController();
  const headConfig = { ...config, dataDir };

  const modules = await loadModules(headConfig, builtIns, logger);
  const contexts = new Map<HeadModule, ModuleContext>();
  const moduleRoutes = new Map<HeadModule, Hono>();
  const hostRoutes = snapshotRoutes(() => modules, info, {
    logger,
    sections: () => ({ cluster: clusterState(scheduler, cluster) }),
  }).get(
    "/-/healthz",
    describeRoute({ summary: "Answers `ok` while the head serves", response: PLAIN_TEXT }),
    (c) => c.text("ok"),
  ).route("/", sessionRoutes(config.token)).route("/", openApiRoutes(() => routeSources(), info))
    .route("/", metrics.routes()).route("/", clusterRoutes(scheduler, cluster));
  const routeSources = (): RouteSource[] => [
    { name: "head", routes: hostRoutes.routes },
    ...modules.flatMap((m) => {
      const routes = moduleRoutes.get(m)?.routes;
      return routes ? [{ name: m.name, routes }] : [];
    }),
  ];
  const routeTable = new RouteTable();
  routeTable.claim("the head", hostRoutes);
  // Built once the modules are known, and again without those that fail to start.
  const buildApp = () => {
    const app = createApp({
      token: config.token,
      maxBodyBytes: config.maxBodyBytes,
      // Package uploads are zips with a limit of their own, checked by the packages module.
      rawBodyPrefixes: ["/api/packages/"],
      metricsPublic: config.metricsPublic,
      observe: metrics.middleware,
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
      actors,
      supervisor,
      scheduler,
      cluster,
      workers,
      metrics: metrics.forModule(module.name),
      signal: shutdownController.signal,
      moduleViews: () =>
        modules.flatMap((m) => (m.views ?? []).map((view) => ({ module: m.name, view }))),
    };
    contexts.set(module, ctx);
    try {
      const routes = module.routes?.(ctx);
      if (routes) {
        routeTable.claim(`module "${module.name}"`, routes);
        moduleRoutes.set(module, routes);
      }
    } catch (err) {
      logger.error(`module "${module.name}" skipped: ${errorMessage(err)}`);
      modules.splice(modules.indexOf(module), 1);
      await Promise.resolve(module.stop?.()).catch(() => {});
    }
  }
  let app = buildApp();
  metrics.start({ stores, events, supervisor, scheduler }); // before any job can change

  const gate = await openGate({
    hostname: config.host,
    port: config.port,
    headerTimeoutS: config.headerTimeoutS,
    maxConnections: config.maxConnections ?? defaultMaxConnections(readOpenFilesLimit()),
    handler: async (request, connInfo) => await app.fetch(request, connInfo),
    log: (line) => logger.warn(line),
  });
  const addr = gate.addr;
  info.address = `http://${formatHost(addr.hostname)}:${addr.port}`;
  if (cluster) {
    try {
      await cluster.join(reachableAddress(info.address));
      if (runsJobs) {
        await fenceStrayJobs(stores.jobs, supervisor, {
          dataDir,
          node: config.nodeName,
          logger,
        });
      }
    } catch (err) {
      await gate.shutdown(0);
      scheduler.close();
      await supervisor.close();
      workers.close();
      await store.close();
      lock.close();
      throw err;
    }
  }

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
  cluster?.startScheduling(); // once the modules are ready to schedule

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      shutdownController.abort();
      metrics.stop();
      for (const module of modules) {
        try {
          await module.stop?.();
        } catch (err) {
          logger.error(`module "${module.name}" failed to stop:`, err);
        }
      }
      await cluster?.close();
      scheduler.close();
      await supervisor.close();
      workers.close();
      await gate.shutdown(SHUTDOWN_GRACE_MS);
      await store.close();
      lock.close();
    })();
    return shuttingDown;
  };
  return { info, modules, routes: () => app.routes, shutdown, finished: gate.finished };
}

/** The session name and node id: made once per data directory, then kept in KV. */
async function loadSession(kv: KvStore): Promise<{ name: string; nodeId: string }> {
  const key = ["session"];
  const existing = await kv.get<{ name: string; nodeId: string }>(key);
  if (existing.value) return existing.value;
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
  const session = { name: `session_${stamp}_${randomHex(4)}`, nodeId: randomHex(28) };
  const result = await kv.atomic().check(existing).set(key, session).commit();
  return result.ok ? session : (await kv.get<{ name: string; nodeId: string }>(key)).value!;
}

/**
 * In a cluster, this data directory's node id: made once, then kept in the directory. A
 * process that holds the directory's lock is the only one of that node, so its row may be
 * taken over at once, however the previous process of the directory ended.
 */
async function loadNodeId(dataDir: string, fileMode: number): Promise<string> {
  const path = join(dataDir, "node_id");
  try {
    const id = (await Deno.readTextFile(path)).trim();
    if (/^[0-9a-f]{56}$/.test(id)) return id;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const id = randomHex(28);
  await Deno.writeTextFile(path, `${id}\n`, { mode: fileMode });
  return id;
}

/** `n` random bytes in hex. */
function randomHex(n: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(n)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/**
 * The address other machines reach a process at: one listening on every address (0.0.0.0,
 * ::) is reached by its host name.
 */
function reachableAddress(address: string): string {
  const url = new URL(address);
  if (url.hostname !== "0.0.0.0" && url.hostname !== "[::]") return address;
  return `http://${Deno.hostname()}:${url.port}`;
}

function formatHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}
