/**
 * The job service: submits jobs, runs each under a supervisor, records every status
 * change in the job store, stops jobs, and re-adopts the jobs a previous head left.
 */
import { ValidationError } from "../../kit/errors.ts";
import type {
  ExitHandler,
  ExitReason,
  ModuleContext,
  SupervisedProcess,
} from "../../kit/module.ts";
import { stopGraceMs, stopWaitProblem } from "../../kit/stop_grace.ts";
import {
  ConflictError,
  errorMessage,
  InvalidStateError,
  NotFoundError,
  retryWhileUnavailable,
} from "../../storage/errors.ts";
import type { JobChanges, JobPage, StorageFullSpell, WrittenJob } from "../../storage/jobs.ts";
import { type LogStore, readLogRange } from "../../storage/logs.ts";
import { isTerminal, type Job, type JobErrorType, type JobStatus } from "../../kit/job_record.ts";
import { demandOf, fieldOf, formatAmount, STANDARD_RESOURCES } from "../../scheduler/resources.ts";
import type { Placement } from "../../scheduler/admission.ts";
import { jobsToFence, type StoredRun } from "../../scheduler/liveness.ts";
import { parseSelector } from "../../scheduler/labels.ts";
import { LogMaintenance } from "./log_maintenance.ts";
import { startTimeoutMessage, startTimeoutProblem, startTimeoutS } from "./start_timeout.ts";
import type { JobLogsResponse, SubmitJobRequest } from "./schemas.ts";
import { supervisorActorId } from "./supervisor_actors.ts";
import { prepareJobWorkingDir, removeJobWorkingDir } from "./working_dir.ts";

/** Messages by status, as Ray words them. */
export const STATUS_MESSAGES = {
  PENDING: "Job has not started yet.",
  RUNNING: "Job is currently running.",
  SUCCEEDED: "Job finished successfully.",
  STOPPED: "Job was intentionally stopped.",
} as const;

/** Characters of log tail in a failed job's message (API.md). */
export const FAILURE_TAIL_CHARS = 20_000;
/** Bytes of log tail kept in a stored message, so a record stays within KV's 64 KiB. */
const FAILURE_TAIL_MAX_BYTES = 32 * 1024;
/** Largest entrypoint + runtime_env + metadata + resources, serialized. */
export const MAX_JOB_SPEC_BYTES = 24 * 1024;

/** The supervisor actor id of a job: names its run files, marks its processes. */
export function actorIdOf(jobId: string): string {
  return supervisorActorId(jobId);
}

/** What this head holds in memory about one submission; a resubmitted id gets a new one. */
interface JobRun {
  /** Names this submission in the scheduler: a resubmitted id is another entry. */
  key: string;
  /** A stop was accepted: the job must not be spawned any more. */
  stopRequested: boolean;
  /** Its supervised process, once spawned or adopted. */
  process?: SupervisedProcess;
  /**
   * The write of its RUNNING status, once spawned: its end is recorded after it, so that
   * a job that ends at once still reads RUNNING first however slow the store is.
   */
  running?: Promise<unknown>;
  /** In a cluster: placed by this process on another node, which runs it. */
  elsewhere?: boolean;
  /**
   * The job as this process stored it at submit, until its next change (its placement,
   * or its RUNNING status): that change is written without reading the job first.
   */
  written?: WrittenJob<Job>;
}

/** Submits, tracks, stops and deletes jobs. */
export class JobService {
  #ctx: ModuleContext;
  /**
   * The submissions this head is starting, running or adopted, by job id. Each launch
   * holds its own run, so a job deleted and submitted again under the same id starts
   * clean whatever is left of the earlier one.
   */
  #runs = new Map<string, JobRun>();
  #closed = false;
  #logMaintenance: LogMaintenance;
  /** Settles once the jobs a previous head left are taken back (`adoptRunningJobs()`). */
  #adoption: Promise<void> = Promise.resolve();
  /** Runs made so far: numbers each run's scheduler key. */
  #runCount = 0;
  /** The latest submission time given out: each new one is later, so they order the queue. */
  #lastSubmitMs = 0;

  /** In a cluster: this process holds the scheduling lock and places the jobs. */
  #scheduling = false;

