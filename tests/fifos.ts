/**
 * Named pipes that let a test wait on job processes by events instead of sleeps.
 *
 * - A job runs `exec 3>"$D/alive"`: every process it starts inherits fd 3, so the
 *   test's `reader("alive").eof()` resolves exactly when the last of them is gone.
 * - A job runs `echo $$ >"$D/pid"`: the write blocks until the test reads it with
 *   `reader("pid").text()`, which doubles as a "the job got this far" signal.
 * - A job runs `read x <"$D/go"`: it blocks until the test calls `send("go")`.
 *
 * Dispose a `Fifos` after the head (declare it first): killing the job processes is
 * what ends a read still waiting for them.
 */
import { setTimeout as delay } from "node:timers/promises";

/** A FIFO the test reads from; it starts opening (and reading) as soon as it is made. */
export interface FifoReader {
  path: string;
  /** Resolves when the first writer has opened the FIFO. */
  opened(timeoutMs?: number): Promise<void>;
  /** Everything written, once every writer closed it, and when (`performance.now()`). */
  eof(timeoutMs?: number): Promise<{ text: string; at: number }>;
  /** The text written, once every writer closed it. */
  text(timeoutMs?: number): Promise<string>;
}

/** A temp dir of FIFOs, removed on dispose. */
export class Fifos implements AsyncDisposable {
  readonly dir: string;
  #pending = new Set<Promise<unknown>>();
  #unblockers: (() => Promise<void>)[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Makes the temp dir. */
  static async create(): Promise<Fifos> {
    return new Fifos(await Deno.makeTempDir({ prefix: "jobhead-fifos-" }));
  }

  /** Path of `name` in the dir (a plain file unless made a FIFO). */
  path(name: string): string {
    return `${this.dir}/${name}`;
  }

  /** Makes FIFO `name` without opening it (for `send`). */
  async make(name: string): Promise<string> {
    const path = this.path(name);
    const { success, stderr } = await new Deno.Command("mkfifo", { args: [path], stderr: "piped" })
      .output();
    if (!success) throw new Error(`mkfifo ${path}: ${new TextDecoder().decode(stderr)}`);
    return path;
  }

  /** Makes FIFO `name` and starts reading it to its end. */
  async reader(name: string): Promise<FifoReader> {
    const path = await this.make(name);
    let isOpen = false;
    let done = false;
    let chunks = "";
    const openedAt = Deno.open(path, { read: true }).then((file) => {
      isOpen = true;
      return file;
    });
    const finished = (async () => {
      const file = await openedAt;
      try {
        const decoder = new TextDecoder();
        const buf = new Uint8Array(64 * 1024);
        for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
          chunks += decoder.decode(buf.subarray(0, n), { stream: true });
        }
        chunks += decoder.decode();
        return performance.now();
      } finally {
        file.close();
      }
    })().finally(() => done = true);
    this.#track(finished);
    this.#unblockers.push(async () => {
      // Nobody ever opened it for writing: a read-write open never blocks and lets ours finish.
      if (!isOpen && !done) (await Deno.open(path, { read: true, write: true })).close();
    });
    const opened = finished.then(() => {}, () => {});
    return {
      path,
      opened: (timeoutMs = HANG_GUARD_MS) =>
        withTimeout(Promise.race([openedAt.then(() => {}), opened]), timeoutMs, `open of ${path}`),
      eof: (timeoutMs = HANG_GUARD_MS) =>
        withTimeout(finished.then((at) => ({ text: chunks, at })), timeoutMs, `EOF on ${path}`),
      text: (timeoutMs = HANG_GUARD_MS) =>
        withTimeout(finished.then(() => chunks), timeoutMs, `EOF on ${path}`),
    };
  }

  /** Writes `text` to FIFO `name` (made with `make`) once a job opens it for reading. */
  async send(name: string, text = "go\n", timeoutMs = HANG_GUARD_MS): Promise<void> {
    const path = this.path(name);
    const write = Deno.writeTextFile(path, text);
    this.#track(write);
    const guard = new AbortController();
    const timedOut = await Promise.race([
      write.then(() => false),
      delay(timeoutMs, undefined, { signal: guard.signal }).then(() => true, () => false),
    ]);
    guard.abort();
    if (timedOut) {
      (await Deno.open(path, { read: true, write: true })).close();
      await write.catch(() => {});
      throw new Error(`no job opened ${path} for reading within ${timeoutMs} ms`);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const unblock of this.#unblockers) await unblock().catch(() => {});
    await Promise.allSettled([...this.#pending]);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  #track(p: Promise<unknown>): void {
    const settled = p.then(() => {}, () => {});
    this.#pending.add(settled);
    settled.then(() => this.#pending.delete(settled));
  }
}

/**
 * How long a test waits for anything before it fails, naming what it waited for: a guard
 * that turns a hung test into a message, not a bound on how fast a head or a machine is.
 */
export const HANG_GUARD_MS = 120_000;

/** Rejects with a message naming `what` when `p` does not settle within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const guard = new AbortController();
  try {
    return await Promise.race([
      p,
      delay(ms, undefined, { signal: guard.signal }).then(() => {
        throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      }),
    ]);
  } finally {
    guard.abort();
  }
}
