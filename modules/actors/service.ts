/**
 * The actor service: lists and kills actors (supervised processes), and keeps the
 * records of job supervisors in step with the jobs, which it learns of from the bus.
 * Serve writes its replicas' records itself.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { KillRequest, ModuleContext } from "../../kit/module.ts";
import { stopGraceMs } from "../../kit/stop_grace.ts";
import { InvalidStateError, NotFoundError } from "../../storage/errors.ts";
import {
  type Actor,
  type ActorState,
  jobSupervisorActorId,
  type ListActorsOptions,
} from "../../storage/actors.ts";
import { isTerminal, type Job, type JobStatus } from "../../storage/jobs.ts";

/** The class of a job's supervisor actor. */
export const JOB_SUPERVISOR_CLASS = "JobSupervisor";
/** The namespace of job supervisor actors. */
export const JOB_SUPERVISOR_NAMESPACE = "jobs";
/** Jobs whose actor records are rewritten in one KV commit, at most. */
const SYNC_BATCH = 100;
/**
 * How long job events gather before their records are written: a short job's
 * PENDING, RUNNING and end then cost one write, not three.
 */
const SYNC_DELAY_MS = 10;
/** Wait before writing again records whose write failed. */
const SYNC_RETRY_MS = 1_000;

const STATE_OF_JOB: Record<JobStatus, ActorState> = {
  PENDING: "PENDING_CREATION",
  RUNNING: "ALIVE",
  STOPPED: "DEAD",
  SUCCEEDED: "DEAD",
  FAILED: "DEAD",
};

/** Lists, reads and kills actors; mirrors job supervisors into the actor store. */
export class ActorService {
  #ctx: ModuleContext;
  /** Jobs whose actor record is due: the job as its last event told, or null to read it. */
  #dirtyJobs = new Map<string, Job | null>();
  #syncing: Promise<void> | undefined;
  /** Aborted to write what is due without waiting for more events. */
  #hurry = new AbortController();
  #unsubscribe = () => {};

  constructor(ctx: ModuleContext) {
    this.#ctx = ctx;
  }