  constructor(ctx: ModuleContext) {
    this.#ctx = ctx;
    this.#logMaintenance = new LogMaintenance({
      jobs: ctx.stores.jobs,
      logs: ctx.stores.logs,
      logger: ctx.logger,
      maxBytes: ctx.config.logMaxBytes,
      retentionDays: ctx.config.logRetentionDays,
    });
  }

  /**
   * Stores a new PENDING job and queues it; it starts asynchronously once what it asks
   * for is free. Throws ConflictError on a duplicate id, ValidationError for a request no
   * node could ever hold.
   */
  async submit(request: SubmitJobRequest): Promise<Job> {
    // A submit while the previous head's jobs are being taken back waits for them: they
    // hold resources and places in the queue, and its submission time must follow theirs.
    await this.#adoption.catch(() => {}); // a failed adoption is logged where it failed
    const job = this.#newJob(request);
    const refusal = this.#ctx.scheduler.refusal(demandOf(job));
    if (refusal) throw new ValidationError(`Invalid request: ${refusal}`);
    const versionstamp = await this.#ctx.stores.jobs.create(job);
    this.#announce(job);
    // In a cluster the scheduling process queues it, told of it by the announcement.
    if (!this.#ctx.cluster || this.#scheduling) {
      const run = this.#newRun(job.id);
      run.written = { job, versionstamp };
      this.#enqueue(job, run);
    }
    return job;
  }

  /** The job (a queued one with why it waits as its message); throws NotFoundError. */
  async get(id: string): Promise<Job> {
    const job = await this.#ctx.stores.jobs.get(id);
    if (!job) throw new NotFoundError(`Job ${id} does not exist`);
    const key = job.status === "PENDING" ? this.#runs.get(id)?.key : undefined;
    const reason = key === undefined ? undefined : this.#ctx.scheduler.reasonFor(key);
    return reason === undefined ? job : { ...job, message: reason };
  }

  /** A page of jobs, newest first; queued ones with why they wait as their message. */
  async list(
    options: { statuses?: JobStatus[]; limit?: number; cursor?: string },
  ): Promise<JobPage<Job>> {
    const page = await this.#ctx.stores.jobs.list(options);
    const keys = new Map<string, string>();
    for (const job of page.jobs) {
      const key = job.status === "PENDING" ? this.#runs.get(job.id)?.key : undefined;
      if (key !== undefined) keys.set(job.id, key);
    }
    if (keys.size === 0) return page;
    const reasons = this.#ctx.scheduler.reasons(new Set(keys.values()));
    const jobs = page.jobs.map((job) => {
      const key = keys.get(job.id);
      const reason = key === undefined ? undefined : reasons.get(key);
      return reason === undefined ? job : { ...job, message: reason };
    });
    return { ...page, jobs };
  }

  /**
   * Stops a job: true if it was PENDING (it never starts) or RUNNING (it ends STOPPED
   * after SIGTERM, then SIGKILL past its grace), false if it had already ended. The
   * answer and the outcome are decided by one checked write: a true answer means the
   * stop is stored before the job's end is, so the job ends STOPPED. Throws
   * InsufficientStorageError when a running job's stop cannot be stored (nothing changed).
   */
  async stop(id: string): Promise<boolean> {
    // A job whose process this head holds is PENDING (its RUNNING write under way) or
    // RUNNING, or has ended: the checked write alone decides, without a read before it.
    if (this.#runs.get(id)?.process && await this.#stopRunning(id)) return true;
    /** The start time of the job this call told not to spawn: it ends STOPPED by that. */
    let flagged: number | undefined;
    for (;;) {
      const job = await this.get(id);
      if (isTerminal(job.status)) {
        return job.status === "STOPPED" && flagged === job.start_time;
      }
      const run = this.#runs.get(id);
      const now = Date.now();
      try {
        if (job.status === "PENDING" && !run?.process && !job.node) {
          // Set before any await: #launch checks it right before spawning, so a job not
          // spawned by now never will be, and its stop must be stored whatever it takes.
          if (run) {
            run.stopRequested = true;
            flagged = job.start_time;
          }
          await this.#change(id, "PENDING", (current) => {
            // Placed on a node meanwhile: that node starts it, so the stop goes to it.
            if (current.node) throw new ConflictError(`Job ${id} was placed meanwhile`);
            return {
              status: "STOPPED",
              message: STATUS_MESSAGES.STOPPED,
              end_time: now,
              stop_requested_at: now,
            };
          });
          // Out of the queue: its place goes to the next job.
          if (run) this.#ctx.scheduler.cancel(run.key);
          return true;
        }
        await this.#change(id, ["PENDING", "RUNNING"], (current) => ({
          stop_requested_at: current.stop_requested_at ?? now,
        }), { once: true });
      } catch (err) {
        // The job moved meanwhile (it started, or it ended): decide again.
        if (err instanceof ConflictError) continue;
        throw err;
      }
      this.#stopStored(id, job, run);
      return true;
    }
  }

  /**
   * Stores the stop of a job in PENDING or RUNNING and signals its process; false when
   * the job had left both (nothing was stored).
   */
  async #stopRunning(id: string): Promise<boolean> {
    const run = this.#runs.get(id);
    const now = Date.now();
    let job: Job;
    try {
      job = await this.#change(id, ["PENDING", "RUNNING"], (current) => ({
        stop_requested_at: current.stop_requested_at ?? now,
      }), { once: true });
    } catch (err) {
      if (err instanceof ConflictError) return false;
      throw err;
    }
    this.#stopStored(id, job, run);
    return true;
  }

  /**
   * A stop of job `id` is stored: it ends STOPPED. Whoever holds its process (this, or an
   * adoption under way, which checks the flag once it has one) stops it.
   */
  #stopStored(id: string, job: Job, run: JobRun | undefined): void {
    if (run) run.stopRequested = true;
    run?.process?.stop(this.#graceMsOf(job))
      .catch((err) => this.#ctx.logger.error(`stopping job "${id}" failed:`, err));
  }

  /**
   * Deletes a terminal job and its log (in a cluster, its node removes the log once told);
   * throws InvalidStateError (409) otherwise.
   */
  async delete(id: string): Promise<void> {
    const job = await this.get(id);
    if (!isTerminal(job.status)) {
      throw new InvalidStateError(
        `Cannot delete job "${id}": job is ${job.status}; stop it first and wait until it ends`,
      );
    }
    await this.#ctx.stores.jobs.delete(id);
    this.#ctx.events.emit({ type: "job-deleted", jobId: id, node: job.node?.name });
    await this.#removeFiles(id);
  }

  /** Removes what a job left on this machine: its log and its working_dir. */
  async #removeFiles(id: string): Promise<void> {
    await this.#ctx.stores.logs.remove(id);
    await removeJobWorkingDir(this.#ctx.config.dataDir, id).catch((err) => {
      this.#ctx.logger.warn(`removing the working_dir of job "${id}" failed:`, err);
    });
  }

  /**
   * Reads a byte range of a job's log (a negative `offset` counts from the end), at most
   * 16 MiB, trimmed to whole characters. Throws NotFoundError for an unknown job.
   */
  async readLogs(
    id: string,
    range: { offset?: number; limit?: number },
  ): Promise<Required<JobLogsResponse>> {
    await this.get(id);
    const { bytes, offset, size } = await readLogRange(this.#ctx.stores.logs, id, range);
    return { logs: new TextDecoder().decode(bytes), offset, size };
  }

  /**
   * In a cluster, the node a job runs on when it is not this one (its log is there);
   * undefined when the job is this process's, or not placed yet.
   */
  nodeElsewhere(job: Job): { name: string; address: string } | undefined {
    const cluster = this.#ctx.cluster;
    if (!cluster || !job.node || job.node.name === cluster.node?.name) return undefined;
    return job.node;
  }

  /** The cluster's token, for requests to other nodes' agents. */
  get clusterToken(): string | undefined {
    return this.#ctx.cluster?.token;
  }

  /** The job logs, for answers that read a whole log chunk by chunk. */
  get logStore(): LogStore {
    return this.#ctx.stores.logs;
  }

  /** Path of a job's log file. */
  logPath(id: string): string {
    return this.#ctx.stores.logs.pathOf(id);
  }

  /** Whether a job has ended for good (or no longer exists). */
  async isFinished(id: string): Promise<boolean> {
    const job = await this.#ctx.stores.jobs.get(id);
    return !job || isTerminal(job.status);
  }

  /**
   * Takes over the jobs a previous head left unfinished; call once at start. What runs is
   * counted first, then what waits is queued again in its order.
   */
  adoptRunningJobs(): Promise<void> {
    this.#adoption = this.#adoptAll();
    return this.#adoption;
  }

  async #adoptAll(): Promise<void> {
    const waiting: [Job, JobRun][] = [];
    const cluster = this.#ctx.cluster;
    for (const job of await this.#ctx.stores.jobs.listActive()) {
      this.#lastSubmitMs = Math.max(this.#lastSubmitMs, job.start_time);
      // In a cluster a node takes back the jobs placed on it; the rest are others'.
      if (cluster && (!job.node || job.node.name !== cluster.node?.name)) continue;
      try {
        const run = await this.#adopt(job);
        if (run) waiting.push([job, run]);
      } catch (err) {
        this.#ctx.logger.error(`cannot adopt job "${job.id}":`, err);
      }
    }
    for (const [job, run] of waiting) {
      if (cluster) this.#startPlaced(job, run);
      else this.#enqueue(job, run);
    }
  }

  /**
   * In a cluster: follows the other processes' changes of jobs (the bridge puts them on
   * the bus), and takes its part in scheduling when it holds the lock. Call once, before
   * `adoptRunningJobs()`.
   */
  joinCluster(): void {
    const cluster = this.#ctx.cluster;
    if (!cluster) return;
    this.#ctx.events.on((event) => {
      if (event.type === "job" && event.remote) this.#onRemoteChange(event.job);
      if (event.type === "job-deleted" && event.remote && event.node === cluster.node?.name) {
        this.#removeFiles(event.jobId);
      }
    });
    cluster.onScheduling({
      takeOver: () => this.#takeOverScheduling(),
      nodeDied: (node, silentS) => this.#failJobsOf(node.name, silentS),
    });
    cluster.onFence(() => this.#fence());
    cluster.onResync(() => this.#resync());
  }

  /**
   * The store was away and the changes announced meanwhile are lost: every unfinished job
   * is looked at again as if announced, and runs whose jobs ended or went are let go.
   */
  async #resync(): Promise<void> {
    const active = await this.#ctx.stores.jobs.listActive();
    const activeIds = new Set(active.map((job) => job.id));
    for (const [id, run] of [...this.#runs]) {
      if (activeIds.has(id)) continue;
      const job = await this.#ctx.stores.jobs.get(id);
      if (job) {
        this.#onRemoteChange(job);
      } else if (run.elsewhere || this.#ctx.scheduler.isQueued(run.key)) {
        this.#ctx.scheduler.cancel(run.key);
        this.#ctx.scheduler.release(run.key);
        this.#forget(id, run);
      }
    }
    for (const job of active) this.#onRemoteChange(job);
  }

  /**
   * This node was declared DEAD while it was away: the processes of the jobs the store
   * has ended, deleted or given to another node meanwhile are killed.
   */
  async #fence(): Promise<void> {
    const me = this.#ctx.cluster?.node?.name ?? "";
    const stored = new Map<string, StoredRun>();
    for (const [id, run] of this.#runs) {
      if (!run.process || run.process.settled) continue;
      const job = await this.#ctx.stores.jobs.get(id);
      stored.set(id, { status: job?.status, node: job?.node?.name });
    }
    for (const id of jobsToFence(me, stored, (status) => isTerminal(status as JobStatus))) {
      const run = this.#runs.get(id)!;
      this.#ctx.logger.warn(`job "${id}" ended while this node was away: killing it`);
      run.stopRequested = true;
      await run.process!.stop(0).catch(() => {});
    }
  }

  /** Another process changed a job: this one starts, stops, queues or releases it. */
  #onRemoteChange(job: Job): void {
    const me = this.#ctx.cluster?.node?.name;
    const run = this.#runs.get(job.id);
    if (isTerminal(job.status)) {
      if (!run) return;
      if (run.process && !run.process.settled) {
        // Ended by another process while this one runs it (its node was declared dead,
        // or it was deleted and resubmitted): fencing, its processes go.
        this.#ctx.logger.warn(`job "${job.id}" is ${job.status} in the store: killing it here`);
        run.stopRequested = true;
        run.process.stop(0).catch(() => {});
        return;
      }
      if (run.elsewhere || this.#ctx.scheduler.isQueued(run.key)) {
        this.#ctx.scheduler.cancel(run.key);
        this.#ctx.scheduler.release(run.key);
        this.#forget(job.id, run);
      }
      return;
    }
    if (job.stop_requested_at !== null && run) {
      run.stopRequested = true;
      run.process?.stop(this.#graceMsOf(job))
        .catch((err) => this.#ctx.logger.error(`stopping job "${job.id}" failed:`, err));
    }
    if (job.status !== "PENDING" || run) return;
    if (job.node?.name === me && me !== undefined) {
      this.#startPlaced(job, this.#newRun(job.id));
    } else if (!job.node && this.#scheduling) {
      this.#enqueue(job, this.#newRun(job.id));
    }
  }

  /** Starts a job the scheduling process placed on this node (or stops it, if asked to). */
  #startPlaced(job: Job, run: JobRun): void {
    if (job.stop_requested_at !== null) {
      this.#forget(job.id, run);
      this.#change(job.id, "PENDING", {
        status: "STOPPED",
        message: STATUS_MESSAGES.STOPPED,
        end_time: Date.now(),
      }).catch((err) => {
        if (!(err instanceof ConflictError)) {
          this.#ctx.logger.error(`stopping job "${job.id}" failed:`, err);
        }
      });
      return;
    }
    this.#start(job, run, { id: run.key, node: job.node!.name, gpus: job.gpus ?? [] });
  }

  /**
   * This process now schedules: what runs on other nodes is counted where it runs, what
   * waits unplaced is queued in submission order, and placed jobs are announced again
   * (the previous scheduler may have died before its announcement went out).
   */
  async #takeOverScheduling(): Promise<void> {
    await this.#adoption.catch(() => {});
    this.#scheduling = true;
    const cluster = this.#ctx.cluster!;
    for (const job of await this.#ctx.stores.jobs.listActive()) {
      if (this.#runs.has(job.id)) continue; // this node's own, held already
      const run = this.#newRun(job.id);
      if (!job.node) {
        this.#enqueue(job, run);
        continue;
      }
      const node = cluster.nodeNamed(job.node.name);
      if (node?.state !== "ALIVE") {
        this.#forget(job.id, run);
        await this.#failOnDeadNode(job.id, job.node.name, undefined);
        continue;
      }
      run.elsewhere = true;
      this.#ctx.scheduler.hold({
        id: run.key,
        node: job.node.name,
        demand: demandOf(job),
        gpus: job.gpus ?? [],
      });
      if (job.status === "PENDING") this.#announce(job);
    }
  }

  /** A node was declared DEAD: its jobs end FAILED, naming it; what they held is free. */
  async #failJobsOf(name: string, silentS: number): Promise<void> {
    this.#ctx.scheduler.removeNode(name);
    for (const job of await this.#ctx.stores.jobs.listActive()) {
      if (job.node?.name !== name) continue;
      const run = this.#runs.get(job.id);
      if (run) this.#forget(job.id, run);
      await this.#failOnDeadNode(job.id, name, silentS);
    }
  }

  async #failOnDeadNode(id: string, node: string, silentS: number | undefined): Promise<void> {
    const silence = silentS === undefined ? "" : ` (no heartbeat for ${Math.round(silentS)} s)`;
    await this.#fail(
      id,
      "JOB_SUPERVISOR_ACTOR_DIED",
      `Job supervisor actor died: node "${node}" stopped answering${silence} and was ` +
        `declared DEAD; the job's processes there are killed when it comes back`,
    ).catch((err) => this.#ctx.logger.error(`failing job "${id}" failed:`, err));
  }

  /**
   * Keeps running jobs' logs under the cap (dropping their middle) and deletes the logs
   * of jobs that ended past the retention period; runs until `signal` aborts.
   */
  maintainLogs(signal: AbortSignal): Promise<void> {
    const running = () => [...this.#runs].filter(([, run]) => run.process).map(([id]) => id);
    return this.#logMaintenance.run(running, signal);
  }

  /** Stops tracking jobs; they keep running for the next head. Safe to call twice. */
  close(): void {
    this.#closed = true;
  }

  /** Queues a PENDING job: it starts when the scheduler places it, or times out. */
  #enqueue(job: Job, run: JobRun): void {
    const timeoutS = startTimeoutS(job.runtime_env.env_vars, this.#ctx.config.pendingTimeoutS);
    this.#ctx.scheduler.enqueue({
      id: run.key,
      demand: demandOf(job),
      selector: job.entrypoint_label_selector && parseSelector(job.entrypoint_label_selector),
      priority: job.priority ?? 0,
      seq: job.start_time,
      queuedAt: job.start_time,
      deadline: job.start_time + timeoutS * 1000,
      // Off this turn where it spawns here: the submit is answered before the spawn. In a
      // cluster the placement is a store write first: it goes out at once.
      onPlace: (placement) => {
        if (this.#ctx.cluster) this.#place(job, run, placement);
        else setTimeout(() => this.#place(job, run, placement), 0);
      },
      onExpire: () => this.#timeOut(job.id, run, timeoutS),
    });
  }

  /** Fails a job that waited past its start timeout, as Ray does. */
  async #timeOut(id: string, run: JobRun, timeoutS: number): Promise<void> {
    if (run.stopRequested || this.#closed) return;
    this.#forget(id, run);
    await this.#fail(id, "JOB_SUPERVISOR_ACTOR_START_TIMEOUT", startTimeoutMessage(timeoutS))
      .catch((err) => this.#ctx.logger.error(`failing job "${id}" for its timeout failed:`, err));
  }

  #newJob(request: SubmitJobRequest): Job {
    const id = request.submission_id ?? request.job_id ?? generateJobId();
    if (request.submission_id && request.job_id && request.submission_id !== request.job_id) {
      throw new ValidationError(
        "Invalid request: submission_id and job_id (its deprecated alias) differ",
      );
    }
    const runtimeEnv = request.runtime_env ?? {};
    const problem = stopWaitProblem(runtimeEnv.env_vars) ??
      startTimeoutProblem(runtimeEnv.env_vars) ??
      standardResourceProblem(request.entrypoint_resources) ??
      selectorProblem(request.entrypoint_label_selector);
    if (problem) throw new ValidationError(`Invalid request: ${problem}`);
    const spec = {
      entrypoint: request.entrypoint,
      runtime_env: runtimeEnv,
      metadata: request.metadata ?? {},
      entrypoint_num_cpus: request.entrypoint_num_cpus ?? 0,
      entrypoint_num_gpus: request.entrypoint_num_gpus ?? 0,
      entrypoint_memory: request.entrypoint_memory ?? 0,
      entrypoint_resources: request.entrypoint_resources ?? {},
      ...(request.entrypoint_label_selector &&
        Object.keys(request.entrypoint_label_selector).length > 0 &&
        { entrypoint_label_selector: request.entrypoint_label_selector }),
    };
    const specBytes = new TextEncoder().encode(JSON.stringify(spec)).length;
    if (specBytes > MAX_JOB_SPEC_BYTES) {
      throw new ValidationError(
        `Invalid request: entrypoint, runtime_env and metadata take ${specBytes} bytes: ` +
          `the limit is ${MAX_JOB_SPEC_BYTES}`,
      );
    }
    // Strictly increasing on this head: the queue's order among equal priorities.
    this.#lastSubmitMs = Math.max(Date.now(), this.#lastSubmitMs + 1);
    return {
      id,
      status: "PENDING",
      ...spec,
      priority: request.priority ?? 0,
      message: STATUS_MESSAGES.PENDING,
      error_type: null,
      start_time: this.#lastSubmitMs,
      end_time: null,
      driver_exit_code: null,
      supervisor: null,
      stop_requested_at: null,
    };
  }

  /**
   * Starts a job the scheduler placed on this node, or, in a cluster, records it placed
   * on another: that node, told by the record's announcement, starts it.
   */
  #place(job: Job, run: JobRun, placement: Placement): void {
    const cluster = this.#ctx.cluster;
    if (!cluster) {
      this.#start(job, run, placement);
      return;
    }
    // Recorded before it starts, even here: a scheduler taking over after this process
    // dies finds it placed, never to be placed twice.
    const node = cluster.nodeNamed(placement.node);
    const here = placement.node === cluster.node?.name;
    run.elsewhere = !here;
    const written = run.written;
    run.written = undefined;
    this.#change(job.id, "PENDING", (current) => {
      if (current.node || current.stop_requested_at !== null || !node) {
        throw new ConflictError(`Job ${job.id} is no longer to be placed`);
      }
      return {
        node: { name: node.name, id: node.id, address: node.address },
        gpus: placement.gpus,
      };
    }, { written }).then((placed) => {
      if (here) this.#start(placed, run, placement);
    }, (err) => {
      if (!(err instanceof ConflictError)) {
        this.#ctx.logger.error(`placing job "${job.id}" failed:`, err);
      }
      this.#forget(job.id, run);
      this.#ctx.scheduler.release(run.key);
    });
  }

  /** Starts a job the scheduler placed; what it holds is freed if it never runs. */
  async #start(job: Job, run: JobRun, placement: Placement): Promise<void> {
    try {
      await this.#launch(job, run, placement);
    } catch (err) {
      this.#ctx.logger.error(`starting job "${job.id}" failed:`, err);
    } finally {
      if (!run.process) {
        this.#forget(job.id, run);
        this.#ctx.scheduler.release(run.key);
        if (run.stopRequested && !this.#closed) await this.#endStoppedBeforeSpawn(job);
      }
    }
  }

  /**
   * A placed job stopped while it was being started (its package extracted, say) never
   * spawns: it ends STOPPED here, unless it ended already or its id now names another job.
   */
  async #endStoppedBeforeSpawn(job: Job): Promise<void> {
    try {
      await this.#change(job.id, "PENDING", (current) => {
        if (current.start_time !== job.start_time) {
          throw new ConflictError(`Job ${job.id} is not the one stopped`);
        }
        const now = Date.now();
        return {
          status: "STOPPED",
          message: STATUS_MESSAGES.STOPPED,
          end_time: now,
          stop_requested_at: current.stop_requested_at ?? now,
        };
      });
    } catch (err) {
      if (!(err instanceof ConflictError)) {
        this.#ctx.logger.error(`stopping job "${job.id}" failed:`, err);
      }
    }
  }

  async #launch(job: Job, run: JobRun, placement: Placement): Promise<void> {
    if (run.stopRequested || this.#closed) return;
    const { stores, supervisor, info, config } = this.#ctx;
    let cwd: string | undefined;
    try {
      cwd = await prepareJobWorkingDir(job, { packages: stores.packages, dataDir: config.dataDir });
      await stores.logs.create(job.id);
    } catch (err) {
      // A stopped job is STOPPED already (and its id may belong to a new job by now).
      if (run.stopRequested) return;
      await this.#fail(
        job.id,
        "RUNTIME_ENV_SETUP_FAILURE",
        `runtime_env setup failed: ${errorMessage(err)}`,
      );
      return;
    }
    // Checked again after the awaits: a stop that arrived before this point is seen, one
    // during the launch is carried out once it is done, and one after it finds the process.
    if (run.stopRequested || this.#closed) return;
    let process: SupervisedProcess;
    try {
      process = await supervisor.run({
        id: actorIdOf(job.id),
        command: job.entrypoint,
        logPath: stores.logs.pathOf(job.id),
        cwd,
        env: {
          ...job.runtime_env.env_vars,
          JOBHEAD_ADDRESS: info.address,
          JOBHEAD_SUBMISSION_ID: job.id,
          JOBHEAD_JOB_CONFIG_JSON: JSON.stringify({
            runtime_env: job.runtime_env,
            metadata: jobConfigMetadata(job),
          }),
          ...(placement.gpus.length > 0 && { CUDA_VISIBLE_DEVICES: placement.gpus.join(",") }),
        },
        limits: { memoryBytes: job.entrypoint_memory, cpus: job.entrypoint_num_cpus },
      }, (reason, process) => this.#ended(job.id, run, reason, process));
    } catch (err) {
      await this.#fail(
        job.id,
        "JOB_ENTRYPOINT_COMMAND_START_ERROR",
        `Job entrypoint command failed to start: ${errorMessage(err)}`,
      );
      return;
    }
    run.process = process;
    if (run.stopRequested) {
      process.stop(this.#graceMsOf(job))
        .catch((err) => this.#ctx.logger.error(`stopping job "${job.id}" failed:`, err));
      return;
    }
    const node = this.#ctx.cluster?.node;
    const written = run.written;
    run.written = undefined;
    const running = this.#change(job.id, "PENDING", {
      status: "RUNNING",
      message: STATUS_MESSAGES.RUNNING,
      supervisor: process.identity,
      gpus: placement.gpus,
      ...(node && { node: { name: node.name, id: node.id, address: node.address } }),
    }, { written });
    run.running = running;
    try {
      const recorded = await running;
      // In a cluster a stop stored by another process before this write ends it now.
      if (recorded.stop_requested_at !== null && !process.settled) {
        run.stopRequested = true;
        process.stop(this.#graceMsOf(recorded))
          .catch((err) => this.#ctx.logger.error(`stopping job "${job.id}" failed:`, err));
      }
    } catch (err) {
      // It ended already (its end was recorded first, or, in a cluster, another process
      // ended it): its processes go if they still run.
      if (!(err instanceof ConflictError)) throw err;
      if (this.#ctx.cluster && !process.settled) process.stop(0).catch(() => {});
    }
  }

  /**
   * Takes over one unfinished job: its process if it has one (counted as holding what it
   * asked for), or its place in the queue. Resolves to its run when it is to be queued.
   */
  async #adopt(job: Job): Promise<JobRun | undefined> {
    const supervisor = this.#ctx.supervisor;
    const run = this.#newRun(job.id);
    if (job.status === "PENDING" && job.stop_requested_at !== null) {
      this.#forget(job.id, run);
      await this.#change(job.id, "PENDING", {
        status: "STOPPED",
        message: STATUS_MESSAGES.STOPPED,
        end_time: Date.now(),
      });
      return undefined;
    }
    const onExit: ExitHandler = (reason, process) => this.#ended(job.id, run, reason, process);
    // A PENDING job's previous head may have died between spawning and recording the
    // spawn: its supervisor is then found by its marker.
    const process = job.supervisor
      ? await supervisor.adopt(actorIdOf(job.id), job.supervisor, onExit)
      : job.status === "PENDING"
      ? await supervisor.adopt(actorIdOf(job.id), null, onExit)
      : undefined;
    if (!process && job.status === "PENDING") return run;
    if (!process) {
      this.#forget(job.id, run);
      await this.#fail(
        job.id,
        "JOB_SUPERVISOR_ACTOR_DIED",
        "Job supervisor actor died: it was never recorded",
      );
      return undefined;
    }
    run.process = process;
    const gpus = job.gpus ?? await gpusOfProcess(process.identity.pid);
    if (!process.settled) {
      this.#ctx.scheduler.hold({
        id: run.key,
        node: this.#ctx.cluster?.node?.name ?? this.#ctx.scheduler.nodeNames[0],
        demand: demandOf(job),
        gpus,
      });
    }
    // In a cluster this node may be back at another address: the record says where.
    const node = this.#ctx.cluster?.node;
    const here = node && { name: node.name, id: node.id, address: node.address };
    if (job.status === "PENDING") {
      await this.#change(job.id, "PENDING", {
        status: "RUNNING",
        message: STATUS_MESSAGES.RUNNING,
        supervisor: process.identity,
        gpus,
        ...(here && { node: here }),
      }).catch((err) => {
        if (!(err instanceof ConflictError)) throw err;
      });
    } else if (here && (job.node?.address !== here.address || job.node?.id !== here.id)) {
      await this.#change(job.id, "RUNNING", { node: here }).catch((err) => {
        if (!(err instanceof ConflictError)) throw err;
      });
    }
    const stopAt = job.stop_requested_at ?? (run.stopRequested ? Date.now() : null);
    if (stopAt !== null && !process.settled) {
      // The previous head accepted a stop and died within its grace: finish it.
      const grace = this.#graceMsOf(job);
      const left = Math.max(0, grace - (Date.now() - stopAt));
      process.stop(left)
        .catch((err) => this.#ctx.logger.error(`stopping job "${job.id}" failed:`, err));
    }
    return undefined;
  }

  /** A new run of job `id`, the one this head now holds for it. */
  #newRun(id: string): JobRun {
    const run = { key: `${id}#${++this.#runCount}`, stopRequested: false };
    this.#runs.set(id, run);
    return run;
  }

  /** Forgets a job's run, unless the id already belongs to a newer submission. */
  #forget(id: string, run: JobRun): void {
    if (this.#runs.get(id) === run) this.#runs.delete(id);
  }

  /**
   * Records how a job's process ended (every process of it is gone by now): its log is
   * capped for the last time, then its end recorded. True once recorded.
   */
  async #ended(
    id: string,
    run: JobRun,
    reason: ExitReason,
    process: SupervisedProcess,
  ): Promise<boolean> {
    // Every process of it is gone: what it held goes to the next job now, before its end
    // is announced, so a reader who sees the end also sees the resources free.
    this.#ctx.scheduler.release(run.key);
    try {
      await this.#logMaintenance.capLog(id);
      await run.running?.catch(() => {}); // its RUNNING status first, whatever came of it
      await this.#recordExit(id, reason, process.identity.pid);
      return true;
    } finally {
      this.#forget(id, run);
    }
  }

  /**
   * Records how a job's process ended, in one checked write decided from the record as
   * stored: a stop stored first makes it STOPPED; a stop not yet stored then finds the
   * job ended. Retried until it lands (a full disk, a store that is away), so the outcome
   * is never lost.
   */
  async #recordExit(id: string, reason: ExitReason, pid: number): Promise<void> {
    const job = await retryWhileUnavailable(() => this.#ctx.stores.jobs.get(id));
    if (!job || isTerminal(job.status)) return;
    const succeeded = reason.kind === "exited" && reason.code === 0;
    // A stored stop decides the end (STOPPED, which quotes no log): no tail to read then.
    const tail = succeeded || job.stop_requested_at !== null ? "" : await this.#logTail(id);
    const jobs = this.#ctx.stores.jobs;
    await this.#change(
      id,
      ["PENDING", "RUNNING"],
      (current) => exitOutcome(current, reason, { tail, pid, diskFull: jobs.storageFull() }),
    ).catch((err) => {
      if (!(err instanceof ConflictError)) throw err;
    });
  }

  async #logTail(id: string): Promise<string> {
    let tail = await this.#ctx.stores.logs.tail(id, FAILURE_TAIL_CHARS);
    const encoder = new TextEncoder();
    while (encoder.encode(tail).length > FAILURE_TAIL_MAX_BYTES) {
      tail = tail.slice(Math.ceil(tail.length / 8));
    }
    return tail;
  }

  /** Ends a job that has not ended yet FAILED with `errorType` and `message`. */
  async #fail(id: string, errorType: JobErrorType, message: string): Promise<void> {
    await this.#change(id, ["PENDING", "RUNNING"], {
      end_time: Date.now(),
      status: "FAILED",
      error_type: errorType,
      message,
    }).catch((err) => {
      if (!(err instanceof ConflictError)) throw err;
    });
  }

  /** One checked change of a job in status `from`, announced on the bus. */
  async #change(
    id: string,
    from: JobStatus | readonly JobStatus[],
    changes: JobChanges<Job>,
    options?: { once?: boolean; written?: WrittenJob<Job> },
  ): Promise<Job> {
    const job = await this.#ctx.stores.jobs.update(id, from, changes, options);
    this.#announce(job);
    return job;
  }

  #announce(job: Job): void {
    this.#ctx.events.emit({ type: "job", job });
  }

  /** The grace between SIGTERM and SIGKILL for a job: its own setting, else the head's. */
  #graceMsOf(job: Job): number {
    return stopGraceMs(job.runtime_env.env_vars, this.#ctx.config.stopGraceMs);
  }
}

