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

/** The kinds of change `GET /api/events` announces. */
export type EventKind = "job" | "actor" | "deployment";

/** What to listen to: the kinds of events, and which of them may concern the check. */
export interface WaitOptions {
  types: EventKind[];
  /** Whether an event (its `data` parsed) may change the check's answer; all do when absent. */
  // deno-lint-ignore no-explicit-any
  concerns?: (type: EventKind, data: any) => boolean;
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
  return options.concerns(message.event as EventKind, JSON.parse(message.data));
}
