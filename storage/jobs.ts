/**
 * The job store: one record per job, kept whole. It looks only at a record's id, status
 * and submission time; what a job is belongs to the jobs module (kit/job_record.ts).
 * Every change is a versionstamp-checked atomic write of a job in a given status, so
 * racing writers (stop vs exit, monitor vs supervisor) can never produce two terminal
 * statuses, and a status moves only as the lifecycle the store is given allows.
 */
import type { KvAtomic, KvStore } from "./kv.ts";
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import {
  ConflictError,
  errorMessage,
  InsufficientStorageError,
  InvalidStateError,
  isDiskFull,
  NotFoundError,
  StoreUnavailableError,
} from "./errors.ts";

/** What the store needs of a job's record. */
export interface StoredJob {
  id: string;
  status: string;
  /** Submission time, epoch milliseconds: the order of `list()`. */
  start_time: number;
}

/** One page of jobs, newest first, and the cursor of the next page if there is one. */
export interface JobPage<J extends StoredJob = StoredJob> {
  jobs: J[];
  cursor?: string;
}

/** Options of `JobStore.list()`. */
export interface ListJobsOptions<Status extends string = string> {
  statuses?: readonly Status[];
  limit?: number;
  cursor?: string;
}

/** Changes to a job, or a function that decides them from the job as it is stored. */
export type JobChanges<J extends StoredJob = StoredJob> =
  | Partial<Omit<J, "id">>
  | ((job: J) => Partial<Omit<J, "id">>);

/**
 * A job as this process wrote it, and that write's versionstamp: `update()` given it
 * writes at once, checked against the versionstamp, instead of reading the job first.
 */
export interface WrittenJob<J extends StoredJob = StoredJob> {
  job: J;
  versionstamp: string;
}

/** A stretch of time during which the store's writes failed for lack of disk space. */
export interface StorageFullSpell {
  /** When the first write failed. */
  from: number;
  /** When a write landed again; null while writes still fail. */
  to: number | null;
}

/**
 * Durable job records. Implementations must make `create` and `update` atomic, and keep a
 * job in a terminal status in that status.
 */
export interface JobStore<J extends StoredJob = StoredJob> {
  /**
   * Stores a new job and resolves to its write's versionstamp; throws ConflictError if
   * the id already exists, and InsufficientStorageError if the disk is full (nothing is
   * stored then).
   */
  create(job: J): Promise<string>;
  /** The job, or undefined. */
  get(id: string): Promise<J | undefined>;
  /** Jobs newest first, optionally only those in `statuses`. */
  list(options?: ListJobsOptions<J["status"]>): Promise<JobPage<J>>;
  /** Jobs that are not terminal, in submission order. */
  listActive(): Promise<J[]>;
  /**
   * Applies `changes` to a job whose status is `from` (or one of them), in one checked
   * write: a function is called with the job as stored, and again if another writer got
   * in first. Throws ConflictError if the job has left `from` (another writer won),
   * NotFoundError if it does not exist, InvalidStateError if `changes` would make a move
   * the lifecycle forbids (backwards, or from one terminal status to another; nothing is
   * written then). A write that fails (a full disk, a store that is away) is retried with
   * backoff until it lands; with `once` (a client waits for the answer) it throws
   * instead: InsufficientStorageError for a full disk, StoreUnavailableError for a store
   * that is away. With `written` (the job as this process last wrote it) the first try
   * decides from it without a read; if the job changed since, it reads and decides again.
   */
  update(
    id: string,
    from: J["status"] | readonly J["status"][],
    changes: JobChanges<J>,
    options?: { once?: boolean; written?: WrittenJob<J> },
  ): Promise<J>;
  /** Removes a terminal job; throws NotFoundError if absent, InsufficientStorageError on a full disk. */
  delete(id: string): Promise<void>;
  /** The latest spell of writes failing for lack of disk space, if there was one. */
  storageFull(): StorageFullSpell | undefined;
}

const JOBS = "jobs";
const BY_TIME = "jobs_by_time";
const ACTIVE = "jobs_active";
const GET_MANY_MAX_KEYS = 10; // Deno KV's limit for getMany()
/** Writes per commit: KV's most checks per commit (one a write), of its 1000 mutations. */
const MAX_BATCHED_WRITES = 100;
/** Commits under way at once. */
const MAX_COMMITS_AT_ONCE = 4;
/** First and longest wait between attempts of a write that failed. */
const RETRY_FIRST_MS = 25;
const RETRY_MAX_MS = 1_000;

/** A checked write waiting in the commit queue. */
interface QueuedWrite {
  checks: Deno.AtomicCheck[];
  /** The checked keys, as text. */
  keys: string[];
  apply(op: KvAtomic): void;
  /** With the commit's versionstamp, or null when a check failed. */
  resolve(versionstamp: string | null): void;
  reject(err: unknown): void;
}