/** What the head knows about a job's end besides how its process ended. */
export interface ExitFacts {
  /** The end of its log, for a message that quotes it ("" when not needed). */
  tail: string;
  /** Its supervisor's pid. */
  pid: number;
  /** The latest spell of the store's writes failing for lack of space. */
  diskFull?: StorageFullSpell;
}

/**
 * How a job ends, from its record as stored and how its process ended: STOPPED if a
 * stop was stored, else SUCCEEDED or FAILED as the process ended; a job the kernel killed
 * for passing its `entrypoint_memory` says so. A job that ran while the disk was full says
 * so too: output it wrote then may be missing from its log.
 */
export function exitOutcome(job: Job, reason: ExitReason, facts: ExitFacts): Partial<Job> {
  const common = {
    end_time: reason.endTime,
    driver_exit_code: reason.kind === "exited" ? reason.code : null,
  };
  const note = diskFullNote(job, facts.diskFull);
  if (job.stop_requested_at !== null) {
    return { ...common, status: "STOPPED", message: STATUS_MESSAGES.STOPPED + note };
  }
  if (reason.kind === "exited" && reason.code === 0) {
    return { ...common, status: "SUCCEEDED", message: STATUS_MESSAGES.SUCCEEDED + note };
  }
  const killedOnPurpose = reason.kind === "died" && reason.killed;
  if (reason.outOfMemory && job.entrypoint_memory > 0 && !killedOnPurpose) {
    const limit = formatAmount("memory", job.entrypoint_memory);
    const message = `Job ran out of its memory limit (entrypoint_memory ${limit}) and ` +
      memoryKillOf(reason, facts.pid) +
      (facts.tail
        ? `. Last available logs (truncated to 20,000 chars):\n${facts.tail}`
        : ". No logs available.");
    const error_type = "JOB_ENTRYPOINT_COMMAND_ERROR";
    return { ...common, status: "FAILED", error_type, message: message + note };
  }
  let message: string;
  if (reason.kind === "exited") {
    message = facts.tail
      ? `Job entrypoint command failed with exit code ${reason.code}, last available logs ` +
        `(truncated to 20,000 chars):\n${facts.tail}`
      : `Job entrypoint command failed with exit code ${reason.code}. No logs available.`;
  } else {
    const how = reason.killed
      ? `it was killed through the actors API (force_kill=${reason.killed.force_kill})`
      : `its supervisor process (pid ${facts.pid}) ended before the entrypoint did`;
    message = `Job supervisor actor died: ${how}, and the job's process group was killed with it` +
      (facts.tail ? `. Last available logs (truncated to 20,000 chars):\n${facts.tail}` : "");
  }
  const errorType = reason.kind === "exited"
    ? "JOB_ENTRYPOINT_COMMAND_ERROR"
    : "JOB_SUPERVISOR_ACTOR_DIED";
  return { ...common, status: "FAILED", error_type: errorType, message: message + note };
}

