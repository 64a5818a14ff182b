/**
 * Waiting on what a head announces instead of on a timer: `GET /api/events` wakes a check,
 * which reads the API once the stream is `ready` (so nothing before it is missed) and again
 * after every event that may concern it.
 *
 * @example
 * ```ts
 * const alive = await waitForEvent(head, "both supervisors to be ALIVE", async () => {
 *   const { body } = await head.json("/api/actors?state=ALIVE");
 *   return body.length === 2 && body;
 * }, { types: ["actor"] });
 * ```
 * @module
 */
import { type EventSourceMessage, EventSourceParserStream } from "eventsource-parser/stream";
import { HANG_GUARD_MS, withTimeout } from "./fifos.ts";
import type { RunningHead } from "./harness.ts";

/** The kinds of change `GET /api/events` announces (its `types`). */
export type EventKind = "job" | "actor" | "deployment";
/** The names of the events those kinds send. */
export type EventName = EventKind | "job-deleted" | "actor-deleted";

/** What to listen to: the kinds of events, and which of them may concern the check. */
export interface WaitOptions {
  types: EventKind[];
  /** Whether an event (its `data` parsed) may change the check's answer; all do when absent. */
  // deno-lint-ignore no-explicit-any
  concerns?: (event: EventName, data: any) => boolean;
  /** Headers for `GET /api/events`, e.g. a token the head was not started with. */
  headers?: HeadersInit;
}

/**
 * Calls `check` once the head's event stream is ready, and again after each event that
 * concerns it, until it returns something other than undefined or false, and returns that.
 */
export async function waitForEvent<T>(
  head: RunningHead,
  what: string,
  check: () => Promise<T | undefined | false>,
  options: WaitOptions,
): Promise<T> {
  const abort = new AbortController();
  const res = await head.fetch(`/api/events?types=${options.types.join(",")}`, {
    headers: options.headers,
    signal: abort.signal,
  });
  if (res.status !== 200) {
    throw new Error(`GET /api/events answered ${res.status}: ${await res.text()}`);
  }
  const events = res.body!.pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream()).getReader();
  const waiting = async (): Promise<T> => {
    for (;;) {
      const { value, done } = await events.read();
      if (done) throw new Error(`the head ended its event stream while waiting for ${what}`);
      if (!concerns(value, options)) continue;
      const result = await check();
      if (result !== undefined && result !== false) return result;
    }
  };
  try {
    return await withTimeout(waiting(), HANG_GUARD_MS, what);
  } finally {
    abort.abort();
    await events.cancel().catch(() => {});
  }
}

/** Whether `message` calls for a new check: `ready` and `reset` always do. */
function concerns(message: EventSourceMessage, options: WaitOptions): boolean {
  if (message.event === "ready" || message.event === "reset") return true;
  if (options.concerns === undefined) return true;
  return options.concerns(message.event as EventName, JSON.parse(message.data));
}

/** One event of the stream: its name and its parsed `data:`. */
export interface StreamEvent {
  event: EventName;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/**
 * A head's event stream read in order, for a test about the events themselves; close it
 * (or `await using` it) when done.
 */
export interface EventReader extends AsyncDisposable {
  /** The next event `matches` accepts; events before it are passed over. */
  next(matches: (event: StreamEvent) => boolean): Promise<StreamEvent>;
  /** Every event passed over or taken so far, for a failure's message. */
  seen: StreamEvent[];
}

/** Opens `GET /api/events?types=…` and resolves once its `ready` event has arrived. */
export async function openEvents(head: RunningHead, types: EventKind[]): Promise<EventReader> {
  const abort = new AbortController();
  const res = await head.fetch(`/api/events?types=${types.join(",")}`, { signal: abort.signal });
  if (res.status !== 200) {
    throw new Error(`GET /api/events answered ${res.status}: ${await res.text()}`);
  }
  const events = res.body!.pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream()).getReader();
  const seen: StreamEvent[] = [];
  const next = async (matches: (event: StreamEvent) => boolean): Promise<StreamEvent> => {
    for (;;) {
      const { value, done } = await events.read();
      if (done) throw new Error(`the event stream ended; it sent ${JSON.stringify(seen)}`);
      if (value.event === "ready" || value.event === "reset") continue;
      const event = { event: value.event as EventName, data: JSON.parse(value.data) };
      seen.push(event);
      if (matches(event)) return event;
    }
  };
  const reader: EventReader = {
    seen,
    next: (matches) =>
      withTimeout(next(matches), HANG_GUARD_MS, `an event after ${JSON.stringify(seen)}`),
    async [Symbol.asyncDispose]() {
      abort.abort();
      await events.cancel().catch(() => {});
    },
  };
  // The stream opens with `ready`: what happens from now on is in it.
  const ready = await withTimeout(events.read(), HANG_GUARD_MS, "the event stream's ready");
  if (ready.value?.event !== "ready") {
    await reader[Symbol.asyncDispose]();
    throw new Error(`the event stream opened with ${JSON.stringify(ready.value)}`);
  }
  return reader;
}
