/**
 * Live log following. Each followed job has one hub: one reader of its file, woken
 * by file events (with a safety re-check), that cuts the new bytes into frames and
 * hands them to every follower that is caught up. A follower that is behind (it
 * started from an old offset, or its socket is slow) reads the file on its own until
 * it catches up: the file is the buffer, so a slow follower costs no memory beyond
 * its socket's bounded send buffer, and never slows the others.
 */
import { setImmediate as immediate } from "node:timers/promises";
import { concat, cutFrames, MAX_FRAME_BYTES } from "./framing.ts";
import type { LogWatcher } from "./log_watcher.ts";
import { gapMarker, type LogGap, openLogFile, utf8Boundary } from "../../storage/logs.ts";
import { createLogger } from "../../kit/log.ts";
import { errorMessage } from "../../storage/errors.ts";

const log = createLogger("jobs");

/**
 * A hub re-reads its file at least this often, even without a file event. One timer wakes
 * every waiting hub (Rechecks): a timer of each hub's own, made and dropped every second,
 * was garbage enough to grow a head with 1,000 followed jobs by 1.5 MB a second.
 */
const SAFETY_RECHECK_MS = 1_000;
/**
 * A hub asks the store whether its job has ended when the job's end is announced, and
 * otherwise at least this often (an announcement missed). Asking at every re-check cost
 * a head with 1,000 followed jobs 1,000 store reads a second while nothing happened.
 */
export const STORE_RECHECK_MS = 10_000;
/**
 * A follower whose socket holds more unsent bytes than this sends nothing more until it
 * drains, and reads the file on its own from there. None: a frame goes only once Deno
 * has written every frame before it to the socket, so what a follower that does not
 * read costs the head is one frame (and Deno's copy of it), whatever the job writes.
 */
export const MAX_BUFFERED_BYTES = 0;
/**
 * A follower over its buffer limit looks again at once, a few times (a fast reader has
 * drained by then: the limit is small), then after 1 ms, backing off to 250 ms while its
 * socket stays full: a stalled follower costs a look now and then (from one timer shared
 * by all, DrainWatch), not a busy loop.
 */
const DRAIN_IMMEDIATE_CHECKS = 16;
const DRAIN_CHECK_MIN_MS = 1;
const DRAIN_CHECK_MAX_MS = 250;
/** Bytes the hub takes from the file at once. */
const READ_BYTES = 4 * MAX_FRAME_BYTES;

/** Where frames go: a WebSocket, or anything of the same shape. */
export interface FrameSink {
  send(frame: string): void;
  /** Bytes sent but not yet written to the network. */
  bufferedAmount(): number;
}

/** How a hub reaches a job's log and learns that the job has ended. */
export interface LogSource {
  pathOf(id: string): string;
  /** True once the job is terminal: its log will not grow any more. */
  isFinished(id: string): Promise<boolean>;
  /** Calls `listener` when the job ends; returns the unsubscribe. */
  onFinished(id: string, listener: () => void): () => void;
  /** The range of the log dropped under its size cap, if any: it is sent as a marker line. */
  gapOf(id: string): LogGap | undefined;
  watcher: LogWatcher;
}

/** What a caught-up follower is told. */
type LiveEvent =
  /** `bytes` is absent for the marker that stands for a dropped range. */
  | { kind: "frame"; text: string; start: number; end: number; bytes?: Uint8Array }
  | { kind: "end" };

/** One reader of one job's log, shared by all of that job's followers. */
class LogHub {
  /** Every byte before this position has been cut into frames and handed out. */
  framePos = 0;
  /** The job has ended and its log is drained: framePos is the end. */
  ended = false;
  followers = 0;
  #id: string;
  #source: LogSource;
  #rechecks: Rechecks;
  #live = new Set<(event: LiveEvent) => void>();
  #stop = new AbortController();
  #file?: Deno.FsFile;
  #pending: Uint8Array = new Uint8Array();
  #changed = true;
  /** The job's end was announced since the store was last asked (or it never was). */
  #endAnnounced = true;
  /** When the store was last asked whether the job has ended (performance.now()). */
  #askedAt = 0;
  #wake = () => {};
  #unsubscribe: () => void;
  #unsubscribeEnd: () => void;
  #started: Promise<void>;

