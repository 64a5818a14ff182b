/**
 * One deployment's controller. It keeps `num_replicas` replicas of the current version
 * running: it starts missing ones, restarts crashed ones with backoff, replaces
 * replicas of another version one at a time (a new one is ready before an old one
 * stops), stops surplus ones, and on delete stops them all. Every change is written to
 * the serve store and, as an actor record, to the actor store; a later head re-adopts
 * the replicas from there.
 *
 * The decisions are pure functions beside it: the next move (reconcile.ts), what becomes
 * of a replica whose run ended (restarts.ts), readiness and status (health.ts). Health
 * checks run in prober.ts. The controller performs the moves and keeps the records.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { ExitHandler, ModuleContext, SupervisedProcess } from "../../kit/module.ts";
import type { Actor } from "../../kit/actor_record.ts";
import { UnavailableError } from "../../kit/errors.ts";
import { errorMessage } from "../../storage/errors.ts";
import type { LogReadRange } from "../../storage/logs.ts";
import { resolveWorkingDir } from "../../storage/working_dirs.ts";
import type { Deployment, DeploymentStatus } from "../../kit/deployment_record.ts";
import type { ServeStore } from "../../storage/serve.ts";
import type { Replica } from "./replica.ts";
import { DEFAULT_MIN_UPTIME_S, deploymentStatus, readyAt, type ReplicaHealth } from "./health.ts";
import { type ProbeTarget, watchHealth } from "./prober.ts";
import { nextToReplace, planStep } from "./reconcile.ts";
import { afterEnd, describeEnd } from "./restarts.ts";
import type { ReplicaHost, ReplicaLaunch } from "./replica_host.ts";
import type { DeploymentDetails, ReplicaLogsResponse } from "./schemas.ts";

/** The class of a replica actor. */
export const SERVE_REPLICA_CLASS = "ServeReplica";
/** The namespace of replica actors. */
export const SERVE_NAMESPACE = "serve";

/** What a controller works with. */
export interface ControllerDeps {
  ctx: ModuleContext;
  store: ServeStore<Deployment, Replica>;
  /**
   * The host of the replicas on `node` (undefined: this process's own, on one machine);
   * undefined while that node is not alive.
   */
  hostOf(node: string | undefined): ReplicaHost | undefined;
  /**
   * Where the deployment's next replica goes, none of the nodes `passOver`; undefined while
   * no node may host one.
   */
  placeNext(deployment: string, passOver: ReadonlySet<string | undefined>): ReplicaHost | undefined;
  /** Called once the deployment has been deleted. */
  onDeleted(): void;
}

/** Between tries to place a replica while no node may host one. */
const PLACE_RETRY_MS = 1_000;
/** Between tries to stop a replica whose node did not answer. */
const STOP_RETRY_MS = 1_000;

/** A replica as the controller tracks it in memory. */
interface ReplicaRuntime {
  record: Replica;
  /** Its node; undefined while that node is not alive. */
  host?: ReplicaHost;
  process?: SupervisedProcess;
  /** Recorded DEAD and forgotten: a late launch or end of it changes nothing. */
  buried?: boolean;
  /** Settles once a launch under way has attached its process, or failed. */
  launch?: Promise<void>;
  /** Being stopped on purpose (`why`): its end is expected and ends it for good. */
  stopping?: string;
  /** Passed its health check since it last started. */
  ready: boolean;
  /** Resolves true once it is first ready, false if it ends before. */
  readiness: PromiseWithResolvers<boolean>;
  /** Settles once it has ended for good and its record says so. */
  ended: PromiseWithResolvers<void>;
  /** Ends the current run's health checks. */
  life?: AbortController;
  /** Cancels a pending restart. */
  restartTimer?: AbortController;
  /** Why its health checks had it stopped, for the record of its end. */
  unhealthy?: string;
}