/**
 * The lifecycle of a job's status, as the owner of the record defines it: the store
 * enforces it on every write.
 */
export interface JobLifecycle<Status extends string> {
  /** The statuses a job never leaves: it drops out of `listActive()`, and keeps its status. */
  terminalStatuses: readonly Status[];
  /** Whether a job may go from status `from` to `to` (staying put included). */
  canMove(from: Status, to: Status): boolean;
}

/** Options of `KvJobStore`: the lifecycle, and where the store reports its trouble. */
export interface KvJobStoreOptions<Status extends string> extends JobLifecycle<Status> {
  /** Tells the operator when writes start failing and when they land again. */
  log?: (line: string) => void;
}

/** JobStore on Deno KV: `["jobs", id]`, plus time and active-set indexes. */
export class KvJobStore<J extends StoredJob> implements JobStore<J> {
  #kv: KvStore;
  #terminal: readonly string[];
  #canMove: (from: J["status"], to: J["status"]) => boolean;
  #queue: QueuedWrite[] = [];
  /** Commits under way, and the keys they check. */
  #commits = 0;
  #committing = new Set<string>();
  #full?: StorageFullSpell;
  #failing = false;
  #log: (line: string) => void;

  constructor(kv: KvStore, options: KvJobStoreOptions<J["status"]>) {
    this.#kv = kv;
    this.#terminal = options.terminalStatuses;
    this.#canMove = options.canMove;
    this.#log = options.log ?? ((line) => console.error(`jobhead: ${line}`));
  }

