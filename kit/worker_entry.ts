/**
 * The script each worker of a WorkerPool runs: imports the requested module, calls the
 * requested export with the given arguments, and posts back its value or its error.
 */

/** A task, as `WorkerPool.run()` posts it. */
export interface WorkerTask {
  specifier: string;
  fn: string;
  args: unknown[];
}

/** A worker's answer to one task. */
export type WorkerReply =
  | { ok: true; value: unknown }
  | { ok: false; error: { name: string; message: string; stack?: string } };

/** The parts of a worker's global scope this script uses. */
interface WorkerScope {
  onmessage: ((event: MessageEvent<WorkerTask>) => void) | null;
  postMessage(reply: WorkerReply): void;
}

/** Runs one task and answers with its outcome; a value that cannot be posted is an error too. */
async function runTask(scope: WorkerScope, task: WorkerTask): Promise<void> {
  try {
    const exports = await import(task.specifier);
    const fn = exports[task.fn];
    if (typeof fn !== "function") {
      throw new TypeError(`${task.specifier} does not export a function "${task.fn}"`);
    }
    scope.postMessage({ ok: true, value: await fn(...task.args) });
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    scope.postMessage({
      ok: false,
      error: { name: error.name, message: error.message, stack: error.stack },
    });
  }
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (event) => void runTask(scope, event.data);