/** Keeps one deployment's replicas as its spec says. */
export class DeploymentController {
  #deps: ControllerDeps;
  #deployment: Deployment;
  #replicas = new Map<string, ReplicaRuntime>();
  /** Replicas placed on each node whose records are being made. */
  #placing = new Map<string | undefined, number>();
  #dirty = false;
  #loop: Promise<void> | undefined;
  /** Aborted when the spec changes or a delete starts: a rollout step stops waiting. */
  #specChanged = new AbortController();
  #closed = new AbortController();
  #deleted = Promise.withResolvers<void>();
  #gone = false;
  #writes: Promise<void> = Promise.resolve();
  /** Health-check loops running now. */
  #healthWatches = new Set<Promise<void>>();

  /** A controller for `deployment`, with the replicas a previous head left (see `adopt()`). */
  constructor(deps: ControllerDeps, deployment: Deployment, replicas: Replica[] = []) {
    this.#deps = deps;
    this.#deployment = deployment;
    for (const record of replicas) this.#replicas.set(record.actor_id, newRuntime(record));
    this.#deleted.promise.catch(() => {}); // rejected at close, awaited only by a delete
  }

  /** The deployment as last recorded. */
  get deployment(): Deployment {
    return this.#deployment;
  }

  /**
   * A range of a replica's log, from its node. Throws NotFoundError when the replica is not
   * one of this deployment's now, UnavailableError when its node cannot be reached.
   */
  async readLog(
    actorId: string,
    node: string | undefined,
    range: LogReadRange,
  ): Promise<ReplicaLogsResponse> {
    const host = this.#replicas.get(actorId)?.host ?? this.#deps.hostOf(node);
    if (!host) {
      throw new UnavailableError(`node "${node}" where replica ${actorId} ran is not alive`);
    }
    return await host.readLog(this.#deployment.name, actorId, range);
  }

  /** Nodes with replicas of this deployment now, and how many each. */
  replicasPerNode(): Map<string | undefined, number> {
    const counts = new Map(this.#placing);
    for (const { record } of this.#replicas.values()) {
      counts.set(record.node, (counts.get(record.node) ?? 0) + 1);
    }
    return counts;
  }

  /** Whether a delete has started. */
  get deleting(): boolean {
    return this.#deployment.status === "DELETING";
  }

  /** The deployment and its replicas, for the API. */
  details(): DeploymentDetails {
    const { name, created_at, updated_at, spec } = this.#deployment;
    const { status, message } = this.deleting ? this.#deployment : this.#status();
    const replicas = [...this.#replicas.values()].map(({ record, ready }) => ({
      actor_id: record.actor_id,
      replica_tag: record.replica_tag,
      version: record.version,
      state: record.state,
      pid: record.supervisor?.pid ?? null,
      port: record.port,
      node: record.node ?? null,
      num_restarts: record.num_restarts,
      start_time: record.start_time,
      ready: ready && record.state === "ALIVE",
      death_cause: record.death_cause,
    }));
    replicas.sort((a, b) => a.start_time - b.start_time);
    return { name, status, message, created_at, updated_at, spec, replicas };
  }

  /**
   * Takes over the stored replicas: adopts running ones (those that ended meanwhile are
   * restarted by the policy), spawns one a previous head recorded but may not have
   * started, and re-arms pending restarts. Call once, then the controller reconciles.
   */
  async adopt(): Promise<void> {
    for (const runtime of [...this.#replicas.values()]) {
      const { record } = runtime;
      runtime.host = this.#deps.hostOf(record.node);
      if (!runtime.host) {
        await this.#moveOff(runtime, `its node "${record.node}" is not alive`);
        continue;
      }
      const onExit = this.#onExit(runtime);
      const { name } = this.#deployment;
      try {
        if (record.state === "ALIVE" && record.supervisor) {
          const process = await runtime.host.adopt(
            name,
            record.actor_id,
            record.supervisor,
            onExit,
          );
          if (process) this.#attach(runtime, process, { adopted: true });
          else this.#spawn(runtime);
        } else if (record.state === "PENDING_CREATION" || record.state === "ALIVE") {
          // A spawn the previous head could not record is found by its marker.
          const found = await runtime.host.adopt(name, record.actor_id, null, onExit);
          if (found) this.#attach(runtime, found);
          else this.#spawn(runtime);
        } else if (record.state === "RESTARTING") {
          this.#scheduleRestart(runtime);
        }
      } catch (err) {
        await this.#moveOff(
          runtime,
          `its node "${record.node}" could not be reached: ${errorMessage(err)}`,
        );
      }
    }
    this.#kick();
  }

