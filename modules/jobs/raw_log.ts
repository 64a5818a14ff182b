/**
 * `GET /api/jobs/{id}/logs/raw` (API.md): a log's bytes exactly as the job wrote them,
 * streamed from the file, with single HTTP byte ranges (RFC 9110, "Range").
 */

/** A byte range to send: `start` to `end`, both inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Bytes read from the log file per chunk of the answer. */
const CHUNK_BYTES = 64 * 1024;

/**
 * What a `Range` header asks of a `size`-byte log: one range, `"unsatisfiable"` (answer
 * 416), or `undefined` for the whole log (no header, another unit, several ranges or a
 * header that does not parse: RFC 9110 lets a server ignore those).
 */
export function byteRange(
  header: string | undefined,
  size: number,
): ByteRange | "unsatisfiable" | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? "");
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  const [first, last] = [match[1], match[2]];
  if (first === "") {
    // A suffix: the last N bytes.
    const length = Number(last);
    if (length === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  if (last !== "" && Number(last) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end: last === "" ? size - 1 : Math.min(Number(last), size - 1) };
}

/**
 * The answer for the log file at `path` and the request's `Range` header. A missing file
 * is an empty log. The length is fixed when the answer starts: bytes a running job
 * appends later are not part of it. A capped log's dropped range is what the file
 * holds there: zeros (see `X-Jobhead-Log-Gap`, set by the caller).
 */
export async function rawLogResponse(
  path: string,
  rangeHeader: string | undefined,
  headers: Record<string, string> = {},
): Promise<Response> {
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const size = file ? (await file.stat()).size : 0;
  const common = {
    ...headers,
    "content-type": "text/plain; charset=utf-8",
    "accept-ranges": "bytes",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  };
  const range = byteRange(rangeHeader, size);
  if (range === "unsatisfiable") {
    file?.close();
    return new Response(null, {
      status: 416,
      headers: { ...common, "content-range": `bytes */${size}` },
    });
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  const length = end - start + 1;
  const status = range ? 206 : 200;
  const rangeHeaders: Record<string, string> = range
    ? { "content-range": `bytes ${start}-${end}/${size}` }
    : {};
  if (!file || length <= 0) {
    file?.close();
    return new Response(new Uint8Array(), {
      status,
      headers: { ...common, ...rangeHeaders, "content-length": "0" },
    });
  }
  return new Response(fileStream(file, start, length), {
    status,
    headers: { ...common, ...rangeHeaders, "content-length": String(length) },
  });
}

/** `length` bytes of `file` from `start`, a chunk at a time as the client takes them; closes the file. */
function fileStream(file: Deno.FsFile, start: number, length: number): ReadableStream<Uint8Array> {
  let left = length;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    file.close();
  };
  return new ReadableStream<Uint8Array>({
    async start() {
      await file.seek(start, Deno.SeekMode.Start);
    },
    async pull(controller) {
      const buffer = new Uint8Array(Math.min(CHUNK_BYTES, left));
      const n = await file.read(buffer);
      if (n === null) {
        // The file shrank (the job was deleted meanwhile): end with what was sent.
        close();
        controller.error(new Error("log file ended early"));
        return;
      }
      left -= n;
      controller.enqueue(buffer.subarray(0, n));
      if (left === 0) {
        close();
        controller.close();
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}
