/**
 * A small pool of Web Workers for CPU-heavy work, so the head's event loop stays
 * responsive. A task names a module and one of its exported functions: the worker
 * imports the module and calls the function with structured-cloned arguments.
 */
import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import type { WorkerReply, WorkerTask } from "./worker_entry.ts";

const ENTRY_URL = new URL("./worker_entry.ts", import.meta.url);

/** Workers a pool keeps at most, unless told otherwise: one core is left to the head. */
export const DEFAULT_WORKERS = Math.max(1, Math.min(4, navigator.hardwareConcurrency - 1));

/** The pool is closed: the task was never run, or was cut off. */
export class WorkerPoolClosedError extends Error {
  override name = "WorkerPoolClosedError";
}

interface Task {
  message: WorkerTask;
  resolve(value: unknown): void;
  reject(reason: unknown): void;
  /** Removes the abort listener; called once the task is settled. */
  cleanup(): void;
}

/** Runs exported functions of modules in a few long-lived workers, first come first served. */
export class WorkerPool {
  #size: number;
  #idle: Worker[] = [];
  #busy = new Map<Worker, Task>();
  #queue: Task[] = [];
  #closed = false;

  /** `size`: the most workers running at once; they start on demand. */
  constructor(options: { size?: number } = {}) {
    this.#size = Math.max(1, options.size ?? DEFAULT_WORKERS);
  }

  /** The most workers this pool runs at once. */
  get size(): number {
    return this.#size;
  }

  /**
   * Calls export `fn` of `module` (a URL such as `import.meta.url`, or an absolute path)
   * in a worker with `args`, and resolves to its (structured-cloned) value. Rejects with
   * the function's error, with `signal`'s reason when it aborts (a running task's worker
   * is terminated), and with WorkerPoolClosedError after `close()`.
   */
  run<T = unknown>(
    module: string | URL,
    fn: string,
    args: unknown[] = [],
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new WorkerPoolClosedError("The worker pool is closed"));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const onAbort = () => this.#cancel(task, signal!.reason);
    const task: Task = {
      message: { specifier: toSpecifier(module), fn, args },
      resolve: resolve as (value: unknown) => void,
      reject,
      cleanup: () => signal?.removeEventListener("abort", onAbort),
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#queue.push(task);
    this.#dispatch();
    return promise;
  }

  /** Terminates every worker; queued and running tasks reject. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new WorkerPoolClosedError("The worker pool is closed");
    for (const task of this.#queue.splice(0)) settle(task, () => task.reject(error));
    for (const [worker, task] of this.#busy) {
      worker.terminate();
      settle(task, () => task.reject(error));
    }
    for (const worker of this.#idle) worker.terminate();
    this.#busy.clear();
    this.#idle = [];
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let worker = this.#idle.pop();
      if (!worker) {
        if (this.#busy.size >= this.#size) return;
        worker = this.#spawn();
      }
      const task = this.#queue.shift()!;
      try {
        worker.postMessage(task.message);
      } catch (err) {
        // Arguments that cannot be cloned: the worker never saw the task.
        this.#idle.push(worker);
        settle(task, () => task.reject(err));
        continue;
      }
      this.#busy.set(worker, task);
    }
  }

  #spawn(): Worker {
    const worker = new Worker(ENTRY_URL, { type: "module" });
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const task = this.#busy.get(worker);
      if (!task) return;
      this.#busy.delete(worker);
      this.#idle.push(worker);
      const reply = event.data;
      settle(task, () => reply.ok ? task.resolve(reply.value) : task.reject(toError(reply.error)));
      this.#dispatch();
    };
    worker.onerror = (event) => {
      // An error thrown outside any task (a crash of the worker itself): replace the worker.
      event.preventDefault();
      this.#discard(worker, new Error(`A worker failed: ${event.message}`));
    };
    worker.onmessageerror = () => {
      this.#discard(worker, new Error("A worker's answer could not be read"));
    };
    return worker;
  }

  /** Terminates `worker`, failing the task it runs, and lets the queue go on. */
  #discard(worker: Worker, reason: unknown): void {
    worker.terminate();
    this.#idle = this.#idle.filter((w) => w !== worker);
    const task = this.#busy.get(worker);
    this.#busy.delete(worker);
    if (task) settle(task, () => task.reject(reason));
    if (!this.#closed) this.#dispatch();
  }

  #cancel(task: Task, reason: unknown): void {
    const queued = this.#queue.indexOf(task);
    if (queued !== -1) {
      this.#queue.splice(queued, 1);
      settle(task, () => task.reject(reason));
      return;
    }
    for (const [worker, running] of this.#busy) {
      if (running === task) this.#discard(worker, reason);
    }
  }
}

function settle(task: Task, outcome: () => void): void {
  task.cleanup();
  outcome();
}

function toSpecifier(module: string | URL): string {
  const text = String(module);
  return isAbsolute(text) ? pathToFileURL(text).href : text;
}

function toError(error: { name: string; message: string; stack?: string }): Error {
  const err = new Error(error.message);
  err.name = error.name;
  if (error.stack) err.stack = error.stack;
  return err;
}
