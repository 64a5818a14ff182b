/**
 * The whole-log answer of `GET /api/jobs/{id}/logs` (API.md): `{"logs": "<the whole log>"}`
 * and no other key, as Ray's head answers, streamed so that a log of any size costs the
 * head one chunk of memory at a time.
 */
import { gapMarker, type LogStore } from "../../storage/logs.ts";

/** Bytes read from the log file per chunk of the answer. */
const CHUNK_BYTES = 256 * 1024;

/**
 * The JSON body `{"logs": …}` of job `id`'s log as it is when the stream starts: read
 * chunk by chunk as the client takes them, escaped chunk by chunk (a character cut
 * between chunks is decoded whole), the dropped range of a capped log as its marker line.
 */
export function wholeLogJson(
  logs: LogStore,
  id: string,
  options: { chunkBytes?: number } = {},
): ReadableStream<Uint8Array> {
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  /** Byte ranges still to send, in order; a range of `marker` is the dropped part. */
  let ranges: { start: number; end: number; marker?: string }[] | undefined;
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      const size = await logs.size(id);
      const gap = logs.gapOf(id);
      ranges = gap && gap.start < size
        ? [
          { start: 0, end: gap.start },
          { start: gap.start, end: gap.end, marker: gapMarker(gap) },
          { start: gap.end, end: size },
        ]
        : [{ start: 0, end: size }];
      controller.enqueue(encoder.encode('{"logs":"'));
    },
    async pull(controller) {
      const range = ranges!.find((r) => r.start < r.end);
      if (!range) {
        controller.enqueue(encoder.encode(escape(decoder.decode()) + '"}'));
        controller.close();
        return;
      }
      let text: string;
      if (range.marker !== undefined) {
        text = decoder.decode() + range.marker;
        range.start = range.end;
      } else {
        const chunk = await logs.read(
          id,
          range.start,
          Math.min(chunkBytes, range.end - range.start),
        );
        if (chunk.bytes.length === 0) {
          // The log shrank or vanished (deleted meanwhile): end the answer with what was sent.
          range.start = range.end;
          text = "";
        } else {
          range.start += chunk.bytes.length;
          text = decoder.decode(chunk.bytes, { stream: true });
        }
      }
      controller.enqueue(encoder.encode(escape(text)));
    },
  }, { highWaterMark: 0 });
}

/** `text` as the inside of a JSON string literal. */
function escape(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
