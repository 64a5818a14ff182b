/**
 * Job supervisors as actors: each job's supervisor has an actor record, which this keeps
 * in step with the job, learning of every change from the bus. It records through the
 * actor registry, so each record's change goes out on the bus in turn.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Actor, ActorState } from "../../kit/actor_record.ts";
import { isTerminal, type Job, type JobStatus } from "../../kit/job_record.ts";
import type { ModuleContext } from "../../kit/module.ts";

/** The class of a job's supervisor actor. */
export const JOB_SUPERVISOR_CLASS = "JobSupervisor";
/** The namespace of job supervisor actors. */
export const JOB_SUPERVISOR_NAMESPACE = "jobs";
/** The owner kind of job supervisor actors: the id is the job's. */
export const JOB_OWNER_KIND = "job";
/** What a supervisor's actor id starts with; the job id follows. */
const ACTOR_ID_PREFIX = "jobsup_";
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

/** The actor id of a job's supervisor: names its run files and marks its processes. */
export function supervisorActorId(jobId: string): string {
  return `${ACTOR_ID_PREFIX}${jobId}`;
}

/** The job id in a supervisor's actor id, or undefined for another actor's id. */
export function jobIdOfSupervisor(actorId: string): string | undefined {
  return actorId.startsWith(ACTOR_ID_PREFIX) ? actorId.slice(ACTOR_ID_PREFIX.length) : undefined;
}

/** The supervisor actor of `job`, as its current state describes it. */
export function jobActor(job: Job, nodeId: string): Actor {
  const resources: Record<string, number> = { CPU: job.entrypoint_num_cpus };
  if (job.entrypoint_num_gpus > 0) resources.GPU = job.entrypoint_num_gpus;
  if (job.entrypoint_memory > 0) resources.memory = job.entrypoint_memory;
  return {
    actor_id: supervisorActorId(job.id),
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
    owner: { kind: JOB_OWNER_KIND, id: job.id },
    port: null,
    num_restarts: 0,
    death_cause: isTerminal(job.status)
      ? `job ${job.id} ended ${job.status}` + (job.error_type ? ` (${job.error_type})` : "")
      : null,
    metadata: {},
  };
}

/** Keeps the actor records of job supervisors in step with their jobs. */
export class SupervisorActors {
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
  follow(): void {
    this.#unsubscribe();
    this.#unsubscribe = this.#ctx.events.on((event) => {
      if ("remote" in event) return; // its own process records it
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
    const { stores, actors } = this.#ctx;
    const active = await stores.jobs.listActive();
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
      const exists = await Promise.all(batch.map((actor) => stores.jobs.get(actor.owner.id)));
      await actors.remove(batch.filter((_, j) => !exists[j]).map((actor) => actor.actor_id));
    }
  }

  /** Stops following jobs, once pending records are written. Safe to call twice. */
  async close(): Promise<void> {
    this.#unsubscribe();
    await this.#synced();
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
    const { stores, info, actors } = this.#ctx;
    const ids = batch.map(([id]) => id);
    const jobs = await Promise.all(batch.map(([id, job]) => job ?? stores.jobs.get(id)));
    const records = jobs.filter((job) => job !== undefined).map((job) =>
      jobActor(job, info.nodeId)
    );
    await actors.record(records);
    await actors.remove(ids.filter((_, i) => jobs[i] === undefined).map(supervisorActorId));
  }
}