  /**
   * Node `node` was declared DEAD: its replicas are recorded DEAD and replaced on other
   * nodes; the node kills them if it comes back (fencing).
   */
  async nodeDied(node: string, why: string): Promise<void> {
    const moved = [...this.#replicas.values()].filter((r) => r.record.node === node);
    await Promise.all(moved.map((runtime) => this.#moveOff(runtime, why)));
  }

  /**
   * Records a new spec (its version filled in) and reconciles toward it in the
   * background. Replicas that used up their restarts are dropped: new ones replace them.
   */
  async update(spec: Deployment["spec"]): Promise<void> {
    this.#deployment = { ...this.#deployment, spec, updated_at: Date.now() };
    this.#specChanged.abort();
    this.#specChanged = new AbortController();
    await this.#putDeployment();
    for (const runtime of this.#replicas.values()) {
      if (runtime.record.state !== "DEAD" || runtime.stopping !== undefined) continue;
      runtime.stopping = "a new spec was applied";
      this.#bury(runtime, runtime.record.death_cause ?? runtime.stopping);
    }
    this.#kick();
  }

  /**
   * Stops every replica and removes the deployment; resolves once that is done. Throws
   * UnavailableError when the head stops first (the next head finishes it).
   */
  async delete(): Promise<void> {
    if (!this.deleting) {
      this.#deployment = {
        ...this.#deployment,
        status: "DELETING",
        message: "Stopping every replica",
        updated_at: Date.now(),
      };
      this.#specChanged.abort();
      await this.#putDeployment();
      this.#kick();
    }
    await this.#deleted.promise;
  }

  /**
   * Stops controlling: health checks and pending restarts end, replicas keep running
   * for the next head. Resolves once in-flight work has settled. Safe to call twice.
   */
  async close(): Promise<void> {
    this.#closed.abort();
    this.#deleted.reject(new UnavailableError("the head stops: the next one finishes the delete"));
    // A stop under way waits no more for the replica's end: it is left to the next head.
    for (const runtime of this.#replicas.values()) runtime.ended.resolve();
    await this.#loop;
    await Promise.all(this.#healthWatches);
    await this.#writes;
  }

  // --- Reconciling --------------------------------------------------------------------

  /** Asks for a reconcile pass; passes never overlap. */
  #kick(): void {
    this.#dirty = true;
    if (this.#loop || this.#closed.signal.aborted || this.#gone) return;
    this.#loop = this.#run().finally(() => {
      this.#loop = undefined;
      if (this.#dirty) this.#kick();
    });
  }

  async #run(): Promise<void> {
    while (this.#dirty && !this.#closed.signal.aborted && !this.#gone) {
      this.#dirty = false;
      try {
        await this.#step();
        if (!this.#gone) await this.#recordStatus();
      } catch (err) {
        this.#deps.ctx.logger.error(`reconciling deployment "${this.#deployment.name}":`, err);
      }
    }
  }

  /** Makes the one move `planStep()` says; then asks for another pass, until it says none. */
  async #step(): Promise<void> {
    if (this.deleting) return await this.#deleteAll();
    const step = planStep(this.#deployment.spec, this.#live());
    if (step.action === "none") return;
    if (step.action === "start") {
      const started = await Promise.all(
        Array.from({ length: step.count }, () => this.#startReplica()),
      );
      if (started.includes(undefined)) return this.#placeLater();
    } else if (step.action === "surge") {
      const fresh = await this.#startReplica();
      if (!fresh) return this.#placeLater();
      if (await this.#waitReady(fresh)) {
        const old = nextToReplace(this.#deployment.spec, this.#live());
        if (old) await this.#retire(this.#replicas.get(old.actor_id)!, step.why);
      }
    } else {
      const retiring = step.actorIds.map((id) => this.#replicas.get(id)!);
      await Promise.all(retiring.map((r) => this.#retire(r, step.why)));
    }
    this.#dirty = true;
  }

  /** No node may host a replica now: tries again in a while. */
  #placeLater(): void {
    delay(PLACE_RETRY_MS, undefined, { signal: this.#closed.signal })
      .then(() => this.#kick(), () => {}); // the head stops
  }

  /** Waits until `fresh` is ready, or it ended, or the spec changed, or the head stops. */
  #waitReady(fresh: ReplicaRuntime): Promise<boolean> {
    const signal = AbortSignal.any([this.#specChanged.signal, this.#closed.signal]);
    return Promise.race([
      fresh.readiness.promise,
      new Promise<boolean>((resolve) => {
        if (signal.aborted) resolve(false);
        signal.addEventListener("abort", () => resolve(false), { once: true });
      }),
    ]);
  }

  async #deleteAll(): Promise<void> {
    const replicas = [...this.#replicas.values()];
    await Promise.all(replicas.map((r) => this.#retire(r, "the deployment was deleted")));
    await this.#writes;
    if (this.#closed.signal.aborted) return; // the next head finishes the delete
    await this.#deps.store.deleteDeployment(this.#deployment.name);
    this.#deps.ctx.events.emit({
      type: "deployment",
      name: this.#deployment.name,
      deployment: null,
    });
    this.#gone = true;
    this.#deleted.resolve();
    this.#deps.onDeleted();
  }

  /** Records the status the replicas give, unless a delete has begun: DELETING stands. */
  async #recordStatus(): Promise<void> {
    if (this.deleting) return;
    const { status, message } = this.#status();
    if (status === this.#deployment.status && message === this.#deployment.message) return;
    this.#deployment = { ...this.#deployment, status, message, updated_at: Date.now() };
    await this.#putDeployment();
  }

  /** Records the deployment and announces the change. */
  async #putDeployment(): Promise<void> {
    await this.#deps.store.putDeployment(this.#deployment);
    const { name } = this.#deployment;
    this.#deps.ctx.events.emit({ type: "deployment", name, deployment: this.#deployment });
  }

  #status(): { status: DeploymentStatus; message: string } {
    return deploymentStatus(this.#deployment.spec, this.#live());
  }

  /** The replicas not being stopped on purpose, as the decisions weigh them. */
  #live(): (Replica & ReplicaHealth)[] {
    return [...this.#replicas.values()]
      .filter((r) => r.stopping === undefined)
      .map(({ record, ready }) => ({ ...record, ready: ready && record.state === "ALIVE" }));
  }

  // --- Replicas -----------------------------------------------------------------------

  /**
   * Places and starts a new replica; undefined when no node may host one now. A node that
   * does not answer is passed over for the next.
   */
  async #startReplica(): Promise<ReplicaRuntime | undefined> {
    const { name } = this.#deployment;
    const passedOver = new Set<string | undefined>();
    for (;;) {
      const host = this.#deps.placeNext(name, passedOver);
      if (!host || passedOver.has(host.node)) return undefined;
      const taken = [...this.#replicas.values()]
        .filter((r) => r.record.node === host.node).map((r) => r.record.port);
      // Counted on its node from here on, so the replicas placed beside it spread.
      this.#placing.set(host.node, (this.#placing.get(host.node) ?? 0) + 1);
      let port: number;
      try {
        port = await host.freePort(taken);
      } catch (err) {
        this.#deps.ctx.logger.warn(`cannot place a replica of "${name}": ${errorMessage(err)}`);
        passedOver.add(host.node);
        continue;
      } finally {
        this.#placing.set(host.node, this.#placing.get(host.node)! - 1);
      }
      return this.#newReplica(host, port);
    }
  }

  /** Records and starts a new replica on `host`, at `port`; tracked from the call on. */
  async #newReplica(host: ReplicaHost, port: number): Promise<ReplicaRuntime> {
    const { name, spec } = this.#deployment;
    const suffix = randomSuffix();
    const runtime = newRuntime({
      actor_id: `servereplica_${name}_${suffix}`,
      replica_tag: `${name}#${suffix}`,
      deployment: name,
      version: spec.version,
      port,
      ...(host.node !== undefined && { node: host.node }),
      state: "PENDING_CREATION",
      supervisor: null,
      num_restarts: 0,
      start_time: Date.now(),
      end_time: null,
      restart_at: null,
      death_cause: null,
    });
    runtime.host = host;
    this.#replicas.set(runtime.record.actor_id, runtime);
    // Recorded before it runs: a head that dies right after the spawn leaves a trace.
    await this.#persist(runtime);
    try {
      await host.createLog(name, runtime.record.actor_id);
    } catch (err) {
      this.#onEnd(runtime, `its log file could not be created: ${(err as Error).message}`);
      return runtime;
    }
    this.#spawn(runtime);
    return runtime;
  }

  #spawn(runtime: ReplicaRuntime): void {
    if (runtime.stopping !== undefined || this.#closed.signal.aborted || runtime.buried) return;
    const { ctx } = this.#deps;
    const { record } = runtime;
    const { spec } = this.#deployment;
    const host = runtime.host;
    if (!host) {
      this.#moveOff(runtime, `its node "${record.node}" is not alive`); // its errors are logged
      return;
    }
    const where = this.#launchOf(runtime);
    const launch: ReplicaLaunch = {
      ...where,
      command: spec.entrypoint,
      env: {
        ...where.env,
        JOBHEAD_ADDRESS: ctx.cluster?.address ?? ctx.info.address,
        JOBHEAD_SERVE_VERSION: record.version,
      },
    };
    runtime.launch = host.run(launch, this.#onExit(runtime)).then(
      (process) => this.#attach(runtime, process),
      (err) => this.#onEnd(runtime, `it failed to start: ${(err as Error).message}`),
    ).finally(() => runtime.launch = undefined);
  }

  /** Tracks a running process of `runtime`: records it ALIVE, checks its health, awaits its end. */
  #attach(
    runtime: ReplicaRuntime,
    process: SupervisedProcess,
    options: { adopted?: boolean } = {},
  ): void {
    if (runtime.buried) {
      // Moved off its node meanwhile: the node kills it if it can still be reached, and its
      // end is not awaited from a node that is gone.
      process.stop(0).catch(() => {}).finally(() => abandon(process));
      return;
    }
    runtime.process = process;
    runtime.ready = false;
    runtime.record = {
      ...runtime.record,
      state: "ALIVE",
      supervisor: process.identity,
      end_time: null,
      restart_at: null,
      death_cause: null,
    };
    this.#persist(runtime);
    runtime.life = new AbortController();
    const life = AbortSignal.any([runtime.life.signal, this.#closed.signal]);
    const { spec } = this.#deployment;
    // An adopted replica was serving already: it only has to stay healthy.
    if (options.adopted) this.#markReady(runtime);
    else if (!spec.health_check) {
      const minUptimeS = spec.restart_policy.min_uptime_s ?? DEFAULT_MIN_UPTIME_S;
      this.#markReadyAt(runtime, readyAt(runtime.record, Date.now(), minUptimeS * 1000), life);
    }
    if (spec.health_check) {
      const watching = watchHealth({
        check: () => this.#deployment.spec.health_check,
        target: () => this.#probeEnv(runtime),
        ready: options.adopted,
        onReady: () => this.#markReady(runtime),
        onUnhealthy: (why) => this.#stopUnhealthy(runtime, why),
      }, life).catch((err) => this.#deps.ctx.logger.error("health check failed to run:", err));
      // Awaited by close(): a probe in flight (a command, a fetch) ends before it resolves.
      this.#healthWatches.add(watching);
      watching.finally(() => this.#healthWatches.delete(watching));
    }
    this.#kick();
  }

  /** Records the end of a replica's run (every process of it is gone by now). */
  #onExit(runtime: ReplicaRuntime): ExitHandler {
    return async (reason) => {
      runtime.life?.abort();
      if (this.#closed.signal.aborted) {
        // Left for the next head, which reads the exit file.
        runtime.ended.resolve();
        return false;
      }
      runtime.process = undefined;
      const cause = runtime.unhealthy ?? describeEnd(reason);
      runtime.unhealthy = undefined;
      this.#onEnd(runtime, cause, reason.kind === "died" && reason.killed?.no_restart === true);
      await this.#writes;
      return true;
    };
  }

  /** A replica's run ended (`cause`): bury it, give up on it, or restart it, as `afterEnd()` says. */
  #onEnd(runtime: ReplicaRuntime, cause: string, noRestart = false): void {
    if (runtime.buried) return;
    const { record, stopping } = runtime;
    const next = afterEnd(
      record,
      this.#deployment.spec,
      { cause, stopping, noRestart },
      Date.now(),
    );
    if (next.action === "bury") return this.#bury(runtime, next.cause);
    runtime.ready = false;
    runtime.record = next.replica;
    this.#persist(runtime);
    if (next.action === "give_up") runtime.readiness.resolve(false);
    else {
      const { replica_tag, num_restarts } = next.replica;
      this.#deps.ctx.logger.warn(
        `replica ${replica_tag} ended (${cause}): restart ${num_restarts} in ${next.backoffS} s`,
      );
      this.#scheduleRestart(runtime);
    }
    this.#kick();
  }

  #scheduleRestart(runtime: ReplicaRuntime): void {
    const timer = new AbortController();
    runtime.restartTimer = timer;
    const waitMs = Math.max(0, (runtime.record.restart_at ?? 0) - Date.now());
    delay(waitMs, undefined, { signal: AbortSignal.any([timer.signal, this.#closed.signal]) })
      .then(() => {
        runtime.restartTimer = undefined;
        this.#spawn(runtime);
      }, () => {}); // cancelled: retired, or the head stops
  }

  /** Stops a replica for good; resolves once it has ended and is recorded DEAD. */
  async #retire(runtime: ReplicaRuntime, why: string): Promise<void> {
    runtime.stopping ??= why;
    runtime.restartTimer?.abort();
    await runtime.launch;
    if (runtime.process) {
      const graceS = this.#deployment.spec.graceful_shutdown_timeout_s;
      await this.#stop(runtime, graceS == null ? this.#deps.ctx.config.stopGraceMs : graceS * 1000);
    } else if (this.#closed.signal.aborted) {
      runtime.ended.resolve(); // left as it is for the next head
    } else {
      this.#bury(runtime, `stopped: ${why}`);
    }
    await runtime.ended.promise;
  }

  /** Records a replica DEAD for good and forgets it. */
  #bury(runtime: ReplicaRuntime, cause: string): void {
    runtime.buried = true;
    runtime.life?.abort();
    runtime.record = {
      ...runtime.record,
      state: "DEAD",
      supervisor: null,
      end_time: Date.now(),
      restart_at: null,
      death_cause: cause,
    };
    this.#replicas.delete(runtime.record.actor_id);
    this.#persist(runtime, { forget: true }).then(() => runtime.ended.resolve());
    runtime.readiness.resolve(false);
    this.#kick();
  }

  /** Marks a replica ready at `at` (epoch ms) unless `life` (its run's) aborts first. */
  #markReadyAt(runtime: ReplicaRuntime, at: number, life: AbortSignal): void {
    delay(Math.max(0, at - Date.now()), undefined, { signal: life })
      .then(() => this.#markReady(runtime), () => {}); // the run ended, or the head stops
  }

  #markReady(runtime: ReplicaRuntime): void {
    if (runtime.ready) return;
    runtime.ready = true;
    runtime.readiness.resolve(true);
    this.#kick();
  }

  /** Has a replica that failed its health checks stopped; its policy then restarts it. */
  #stopUnhealthy(runtime: ReplicaRuntime, why: string): void {
    if (!runtime.process) return;
    runtime.unhealthy = why;
    this.#stop(runtime, this.#deps.ctx.config.stopGraceMs);
  }

  /**
   * Stops a replica's process. Tried again while its node does not answer (its process
   * restarts, or it is away), until the replica stops, or the node is declared DEAD (the
   * replica moves off), or this controller stops.
   */
  async #stop(runtime: ReplicaRuntime, graceMs: number): Promise<void> {
    const process = runtime.process;
    while (process && runtime.process === process && !this.#closed.signal.aborted) {
      try {
        await process.stop(graceMs);
        return;
      } catch (err) {
        this.#deps.ctx.logger.warn(
          `stopping replica ${runtime.record.replica_tag} failed: ${errorMessage(err)}`,
        );
        await delay(STOP_RETRY_MS, undefined, { signal: this.#closed.signal }).catch(() => {});
      }
    }
  }

  /** Where a replica runs, and with what environment, less its command. */
  #launchOf(runtime: ReplicaRuntime): Omit<ReplicaLaunch, "command"> {
    const { spec, name } = this.#deployment;
    return {
      id: runtime.record.actor_id,
      deployment: name,
      cwd: resolveWorkingDir(spec.runtime_env.working_dir)?.path,
      env: {
        ...spec.runtime_env.env_vars,
        PORT: String(runtime.record.port),
        JOBHEAD_DEPLOYMENT: name,
        JOBHEAD_REPLICA_TAG: runtime.record.replica_tag,
      },
    };
  }

  #probeEnv(runtime: ReplicaRuntime): ProbeTarget {
    const host = runtime.host;
    const launch = this.#launchOf(runtime);
    return {
      port: runtime.record.port,
      hostname: host?.hostname,
      cwd: launch.cwd,
      env: launch.env,
      // A replica of another node is checked there.
      runCommand: host?.node !== undefined && host.node !== this.#deps.ctx.cluster?.node?.name
        ? (command, timeoutS) => host.check(command, launch, timeoutS)
        : undefined,
    };
  }

  /**
   * Records a replica of a node that is not alive DEAD (`why`), so that a new one replaces
   * it elsewhere, and notes it for the node to kill if it comes back (fencing).
   */
  async #moveOff(runtime: ReplicaRuntime, why: string): Promise<void> {
    if (runtime.buried) return;
    const { record } = runtime;
    abandon(runtime.process);
    runtime.process = undefined;
    runtime.restartTimer?.abort();
    this.#deps.ctx.logger.warn(`replica ${record.replica_tag} moved: ${why}`);
    this.#bury(runtime, `moved: ${why}`);
    // Written before the death is done with: a node back from it reads its fences first.
    if (record.node !== undefined) {
      await this.#deps.store.putFence(record.node, record).catch((err) => {
        this.#deps.ctx.logger.error(`recording replica ${record.replica_tag} moved failed:`, err);
      });
    }
  }

  /** Writes a replica's records in order: its serve record (or its removal), then its actor. */
  #persist(runtime: ReplicaRuntime, options: { forget?: boolean } = {}): Promise<void> {
    const { ctx, store } = this.#deps;
    const replica = runtime.record;
    const actor = replicaActor(replica, this.#deployment, runtime.host?.nodeId ?? ctx.info.nodeId);
    this.#writes = this.#writes.then(async () => {
      if (options.forget) await store.deleteReplica(replica.deployment, replica.actor_id);
      else await store.putReplica(replica);
      await ctx.actors.record([actor]);
    }).catch((err) => ctx.logger.error(`recording replica ${replica.replica_tag} failed:`, err));
    return this.#writes;
  }
}

/** The actor record of a replica. */
export function replicaActor(replica: Replica, deployment: Deployment, nodeId: string): Actor {
  return {
    actor_id: replica.actor_id,
    class_name: SERVE_REPLICA_CLASS,
    name: `SERVE_REPLICA::${replica.replica_tag}`,
    namespace: SERVE_NAMESPACE,
    state: replica.state,
    pid: replica.supervisor?.pid ?? null,
    node_id: nodeId,
    start_time: replica.start_time,
    end_time: replica.end_time,
    resources: {},
    runtime_env: deployment.spec.runtime_env,
    owner: { kind: "deployment", id: replica.deployment },
    port: replica.port,
    num_restarts: replica.num_restarts,
    death_cause: replica.death_cause,
    metadata: {
      serve: {
        replica_tag: replica.replica_tag,
        deployment_name: replica.deployment,
        version: replica.version,
        ...(replica.node !== undefined && { node: replica.node }),
      },
    },
  };
}

/** Stops awaiting the end of a replica on another node (one of a node declared DEAD). */
function abandon(process: SupervisedProcess | undefined): void {
  (process as { abandon?(): void } | undefined)?.abandon?.();
}

function newRuntime(record: Replica): ReplicaRuntime {
  return {
    record,
    ready: false,
    readiness: Promise.withResolvers<boolean>(),
    ended: Promise.withResolvers<void>(),
  };
}

function randomSuffix(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => alphabet[b % 36]).join("");
}