/** What the kernel's kill of a job past its memory limit did, for its message. */
function memoryKillOf(reason: ExitReason, pid: number): string {
  if (reason.kind === "died") return `the kernel killed its supervisor process (pid ${pid})`;
  // SIGKILL: the command's own process died, or its shell says a child did (128 + 9).
  if (reason.code === -9 || reason.code === 137) {
    return `was killed by the kernel (exit code ${reason.code})`;
  }
  return `the kernel killed a process of it; the entrypoint command failed with exit code ${reason.code}`;
}

/** The note on a job that ran while the store's disk was full; "" otherwise. */
function diskFullNote(job: Job, spell: StorageFullSpell | undefined): string {
  if (!spell || (spell.to !== null && spell.to < job.start_time)) return "";
  const to = spell.to === null
    ? " until this end was recorded"
    : ` to ${new Date(spell.to).toISOString()}`;
  return `\n[jobhead: the disk of the data directory was full while this job ran ` +
    `(writes failed from ${new Date(spell.from).toISOString()}${to}): ` +
    `output the job wrote then may be missing from its log]`;
}

/**
 * The metadata a job sees in `JOBHEAD_JOB_CONFIG_JSON`: what was submitted, plus
 * `job_submission_id` and `job_name` (the id unless the user named it), as Ray's are.
 */