  async create(job: J): Promise<string> {
    let versionstamp: string | null;
    try {
      versionstamp = await this.#write([{ key: [JOBS, job.id], versionstamp: null }], (op) => {
        op.set([JOBS, job.id], job).set([BY_TIME, job.start_time, job.id], job.id);
        if (!this.#isTerminal(job.status)) op.set([ACTIVE, job.id], job.start_time);
      });
    } catch (err) {
      this.#failed(err);
      throw storageError(err, `Cannot store job "${job.id}"`);
    }
    this.#landed();
    if (versionstamp === null) {
      throw new ConflictError(
        `Job with submission_id ${job.id} already exists. Please use a different submission_id.`,
      );
    }
    return versionstamp;
  }

  async get(id: string): Promise<J | undefined> {
    const entry = await this.#kv.get<J>([JOBS, id]);
    return entry.value ?? undefined;
  }

  async list(options: ListJobsOptions<J["status"]> = {}): Promise<JobPage<J>> {
    const limit = options.limit ?? 1000;
    const selector = options.cursor
      ? { start: [BY_TIME], end: [BY_TIME, ...decodeCursor(options.cursor)] }
      : { prefix: [BY_TIME] };
    // Collect one job past the page: its presence is what says there is a next page.
    const jobs: J[] = [];
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

  async listActive(): Promise<J[]> {
    const ids: string[] = [];
    for await (const entry of this.#kv.list({ prefix: [ACTIVE] })) ids.push(entry.key[1] as string);
    const jobs = await this.#getMany(ids);
    return jobs.sort((a, b) => a.start_time - b.start_time);
  }

  async update(
    id: string,
    from: J["status"] | readonly J["status"][],
    changes: JobChanges<J>,
    options: { once?: boolean; written?: WrittenJob<J> } = {},
  ): Promise<J> {
    const statuses: readonly string[] = typeof from === "string" ? [from] : from;
    let waitMs = RETRY_FIRST_MS;
    /** The record a write that failed without an answer tried to store: it may have landed. */
    let unanswered: string | undefined;
    const retry = async (err: unknown) => {
      this.#failed(err);
      if (options.once) throw storageError(err, `Cannot change job "${id}"`);
      await delay(waitMs);
      waitMs = Math.min(waitMs * 2, RETRY_MAX_MS);
    };
    // A failed check means someone else wrote in between: re-read and decide again.
    // A failed write (a full disk, a store away) is tried again, decided afresh, until it
    // lands; so is a read while the store is away. The job as written here last, when
    // given, stands in for the first read: if it is out of date, its check fails, or what
    // was decided from it is not taken as the answer, and the job is read.
    let written = options.written;
    for (;;) {
      let entry: Deno.KvEntryMaybe<J>;
      const known = written;
      written = undefined;
      if (known) {
        entry = { key: [JOBS, id], value: known.job, versionstamp: known.versionstamp };
      } else {
        try {
          entry = await this.#kv.get<J>([JOBS, id]);
        } catch (err) {
          if (!(err instanceof StoreUnavailableError)) throw err;
          await retry(err);
          continue;
        }
      }
      if (entry.value === null) throw new NotFoundError(`Job ${id} does not exist`);
      if (unanswered !== undefined && JSON.stringify(entry.value) === unanswered) {
        this.#landed(); // the write whose answer was lost did land
        return entry.value;
      }
      let next: J;
      try {
        next = this.#decide(entry.value, statuses, changes);
      } catch (err) {
        if (known) continue;
        throw err;
      }
      let ok: boolean;
      try {
        ok = await this.#write([entry], (op) => {
          op.set([JOBS, id], next);
          if (this.#isTerminal(next.status)) op.delete([ACTIVE, id]);
        }) !== null;
      } catch (err) {
        if (err instanceof StoreUnavailableError) unanswered = JSON.stringify(next);
        await retry(err);
        continue;
      }
      this.#landed();
      if (ok) return next;
    }
  }

  /** The job once `changes` apply to `job`; throws if it may not move from its status. */
  #decide(job: J, statuses: readonly string[], changes: JobChanges<J>): J {
    const id = job.id;
    if (!statuses.includes(job.status)) {
      throw new ConflictError(
        `Cannot move job "${id}" from ${statuses.join(" or ")}: job is already ${job.status}`,
      );
    }
    const decided = typeof changes === "function" ? changes(job) : changes;
    const next = { ...job, ...decided, id } as J;
    if (!this.#canMove(job.status, next.status)) {
      throw new InvalidStateError(
        `Cannot move job "${id}" from ${job.status} to ${next.status}: ` +
          `statuses only move forward`,
      );
    }
    return next;
  }

  async delete(id: string): Promise<void> {
    const entry = await this.#kv.get<J>([JOBS, id]);
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

  #isTerminal(status: string): boolean {
    return this.#terminal.includes(status);
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
   * Commits a checked write: its versionstamp, or null if a check failed. Writes that
   * arrive while commits are under way go together in the next one (group commit: one disk
   * sync for many jobs), and a few commits may be under way at once, so a burst of writes
   * does not wait for each batch's answer before the next goes. A batch whose checks fail,
   * or that is over KV's limits, is retried write by write, so one stale or oversized write
   * never fails another; two writes of one job never share a batch, nor go at once.
   */
  #write(
    checks: Deno.AtomicCheck[],
    apply: (op: KvAtomic) => void,
  ): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const keys = checks.map((check) => JSON.stringify(check.key));
      this.#queue.push({ checks, keys, apply, resolve, reject });
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#commits < MAX_COMMITS_AT_ONCE && this.#queue.length > 0) {
      const batch = this.#takeBatch();
      if (batch.length === 0) return; // every write waits for a commit of its job
      this.#commits++;
      for (const write of batch) for (const key of write.keys) this.#committing.add(key);
      this.#commitBatch(batch).finally(() => {
        this.#commits--;
        for (const write of batch) for (const key of write.keys) this.#committing.delete(key);
        this.#flush();
      });
    }
  }

  #takeBatch(): QueuedWrite[] {
    const batch: QueuedWrite[] = [];
    const keys = new Set<string>();
    const rest: QueuedWrite[] = [];
    for (const write of this.#queue) {
      const free = write.keys.every((key) => !keys.has(key) && !this.#committing.has(key));
      if (batch.length < MAX_BATCHED_WRITES && free) {
        batch.push(write);
        for (const key of write.keys) keys.add(key);
      } else {
        rest.push(write);
      }
    }
    this.#queue = rest;
    return batch;
  }

  /** Commits a batch, else each of its writes alone; settles every write. */
  async #commitBatch(batch: QueuedWrite[]): Promise<void> {
    try {
      const versionstamp = await this.#commit(batch);
      if (versionstamp !== null) {
        for (const write of batch) write.resolve(versionstamp);
        return;
      }
      if (batch.length === 1) return batch[0].resolve(null);
    } catch (err) {
      // A batch over KV's limits (a TypeError) may hold writes that fit alone; a store
      // that is away or a full disk fails each write alike.
      if (batch.length === 1 || !(err instanceof TypeError)) {
        for (const write of batch) write.reject(err);
        return;
      }
    }
    for (const write of batch) {
      try {
        write.resolve(await this.#commit([write]));
      } catch (err) {
        write.reject(err);
      }
    }
  }

  /** Commits `writes` together: their versionstamp, or null if a check failed. */
  async #commit(writes: QueuedWrite[]): Promise<string | null> {
    const op = this.#kv.atomic();
    for (const write of writes) {
      op.check(...write.checks);
      write.apply(op);
    }
    const result = await op.commit();
    return result.ok ? result.versionstamp : null;
  }

  async #getMany(ids: string[]): Promise<J[]> {
    const jobs: J[] = [];
    for (let i = 0; i < ids.length; i += GET_MANY_MAX_KEYS) {
      const keys = ids.slice(i, i + GET_MANY_MAX_KEYS).map((id) => [JOBS, id]);
      for (const entry of await this.#kv.getMany<J[]>(keys)) {
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
export function encodeCursor(job: Pick<StoredJob, "start_time" | "id">): string {
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