  constructor(id: string, source: LogSource, rechecks: Rechecks) {
    this.#id = id;
    this.#source = source;
    this.#rechecks = rechecks;
    const wake = () => {
      this.#changed = true;
      this.#wake();
    };
    this.#unsubscribe = source.watcher.subscribe(source.pathOf(id), wake);
    // A job may end without a last write: its end wakes the reader too.
    this.#unsubscribeEnd = source.onFinished(id, () => {
      this.#endAnnounced = true;
      wake();
    });
    this.#started = this.#open();
    this.#started.then(() => this.#pump()).catch((err) => {
      // Closing the hub cancels a read in progress (EINTR): that is no failure.
      if (this.#stop.signal.aborted) return;
      log.error(`following the log of job "${id}" failed: ${errorMessage(err)}`);
      this.#end();
    });
  }

  /** Resolves once `framePos` is set: followers measure themselves against it. */
  ready(): Promise<void> {
    return this.#started.catch(() => {});
  }

  /** Receives frames from `framePos` on, until unsubscribed or the end. */
  subscribe(listener: (event: LiveEvent) => void): () => void {
    this.#live.add(listener);
    return () => this.#live.delete(listener);
  }

  /** Stops reading; safe to call twice. */
  close(): void {
    this.#stop.abort();
    this.#unsubscribe();
    this.#unsubscribeEnd();
    this.#wake();
    this.#file?.close();
    this.#file = undefined;
  }

  async #open(): Promise<void> {
    this.#file = await openLogFile(this.#source.pathOf(this.#id));
    if (!this.#file) return;
    // Start at the end, backed up to a character boundary so no frame begins mid-character.
    const size = (await this.#file.stat()).size;
    const tailLength = Math.min(size, 4);
    const tail = new Uint8Array(tailLength);
    await this.#file.seek(size - tailLength, Deno.SeekMode.Start);
    await readFully(this.#file, tail);
    this.framePos = size - tailLength + utf8Boundary(tail, tail.length);
    await this.#file.seek(this.framePos, Deno.SeekMode.Start);
  }

  async #pump(): Promise<void> {
    const stop = this.#stop.signal;
    const buffer = new Uint8Array(READ_BYTES);
    // Whether the job had ended before the last read began: then an empty read means
    // the log is drained. Asked only at the end of what is written, not per chunk.
    let finishedBeforeRead = false;
    while (!stop.aborted) {
      this.#changed = false;
      this.#file ??= await openLogFile(this.#source.pathOf(this.#id));
      const n = this.#file ? await this.#file.read(buffer) : null;
      if (stop.aborted) return;
      if (n !== null && n > 0) {
        const readPos = this.framePos + this.#pending.length;
        const clipped = clipAtGap(buffer.subarray(0, n), readPos, this.#source.gapOf(this.#id));
        // The read buffer is reused: frames copy out of it, the remainder is kept.
        const data = this.#pending.length === 0
          ? clipped.bytes
          : concat(this.#pending, clipped.bytes);
        if (clipped.gap) {
          this.#emit(data, { caughtUp: true, final: true });
          this.#emitGap(clipped.gap);
        } else {
          this.#emit(data, { caughtUp: false, final: false });
        }
        continue;
      }
      if (finishedBeforeRead) {
        this.#emit(this.#pending, { caughtUp: true, final: true });
        return this.#end();
      }
      this.#emit(this.#pending, { caughtUp: true, final: false });
      finishedBeforeRead = await this.#hasEnded();
      if (!finishedBeforeRead && !this.#changed) await this.#waitForChange();
    }
  }

  /**
   * Whether the job has ended, from the store when its end was announced or the last
   * answer is STORE_RECHECK_MS old; false (not known to have ended) in between.
   */
  async #hasEnded(): Promise<boolean> {
    const now = performance.now();
    if (!this.#endAnnounced && now - this.#askedAt < STORE_RECHECK_MS) return false;
    // An announcement during the question is news for the next one.
    this.#endAnnounced = false;
    this.#askedAt = now;
    return await this.#source.isFinished(this.#id);
  }

  /** Cuts `data` (what follows `framePos`) into frames for the live followers; keeps the rest. */
  #emit(data: Uint8Array, options: { caughtUp: boolean; final: boolean }): void {
    this.#pending = cutFrames(data, options, (frame) => {
      const start = this.framePos;
      this.framePos += frame.length;
      // Followers that are behind read the file themselves: copy and decode for live ones.
      if (this.#live.size === 0) return;
      const bytes = frame.slice();
      this.#broadcast({ kind: "frame", text: decode(bytes), bytes, start, end: this.framePos });
    });
  }

  #emitGap(gap: LogGap): void {
    this.framePos = gap.end;
    this.#file?.seek(gap.end, Deno.SeekMode.Start);
    this.#broadcast({ kind: "frame", text: gapMarker(gap), start: gap.start, end: gap.end });
  }

  #broadcast(event: LiveEvent): void {
    for (const listener of [...this.#live]) listener(event);
  }

  #end(): void {
    this.ended = true;
    this.#broadcast({ kind: "end" });
  }

  async #waitForChange(): Promise<void> {
    let cancel = () => {};
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      cancel = this.#rechecks.add(resolve);
    });
    cancel();
  }
}

