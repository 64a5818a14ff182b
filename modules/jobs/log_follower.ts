/**
 * Following a job's log as it grows: file events from one shared directory watcher,
 * a safety re-check so a missed event never stalls a follower, and framing into
 * text frames of whole lines that never split a UTF-8 sequence.
 */
import { dirname } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

/** Largest frame sent to a follower (API.md). */
export const MAX_FRAME_BYTES = 64 * 1024;
/** A follower re-reads its file at least this often, even without an event. */
const SAFETY_RECHECK_MS = 1_000;

/**
 * Tells followers when their file changed: one `Deno.watchFs` per directory, open
 * only while someone follows a file in it.
 */
export class LogWatcher {
  #listeners = new Map<string, Set<() => void>>();
  #watchers = new Map<string, Deno.FsWatcher>();

  /** Calls `onChange` whenever the file at `path` changes; returns the unsubscribe. */
  subscribe(path: string, onChange: () => void): () => void {
    let set = this.#listeners.get(path);
    if (!set) this.#listeners.set(path, set = new Set());
    set.add(onChange);
    this.#watch(dirname(path));
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.#listeners.delete(path);
      if (![...this.#listeners.keys()].some((p) => dirname(p) === dirname(path))) {
        this.#unwatch(dirname(path));
      }
    };
  }

  /** Stops watching every directory; safe to call twice. */
  close(): void {
    for (const dir of [...this.#watchers.keys()]) this.#unwatch(dir);
  }

  #unwatch(dir: string): void {
    const watcher = this.#watchers.get(dir);
    this.#watchers.delete(dir);
    try {
      watcher?.close();
    } catch {
      // already closed
    }
  }

  #watch(dir: string): void {
    if (this.#watchers.has(dir)) return;
    const watcher = Deno.watchFs(dir, { recursive: false });
    this.#watchers.set(dir, watcher);
    (async () => {
      try {
        for await (const event of watcher) {
          for (const path of event.paths) {
            for (const listener of this.#listeners.get(path) ?? []) listener();
          }
        }
      } catch {
        // closed
      }
    })();
  }
}

/** Options of `followLog()`. */
export interface FollowOptions {
  /** Byte offset to start from; negative counts from the end. */
  fromByte?: number;
  /** Whether the writer has finished: once true and the file is drained, following ends. */
  isFinished: () => Promise<boolean>;
  /** Subscribes to changes of the file; returns the unsubscribe. */
  onChange: (listener: () => void) => () => void;
  signal?: AbortSignal;
}

/**
 * Yields the log at `path` as text frames, every byte once and in order, until the
 * writer has finished and the file is drained (or `signal` aborts).
 */
export async function* followLog(path: string, options: FollowOptions): AsyncGenerator<string> {
  const { signal } = options;
  let changed = true; // read at once
  let wake = () => {};
  const unsubscribe = options.onChange(() => {
    changed = true;
    wake();
  });
  const decoder = new TextDecoder();
  let file: Deno.FsFile | undefined;
  let pending: Uint8Array = new Uint8Array();
  try {
    while (!signal?.aborted) {
      const finished = await options.isFinished();
      changed = false;
      file ??= await openAt(path, options.fromByte ?? 0);
      let atEnd = true;
      if (file) {
        const chunk = new Uint8Array(MAX_FRAME_BYTES);
        const n = await file.read(chunk);
        if (n !== null && n > 0) {
          pending = concat(pending, chunk.subarray(0, n));
          atEnd = false;
        }
      }
      // Mid-burst, send whole lines; once caught up, send what there is, bar a split character.
      for (;;) {
        const cut = frameLength(pending, { caughtUp: atEnd, final: atEnd && finished });
        if (cut === 0) break;
        yield decoder.decode(pending.subarray(0, cut));
        pending = pending.slice(cut);
      }
      if (atEnd && finished) return;
      if (atEnd && !changed) {
        const timer = new AbortController();
        const timerSignal = signal ? AbortSignal.any([timer.signal, signal]) : timer.signal;
        await new Promise<void>((resolve) => {
          wake = resolve;
          delay(SAFETY_RECHECK_MS, undefined, { signal: timerSignal }).then(resolve, resolve);
        });
        timer.abort();
      }
    }
  } finally {
    unsubscribe();
    file?.close();
  }
}

async function openAt(path: string, fromByte: number): Promise<Deno.FsFile | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  const size = (await file.stat()).size;
  const start = fromByte < 0 ? Math.max(0, size + fromByte) : fromByte;
  await file.seek(start, Deno.SeekMode.Start);
  return file;
}

/**
 * How many bytes of `pending` make the next frame (0: none yet). Frames hold at most
 * MAX_FRAME_BYTES, end after a newline where one is in reach, and never split a UTF-8
 * sequence unless `final` (the end of the log).
 */
export function frameLength(
  pending: Uint8Array,
  options: { caughtUp: boolean; final: boolean },
): number {
  if (pending.length === 0) return 0;
  const window = Math.min(pending.length, MAX_FRAME_BYTES);
  if (options.final && pending.length <= MAX_FRAME_BYTES) return pending.length;
  if (!options.caughtUp || pending.length > MAX_FRAME_BYTES) {
    const newline = pending.lastIndexOf(0x0a, window - 1);
    if (newline >= 0) return newline + 1;
    if (pending.length < MAX_FRAME_BYTES) return 0; // wait for the rest of the line
  }
  return utf8Boundary(pending, window);
}

/** The largest length ≤ `limit` that does not end inside a UTF-8 sequence. */
function utf8Boundary(bytes: Uint8Array, limit: number): number {
  if (limit >= bytes.length) {
    // Everything fits: only an incomplete trailing sequence must wait.
    let lead = bytes.length - 1;
    while (lead > 0 && lead > bytes.length - 4 && (bytes[lead] & 0xc0) === 0x80) lead--;
    const need = sequenceLength(bytes[lead]);
    return lead + need <= bytes.length ? bytes.length : lead;
  }
  // Cutting before byte `limit`: back up while that byte continues a sequence.
  let cut = limit;
  while (cut > 0 && limit - cut < 3 && (bytes[cut] & 0xc0) === 0x80) cut--;
  return cut === 0 ? limit : cut;
}

function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 1; // not a lead byte: invalid input, pass it through
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
