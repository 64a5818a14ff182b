/**
 * The job store: one record per job, and the only place job statuses change.
 * Every status change is a versionstamp-checked atomic write, so racing writers
 * (stop vs exit, monitor vs supervisor) can never produce two terminal statuses.
 */
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import {
  ConflictError,
  errorMessage,
  InsufficientStorageError,
  InvalidStateError,
  isDiskFull,
  NotFoundError,
} from "./errors.ts";

/** A job id: names files, so restricted to a safe character set (API.md). */
export const JobId = z.string().regex(
  /^(?!\.)[A-Za-z0-9_.-]{1,128}$/,
  "must be 1-128 characters of A-Z a-z 0-9 _ . - and not start with '.'",
);
export type JobId = z.infer<typeof JobId>;

/** Job statuses; they move only forward: PENDING → RUNNING → one terminal status. */
export const JobStatus = z.enum(["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"]);
export type JobStatus = z.infer<typeof JobStatus>;

/** Statuses a job never leaves. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ["STOPPED", "SUCCEEDED", "FAILED"];

/** Whether a job in `status` has ended for good. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Whether a job may go from status `from` to `to`: forward only, or staying put. */
export function canMove(from: JobStatus, to: JobStatus): boolean {
  if (from === to) return true;
  if (isTerminal(from)) return false;
  return isTerminal(to) || (from === "PENDING" && to === "RUNNING");
}

/** Why a FAILED job failed (Ray's `JobErrorType`). */
export const JobErrorType = z.enum([
  "JOB_ENTRYPOINT_COMMAND_ERROR",
  "JOB_ENTRYPOINT_COMMAND_START_ERROR",
  "RUNTIME_ENV_SETUP_FAILURE",
  "JOB_SUPERVISOR_ACTOR_DIED",
  "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",
]);
export type JobErrorType = z.infer<typeof JobErrorType>;

/** The runtime environment a job runs in; keys other than these are rejected. */
export const RuntimeEnv = z.strictObject({
  // Names and values end up in a process environment: no "=" in names, no NUL anywhere.
  env_vars: z.record(
    z.string().regex(/^[^=\0]+$/, "names must be non-empty, without '=' or NUL"),
    z.string().regex(/^[^\0]*$/, "values must not contain NUL"),
  ).optional(),
  working_dir: z.string().min(1).optional(),
});
export type RuntimeEnv = z.infer<typeof RuntimeEnv>;

/**
 * The process that supervises a running job or replica (its pid, also its process
 * group): enough for a later head to find it again and adopt it.
 */
export const SupervisorIdentity = z.object({
  pid: z.number().int(),
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): guards against pid reuse. */
  start_ticks: z.number().int(),
});
export type SupervisorIdentity = z.infer<typeof SupervisorIdentity>;

/** A job as stored. Timestamps are epoch milliseconds. */
export const Job = z.object({
  id: JobId,
  status: JobStatus,
  entrypoint: z.string(),
  runtime_env: RuntimeEnv,
  metadata: z.record(z.string(), z.string()),
  entrypoint_num_cpus: z.number(),
  entrypoint_num_gpus: z.number(),
  entrypoint_memory: z.number(),
  entrypoint_resources: z.record(z.string(), z.number()),
  /** Higher starts first (jobhead's addition); absent (records from before it): 0. */
  priority: z.number().int().optional(),
  /** GPU indices the job holds while it runs (CUDA_VISIBLE_DEVICES), once it started. */
  gpus: z.array(z.number().int()).optional(),
  message: z.string(),
  error_type: JobErrorType.nullable(),
  /** Submission time, as Ray reports `start_time`. */
  start_time: z.number(),
  end_time: z.number().nullable(),
  driver_exit_code: z.number().int().nullable(),
  supervisor: SupervisorIdentity.nullable(),
  stop_requested_at: z.number().nullable(),
  /** When log retention removed the job's log; absent while it is kept. */
  log_removed_at: z.number().optional(),
});
export type Job = z.infer<typeof Job>;

/** One page of jobs, newest first, and the cursor of the next page if there is one. */
export interface JobPage {
  jobs: Job[];
  cursor?: string;
}