/** Options of `LogFollowers.follow()`. */
export interface FollowOptions {
  /** Byte offset to start from; negative counts from the end. */
  fromByte?: number;
  signal?: AbortSignal;
}

/** Sends jobs' logs to followers, one shared hub per followed job. */
export class LogFollowers {
  #source: LogSource;
  #hubs = new Map<string, LogHub>();
  #drains = new DrainWatch();
  #rechecks = new Rechecks();

  constructor(source: LogSource) {
    this.#source = source;
  }

  /** Followers of job logs, across all followed jobs. */
  get followerCount(): number {
    let followers = 0;
    for (const hub of this.#hubs.values()) followers += hub.followers;
    return followers;
  }

  /**
   * Sends the log of job `id` to `sink`, every byte once and in order, from `fromByte`
   * until the job has ended and its log is drained (resolves true), or until `signal`
   * aborts (resolves false).
   */
  async follow(id: string, sink: FrameSink, options: FollowOptions = {}): Promise<boolean> {
    const hub = this.#acquire(id);
    try {
      await hub.ready();
      return await this.#follow(hub, id, sink, options);
    } finally {
      this.#release(id, hub);
    }
  }

  async #follow(hub: LogHub, id: string, sink: FrameSink, options: FollowOptions) {
    const signal = options.signal;
    let position = await this.#startPosition(id, options.fromByte ?? 0);
    let file: Deno.FsFile | undefined;
    /** Where the next read of `file` starts; -1 when not known. */
    let filePos = -1;
    let pending: Uint8Array = new Uint8Array();
    try {
      while (!signal?.aborted) {
        const target = hub.framePos;
        if (position < target) {
          // Behind the hub: read on our own, as fast as the socket takes it.
          if (sink.bufferedAmount() > MAX_BUFFERED_BYTES) {
            const stalled = await waitForDrain(sink, signal, this.#drains);
            if (stalled) {
              // Long stalls keep nothing: no descriptor, no bytes read ahead (the file
              // has them: they are read again from `position`).
              file?.close();
              file = undefined;
              pending = new Uint8Array();
            }
            continue;
          }
          const readPos = position + pending.length;
          let gap: LogGap | undefined;
          // Read only when what is pending cannot make a whole frame.
          if (readPos < target && pending.length < MAX_FRAME_BYTES) {
            if (!file) {
              file = await openLogFile(this.#source.pathOf(id));
              if (!file) throw new Error(`the log of job "${id}" disappeared`);
              filePos = 0;
            }
            if (filePos !== readPos) await file.seek(readPos, Deno.SeekMode.Start);
            // One frame's worth at most, and sized to what is missing: a follower sends
            // one frame at a time, and holds nothing it would have to copy on.
            const buffer = new Uint8Array(Math.min(MAX_FRAME_BYTES, target - readPos));
            const n = await file.read(buffer);
            if (n === null || n === 0) throw new Error(`the log of job "${id}" shrank`);
            filePos = readPos + n;
            const clipped = clipAtGap(buffer.subarray(0, n), readPos, this.#source.gapOf(id));
            pending = pending.length === 0 ? clipped.bytes : concat(pending, clipped.bytes);
            gap = clipped.gap;
          }
          // Where the hub has framed, a frame may end: flush all once we reach it.
          const final = gap !== undefined || position + pending.length === target;
          let full = false;
          pending = cutFrames(pending, { caughtUp: final, final }, (frame) => {
            sink.send(decode(frame));
            position += frame.length;
            // A full socket takes the rest once it drains.
            full = sink.bufferedAmount() > MAX_BUFFERED_BYTES;
            return !full;
          });
          if (gap && !full) {
            sink.send(gapMarker(gap));
            position = gap.end;
          }
          continue;
        }
        if (hub.ended) return true;
        // Caught up: shared frames from here on, so the file handle can go.
        file?.close();
        file = undefined;
        const outcome = await this.#followLive(hub, sink, position, signal);
        if (outcome.kind === "end") return true;
        if (outcome.kind === "aborted") return false;
        position = outcome.position;
      }
      return false;
    } finally {
      file?.close();
    }
  }

  /** Takes frames from the hub until the end, an abort, or the socket falls behind. */
  #followLive(
    hub: LogHub,
    sink: FrameSink,
    from: number,
    signal: AbortSignal | undefined,
  ): Promise<{ kind: "end" } | { kind: "aborted" } | { kind: "behind"; position: number }> {
    let position = from;
    return new Promise((resolve) => {
      const finish = (outcome: Parameters<typeof resolve>[0]) => {
        unsubscribe();
        signal?.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      const onAbort = () => finish({ kind: "aborted" });
      const unsubscribe = hub.subscribe((event) => {
        if (event.kind === "end") return finish({ kind: "end" });
        if (event.end <= position) return; // before our offset
        if (sink.bufferedAmount() > MAX_BUFFERED_BYTES) {
          return finish({ kind: "behind", position });
        }
        // A resume offset may fall inside a frame: send only what follows it.
        const inside = event.start < position && event.bytes;
        sink.send(inside ? decode(event.bytes!.subarray(position - event.start)) : event.text);
        position = event.end;
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) onAbort();
    });
  }

  async #startPosition(id: string, fromByte: number): Promise<number> {
    if (fromByte >= 0) return fromByte;
    let size = 0;
    try {
      size = (await Deno.stat(this.#source.pathOf(id))).size;
    } catch {
      // no log yet
    }
    return Math.max(0, size + fromByte);
  }

  #acquire(id: string): LogHub {
    let hub = this.#hubs.get(id);
    if (!hub) this.#hubs.set(id, hub = new LogHub(id, this.#source, this.#rechecks));
    hub.followers++;
    return hub;
  }

  #release(id: string, hub: LogHub): void {
    if (--hub.followers > 0) return;
    hub.close();
    if (this.#hubs.get(id) === hub) this.#hubs.delete(id);
  }
}

/**
 * Waits until `sink` holds at most MAX_BUFFERED_BYTES unsent, or `signal` aborts. Returns
 * whether it had to wait on timers (the reader is stalled, not just a little behind).
 */
async function waitForDrain(
  sink: FrameSink,
  signal: AbortSignal | undefined,
  drains: DrainWatch,
): Promise<boolean> {
  for (let check = 0; check < DRAIN_IMMEDIATE_CHECKS; check++) {
    await immediate();
    if (sink.bufferedAmount() <= MAX_BUFFERED_BYTES || signal?.aborted) return false;
  }
  await drains.wait(sink, signal);
  return true;
}

/** A follower waiting in a DrainWatch. */
interface DrainWaiter {
  sink: FrameSink;
  waitMs: number;
  /** When to look next (epoch ms). */
  dueAt: number;
  done: () => void;
}

/**
 * The hubs' safety re-checks: one timer, set while some hub waits, wakes every hub
 * waiting then; each is woken within SAFETY_RECHECK_MS of beginning to wait.
 */
class Rechecks {
  #waiting = new Set<() => void>();
  #timer?: ReturnType<typeof setTimeout>;

  /** Calls `wake` at the next tick; returns the cancel, a no-op once it was called. */
  add(wake: () => void): () => void {
    this.#waiting.add(wake);
    this.#timer ??= setTimeout(() => this.#tick(), SAFETY_RECHECK_MS);
    return () => {
      this.#waiting.delete(wake);
      if (this.#waiting.size === 0) this.#stop();
    };
  }

  #tick(): void {
    const woken = [...this.#waiting];
    this.#waiting.clear();
    this.#stop();
    for (const wake of woken) wake();
  }

  #stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Followers waiting for their sockets to drain, all looked at from one timer. Each looks
 * after DRAIN_CHECK_MIN_MS, backing off to DRAIN_CHECK_MAX_MS; a look may come up to a
 * quarter of its wait early, so that waiters due close together share a wake-up. A timer
 * (with its promise and abort listener) per follower and look cost 500 stalled tails
 * 11 MB of garbage a second, which V8 promoted and kept: the head grew by 1.5 MB a second
 * while it sent nothing.
 */
class DrainWatch {
  #waiting = new Set<DrainWaiter>();
  #timer?: ReturnType<typeof setTimeout>;
  /** When the timer fires (epoch ms); Infinity when none is set. */
  #timerAt = Infinity;

  /** Resolves once `sink` holds at most MAX_BUFFERED_BYTES unsent, or `signal` aborts. */
  wait(sink: FrameSink, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: DrainWaiter = {
        sink,
        waitMs: DRAIN_CHECK_MIN_MS,
        dueAt: Date.now() + DRAIN_CHECK_MIN_MS,
        done: () => {
          this.#waiting.delete(waiter);
          signal?.removeEventListener("abort", waiter.done);
          if (this.#waiting.size === 0) this.#clearTimer();
          resolve();
        },
      };
      this.#waiting.add(waiter);
      signal?.addEventListener("abort", waiter.done, { once: true });
      this.#schedule(waiter.dueAt);
    });
  }

  #look(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const waiter of [...this.#waiting]) {
      if (waiter.dueAt - waiter.waitMs / 4 > now) {
        next = Math.min(next, waiter.dueAt);
        continue;
      }
      const drained = waiter.sink.bufferedAmount() <= MAX_BUFFERED_BYTES;
      if (!this.#waiting.has(waiter)) continue; // its follower was aborted meanwhile
      if (drained) {
        waiter.done();
        continue;
      }
      waiter.waitMs = Math.min(waiter.waitMs * 2, DRAIN_CHECK_MAX_MS);
      waiter.dueAt = now + waiter.waitMs;
      next = Math.min(next, waiter.dueAt);
    }
    if (next !== Infinity && this.#waiting.size > 0) this.#schedule(next);
  }

  /** Makes the timer fire by `at` (epoch ms). */
  #schedule(at: number): void {
    if (at >= this.#timerAt) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#look(), Math.max(0, at - Date.now()));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

/** Cuts bytes read at `pos` where the log's dropped range begins; returns the gap if reached. */
function clipAtGap(
  bytes: Uint8Array,
  pos: number,
  gap: LogGap | undefined,
): { bytes: Uint8Array; gap?: LogGap } {
  if (!gap || pos + bytes.length <= gap.start || pos >= gap.end) return { bytes };
  return { bytes: bytes.subarray(0, Math.max(0, gap.start - pos)), gap };
}

async function readFully(file: Deno.FsFile, into: Uint8Array): Promise<void> {
  let filled = 0;
  while (filled < into.length) {
    const n = await file.read(into.subarray(filled));
    if (n === null) return;
    filled += n;
  }
}

const decoder = new TextDecoder();

function decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