  /**
   * Follows job events from now on: each rewrites that job's supervisor record, and a
   * deleted job's record is deleted. Writes are batched, and a job's later event replaces
   * its earlier one before it is written.
   */
  followJobs(): void {
    this.#unsubscribe();
    this.#unsubscribe = this.#ctx.events.on((event) => {
      if (event.type === "job") this.#markDirty([event.job.id], event.job);
      // Read again, the job is gone: its supervisor's record is deleted.
      if (event.type === "job-deleted") this.#markDirty([event.jobId]);
    });
  }

  /**
   * Rewrites the records of active jobs and of supervisors not known DEAD, and deletes
   * those of jobs that no longer exist: for changes a previous head made without
   * recording them. Call once at start.
   */
  async resync(): Promise<void> {
    const { jobs, actors } = this.#ctx.stores;
    const active = await jobs.listActive();
    const open = await actors.list({
      className: JOB_SUPERVISOR_CLASS,
      states: ["PENDING_CREATION", "ALIVE", "RESTARTING"],
    });
    this.#markDirty([...active.map((job) => job.id), ...open.map((actor) => actor.owner.id)]);
    await this.#synced();
    // Records of deleted jobs that a head before job-deleted events left behind.
    const dead = await actors.list({ className: JOB_SUPERVISOR_CLASS, states: ["DEAD"] });
    for (let i = 0; i < dead.length; i += SYNC_BATCH) {
      const batch = dead.slice(i, i + SYNC_BATCH);
      const exists = await Promise.all(batch.map((actor) => jobs.get(actor.owner.id)));
      await actors.delete(batch.filter((_, j) => !exists[j]).map((actor) => actor.actor_id));
    }
  }

  /** Stops following jobs, once pending records are written. Safe to call twice. */
  async close(): Promise<void> {
    this.#unsubscribe();
    await this.#synced();
  }

  /** Actors matching the filters, newest first, at most `limit`. */
  async list(options: ListActorsOptions & { limit?: number }): Promise<Actor[]> {
    const actors = await this.#ctx.stores.actors.list(options);
    return actors.slice(0, options.limit ?? actors.length);
  }

  /** The actor; throws NotFoundError. */
  async get(id: string): Promise<Actor> {
    const actor = await this.#ctx.stores.actors.get(id);
    if (!actor) throw new NotFoundError(`Actor ${id} does not exist`);
    return actor;
  }

  /**
   * Kills an actor's supervisor, so its whole process group dies: at once with `force_kill`
   * (resolving once it is dead), else SIGTERM now and SIGKILL after the grace (resolving
   * at once). The owner learns of it from the process's end. Throws NotFoundError for an
   * unknown actor, InvalidStateError for one without a running process. Returns what was
   * done, for the response's `msg`.
   */
  async kill(id: string, request: KillRequest): Promise<string> {
    const actor = await this.get(id);
    const process = this.#ctx.supervisor.get(id);
    if (actor.state === "DEAD" || !process || process.settled) {
      throw new InvalidStateError(
        `Cannot kill actor "${id}": actor is ${actor.state} and has no running process`,
      );
    }
    const graceMs = stopGraceMs(actor.runtime_env.env_vars, this.#ctx.config.stopGraceMs);
    const killed = process.kill(request, graceMs);
    if (request.force_kill) {
      await killed;
      return `Force killed actor with id ${id}`;
    }
    killed.catch((err) => this.#ctx.logger.error(`killing actor "${id}" failed:`, err));
    return `Requested actor with id ${id} to terminate: SIGTERM now, SIGKILL after ${graceMs} ms`;
  }

  #markDirty(jobIds: string[], job: Job | null = null): void {
    for (const id of jobIds) this.#dirtyJobs.set(id, job);
    this.#startSync();
  }

  #startSync(): void {
    if (this.#syncing || this.#dirtyJobs.size === 0) return;
    this.#syncing = this.#sync().finally(() => {
      this.#syncing = undefined;
      this.#startSync(); // ids marked between the last batch and now
    });
  }

  /** Settles once every job marked so far has its record written; writes them now. */
  async #synced(): Promise<void> {
    const hurry = this.#hurry;
    hurry.abort();
    while (this.#syncing) await this.#syncing;
    if (this.#hurry === hurry) this.#hurry = new AbortController();
  }

  async #sync(): Promise<void> {
    await delay(SYNC_DELAY_MS, undefined, { signal: this.#hurry.signal }).catch(() => {});
    let failing = false;
    while (this.#dirtyJobs.size > 0) {
      const batch = [...this.#dirtyJobs].slice(0, SYNC_BATCH);
      for (const [id] of batch) this.#dirtyJobs.delete(id);
      try {
        await this.#syncJobs(batch);
        failing = false;
      } catch (err) {
        if (!failing) this.#ctx.logger.error("recording job supervisor actors failed:", err);
        failing = true;
        // Tried again (a full disk frees up) until the head shuts down; the next head's
        // resync() rewrites what is left.
        if (this.#ctx.signal.aborted) continue;
        for (const [id, job] of batch) if (!this.#dirtyJobs.has(id)) this.#dirtyJobs.set(id, job);
        await delay(SYNC_RETRY_MS, undefined, { signal: this.#ctx.signal }).catch(() => {});
      }
    }
  }

  async #syncJobs(batch: [string, Job | null][]): Promise<void> {
    const { stores, info, events } = this.#ctx;
    const ids = batch.map(([id]) => id);
    const jobs = await Promise.all(batch.map(([id, job]) => job ?? stores.jobs.get(id)));
    const actors = jobs.filter((job) => job !== undefined).map((job) => jobActor(job, info.nodeId));
    const gone = ids.filter((_, i) => jobs[i] === undefined).map(jobSupervisorActorId);
    await stores.actors.put(actors);
    if (gone.length > 0) await stores.actors.delete(gone);
    for (const actor of actors) events.emit({ type: "actor", actor });
  }
}

/** The supervisor actor of `job`, as its current state describes it. */
export function jobActor(job: Job, nodeId: string): Actor {
  const resources: Record<string, number> = { CPU: job.entrypoint_num_cpus };
  if (job.entrypoint_num_gpus > 0) resources.GPU = job.entrypoint_num_gpus;
  if (job.entrypoint_memory > 0) resources.memory = job.entrypoint_memory;
  return {
    actor_id: jobSupervisorActorId(job.id),
    class_name: JOB_SUPERVISOR_CLASS,
    name: `job_supervisor_${job.id}`,
    namespace: JOB_SUPERVISOR_NAMESPACE,
    state: STATE_OF_JOB[job.status],
    pid: job.supervisor?.pid ?? null,
    node_id: nodeId,
    start_time: job.start_time,
    end_time: job.end_time,
    resources: { ...resources, ...job.entrypoint_resources },
    runtime_env: job.runtime_env,
    owner: { kind: "job", id: job.id },
    port: null,
    num_restarts: 0,
    death_cause: isTerminal(job.status)
      ? `job ${job.id} ended ${job.status}` + (job.error_type ? ` (${job.error_type})` : "")
      : null,
    metadata: {},
  };
}