/** Options of `JobStore.list()`. */
export interface ListJobsOptions {
  statuses?: readonly JobStatus[];
  limit?: number;
  cursor?: string;
}

/** Changes to a job, or a function that decides them from the job as it is stored. */
export type JobChanges =
  | Partial<Omit<Job, "id">>
  | ((job: Job) => Partial<Omit<Job, "id">>);

/** A stretch of time during which the store's writes failed for lack of disk space. */
export interface StorageFullSpell {
  /** When the first write failed. */
  from: number;
  /** When a write landed again; null while writes still fail. */
  to: number | null;
}

/** Durable job records. Implementations must make `create` and `update` atomic. */
export interface JobStore {
  /**
   * Stores a new job; throws ConflictError if the id already exists, and
   * InsufficientStorageError if the disk is full (nothing is stored then).
   */
  create(job: Job): Promise<void>;
  /** The job, or undefined. */
  get(id: string): Promise<Job | undefined>;
  /** Jobs newest first, optionally only those in `statuses`. */
  list(options?: ListJobsOptions): Promise<JobPage>;
  /** Jobs that are not terminal, in submission order. */
  listActive(): Promise<Job[]>;
  /**
   * Applies `changes` to a job whose status is `from` (or one of them), in one checked
   * write: a function is called with the job as stored, and again if another writer got
   * in first. Throws ConflictError if the job has left `from` (another writer won),
   * NotFoundError if it does not exist, InvalidStateError if `changes` would move its
   * status backwards or from one terminal status to another (nothing is written then). A write that fails (a full disk) is retried with
   * backoff until it lands; with `once` (a client waits for the answer) it throws
   * instead: InsufficientStorageError for a full disk.
   */
  update(
    id: string,
    from: JobStatus | readonly JobStatus[],
    changes: JobChanges,
    options?: { once?: boolean },
  ): Promise<Job>;
  /** Removes a terminal job; throws NotFoundError if absent, InsufficientStorageError on a full disk. */
  delete(id: string): Promise<void>;
  /** The latest spell of writes failing for lack of disk space, if there was one. */
  storageFull(): StorageFullSpell | undefined;
}

const JOBS = "jobs";
const BY_TIME = "jobs_by_time";
const ACTIVE = "jobs_active";
const GET_MANY_MAX_KEYS = 10; // Deno KV's limit for getMany()
const MAX_BATCHED_WRITES = 50; // well within KV's 100 checks and 1000 mutations per commit
/** First and longest wait between attempts of a write that failed. */
const RETRY_FIRST_MS = 25;
const RETRY_MAX_MS = 1_000;

/** A checked write waiting in the commit queue. */
interface QueuedWrite {
  checks: Deno.AtomicCheck[];
  apply(op: Deno.AtomicOperation): void;
  resolve(ok: boolean): void;
  reject(err: unknown): void;
}

/** JobStore on Deno KV: `["jobs", id]`, plus time and active-set indexes. */
export class KvJobStore implements JobStore {
  #kv: Deno.Kv;
  #queue: QueuedWrite[] = [];
  #flushing = false;
  #full?: StorageFullSpell;
  #failing = false;
  #log: (line: string) => void;

  /** `log` tells the operator when writes start failing and when they land again. */
  constructor(kv: Deno.Kv, options: { log?: (line: string) => void } = {}) {
    this.#kv = kv;
    this.#log = options.log ?? ((line) => console.error(`jobhead: ${line}`));
  }

