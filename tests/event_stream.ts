/** Reading `GET /api/events` in end-to-end tests: wait for the event that says what you expect. */
import type { RunningHead } from "./harness.ts";

/** One server-sent event: its name and its parsed `data:`. */
export interface StreamEvent {
  event: string;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/** A head's event stream, open from `ready` on; close it (or `await using` it) when done. */
export interface EventReader extends AsyncDisposable {
  /** The next event `matches` accepts; events before it are passed over. */
  next(matches: (event: StreamEvent) => boolean): Promise<StreamEvent>;
  /** Every event passed over or taken so far, for a failure's message. */
  seen: StreamEvent[];
}

/** Opens `GET /api/events?types=…` and resolves once its `ready` event has arrived. */
export async function openEvents(head: RunningHead, types?: string): Promise<EventReader> {
  const drop = new AbortController();
  const path = types === undefined ? "/api/events" : `/api/events?types=${types}`;
  const res = await head.fetch(path, { signal: drop.signal });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  const lines = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const seen: StreamEvent[] = [];
  const nextEvent = async (): Promise<StreamEvent> => {
    for (;;) {
      const end = buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = buffer.slice(0, end).split("\n");
        buffer = buffer.slice(end + 2);
        const event = block.find((line) => line.startsWith("event: "))?.slice(7);
        const data = block.find((line) => line.startsWith("data: "))?.slice(6);
        if (event === undefined || data === undefined) continue; // a keepalive, or `retry:`
        const parsed = { event, data: JSON.parse(data) };
        seen.push(parsed);
        return parsed;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error(`the event stream ended; it sent ${JSON.stringify(seen)}`);
      buffer += value;
    }
  };
  const reader: EventReader = {
    seen,
    async next(matches) {
      for (;;) {
        const event = await nextEvent();
        if (matches(event)) return event;
      }
    },
    async [Symbol.asyncDispose]() {
      drop.abort();
      await lines.cancel().catch(() => {}); // settles whether or not the abort errored it
    },
  };
  await reader.next((e) => e.event === "ready");
  return reader;
}