export function jobConfigMetadata(job: Job): Record<string, string> {
  return { job_name: job.id, ...job.metadata, job_submission_id: job.id };
}

function generateJobId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "jobhead_" + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

/**
 * The GPU indices a running job was given, from its supervisor's environment: for a job
 * whose previous head died after spawning it and before recording them. [] when unreadable.
 */
async function gpusOfProcess(pid: number): Promise<number[]> {
  try {
    const environ = await Deno.readTextFile(`/proc/${pid}/environ`);
    const value = environ.split("\0").find((entry) => entry.startsWith("CUDA_VISIBLE_DEVICES="));
    if (!value) return [];
    return value.slice("CUDA_VISIBLE_DEVICES=".length).split(",").filter((part) =>
      /^\d+$/.test(part)
    )
      .map(Number);
  } catch {
    return [];
  }
}

/** What is wrong with an `entrypoint_label_selector`; undefined if nothing. */
function selectorProblem(selector: Record<string, string> | null | undefined): string | undefined {
  try {
    if (selector) parseSelector(selector);
    return undefined;
  } catch (err) {
    return `entrypoint_label_selector: ${errorMessage(err)}`;
  }
}

/**
 * What is wrong with naming CPU, GPU or memory in `entrypoint_resources` (as Ray, they
 * have fields of their own, which one amount of each must come from); undefined if none.
 */
function standardResourceProblem(
  resources: Record<string, number> | null | undefined,
): string | undefined {
  const named = STANDARD_RESOURCES.find((name) => resources?.[name] !== undefined);
  return named && `entrypoint_resources.${named}: use ${fieldOf(named)}`;
}