  async create(job: Job): Promise<void> {
    let ok: boolean;
    try {
      ok = await this.#write([{ key: [JOBS, job.id], versionstamp: null }], (op) => {
        op.set([JOBS, job.id], job).set([BY_TIME, job.start_time, job.id], job.id);
        if (!isTerminal(job.status)) op.set([ACTIVE, job.id], job.start_time);
      });
    } catch (err) {
      this.#failed(err);
      throw storageError(err, `Cannot store job "${job.id}"`);
    }
    this.#landed();
    if (!ok) {
      throw new ConflictError(
        `Job with submission_id ${job.id} already exists. Please use a different submission_id.`,
      );
    }
  }

  async get(id: string): Promise<Job | undefined> {
    const entry = await this.#kv.get<Job>([JOBS, id]);
    return entry.value ?? undefined;
  }

  async list(options: ListJobsOptions = {}): Promise<JobPage> {
    const limit = options.limit ?? 1000;
    const selector = options.cursor
      ? { start: [BY_TIME], end: [BY_TIME, ...decodeCursor(options.cursor)] }
      : { prefix: [BY_TIME] };
    // Collect one job past the page: its presence is what says there is a next page.
    const jobs: Job[] = [];
    let ids: string[] = [];
    const take = async () => {
      for (const job of await this.#getMany(ids)) {
        if (!options.statuses || options.statuses.includes(job.status)) jobs.push(job);
      }
      ids = [];
    };
    for await (const entry of this.#kv.list<string>(selector, { reverse: true, batchSize: 100 })) {
      ids.push(entry.value);
      if (ids.length >= GET_MANY_MAX_KEYS) {
        await take();
        if (jobs.length > limit) break;
      }
    }
    await take();
    if (jobs.length <= limit) return { jobs };
    const page = jobs.slice(0, limit);
    return { jobs: page, cursor: encodeCursor(page[page.length - 1]) };
  }

  async listActive(): Promise<Job[]> {
    const ids: string[] = [];
    for await (const entry of this.#kv.list({ prefix: [ACTIVE] })) ids.push(entry.key[1] as string);
    const jobs = await this.#getMany(ids);
    return jobs.sort((a, b) => a.start_time - b.start_time);
  }

  async update(
    id: string,
    from: JobStatus | readonly JobStatus[],
    changes: JobChanges,
    options: { once?: boolean } = {},
  ): Promise<Job> {
    const statuses: readonly JobStatus[] = typeof from === "string" ? [from] : from;
    let waitMs = RETRY_FIRST_MS;
    // A failed check means someone else wrote in between: re-read and decide again.
    // A failed write (a full disk) is tried again, decided afresh, until it lands.
    for (;;) {
      const entry = await this.#kv.get<Job>([JOBS, id]);
      if (entry.value === null) throw new NotFoundError(`Job ${id} does not exist`);
      if (!statuses.includes(entry.value.status)) {
        throw new ConflictError(
          `Cannot move job "${id}" from ${
            statuses.join(" or ")
          }: job is already ${entry.value.status}`,
        );
      }
      const decided = typeof changes === "function" ? changes(entry.value) : changes;
      const next: Job = { ...entry.value, ...decided, id };
      if (!canMove(entry.value.status, next.status)) {
        throw new InvalidStateError(
          `Cannot move job "${id}" from ${entry.value.status} to ${next.status}: ` +
            `statuses only move forward`,
        );
      }
      let ok: boolean;
      try {
        ok = await this.#write([entry], (op) => {
          op.set([JOBS, id], next);
          if (isTerminal(next.status)) op.delete([ACTIVE, id]);
        });
      } catch (err) {
        this.#failed(err);
        if (options.once) throw storageError(err, `Cannot change job "${id}"`);
        await delay(waitMs);
        waitMs = Math.min(waitMs * 2, RETRY_MAX_MS);
        continue;
      }
      this.#landed();
      if (ok) return next;
    }
  }

  async delete(id: string): Promise<void> {
    const entry = await this.#kv.get<Job>([JOBS, id]);
    if (entry.value === null) throw new NotFoundError(`Job ${id} does not exist`);
    let result: Deno.KvCommitResult | Deno.KvCommitError;
    try {
      result = await this.#kv.atomic().check(entry)
        .delete([JOBS, id])
        .delete([BY_TIME, entry.value.start_time, id])
        .delete([ACTIVE, id])
        .commit();
    } catch (err) {
      this.#failed(err);
      throw storageError(err, `Cannot delete job "${id}"`);
    }
    this.#landed();
    if (!result.ok) throw new ConflictError(`Cannot delete job "${id}": it changed meanwhile`);
  }

  storageFull(): StorageFullSpell | undefined {
    return this.#full && { ...this.#full };
  }

  /** Notes a failed write: a full disk opens a spell, and the first failure of a run is logged. */
  #failed(err: unknown): void {
    if (isDiskFull(err) && (!this.#full || this.#full.to !== null)) {
      this.#full = { from: Date.now(), to: null };
    }
    if (this.#failing) return;
    this.#failing = true;
    this.#log(
      `writes to the job store fail (${errorMessage(err)}); the head's own are retried until ` +
        "they land",
    );
  }

  /** Notes a write that landed: ends a spell of failures. */
  #landed(): void {
    if (!this.#failing) return;
    this.#failing = false;
    if (this.#full && this.#full.to === null) this.#full.to = Date.now();
    this.#log("job store writes land again");
  }

  /**
   * Commits a checked write; false if a check failed. Writes that arrive while a commit
   * is under way go together in the next one (group commit: one disk sync for many
   * jobs). A batch whose checks fail is retried write by write, so one stale write
   * never fails another; two writes of one job never share a batch.
   */
  #write(checks: Deno.AtomicCheck[], apply: (op: Deno.AtomicOperation) => void): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ checks, apply, resolve, reject });
      this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#takeBatch();
        try {
          if (await this.#commit(batch)) {
            for (const write of batch) write.resolve(true);
          } else if (batch.length === 1) {
            batch[0].resolve(false);
          } else {
            for (const write of batch) write.resolve(await this.#commit([write]));
          }
        } catch (err) {
          for (const write of batch) write.reject(err);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  #takeBatch(): QueuedWrite[] {
    const batch: QueuedWrite[] = [];
    const keys = new Set<string>();
    const rest: QueuedWrite[] = [];
    for (const write of this.#queue) {
      const own = write.checks.map((check) => JSON.stringify(check.key));
      if (batch.length < MAX_BATCHED_WRITES && own.every((key) => !keys.has(key))) {
        batch.push(write);
        for (const key of own) keys.add(key);
      } else {
        rest.push(write);
      }
    }
    this.#queue = rest;
    return batch;
  }

  async #commit(writes: QueuedWrite[]): Promise<boolean> {
    const op = this.#kv.atomic();
    for (const write of writes) {
      op.check(...write.checks);
      write.apply(op);
    }
    return (await op.commit()).ok;
  }

  async #getMany(ids: string[]): Promise<Job[]> {
    const jobs: Job[] = [];
    for (let i = 0; i < ids.length; i += GET_MANY_MAX_KEYS) {
      const keys = ids.slice(i, i + GET_MANY_MAX_KEYS).map((id) => [JOBS, id]);
      for (const entry of await this.#kv.getMany<Job[]>(keys)) {
        if (entry.value) jobs.push(entry.value);
      }
    }
    return jobs;
  }
}

/** A failed write as the caller should see it: InsufficientStorageError for a full disk. */
function storageError(err: unknown, what: string): unknown {
  if (!isDiskFull(err)) return err;
  return new InsufficientStorageError(
    `${what}: the disk of the data directory is full (${errorMessage(err)}); nothing was stored`,
  );
}

/**
 * Cursors name the last job of the previous page, so they stay valid while jobs are
 * added or deleted. A cursor that does not decode is reported as a bad request.
 */
export function encodeCursor(job: Job): string {
  return btoa(JSON.stringify([job.start_time, job.id])).replaceAll("=", "");
}

/** A cursor as a query carries it: text that `decodeCursor()` takes. */
export const JobCursor = z.string().refine((text) => {
  try {
    decodeCursor(text);
    return true;
  } catch {
    return false;
  }
}, "not a cursor this server issued");

/** Decodes a cursor from `encodeCursor`; throws a TypeError if it is not one. */
export function decodeCursor(cursor: string): [number, string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(atob(cursor));
  } catch {
    throw new TypeError("cursor is not valid");
  }
  const result = z.tuple([z.number(), z.string()]).safeParse(parsed);
  if (!result.success) throw new TypeError("cursor is not valid");
  return result.data;
}
