/**
 * Job logs: one file per job, appended by the job's own processes (never by the head),
 * read by byte ranges so a large log never has to be loaded whole.
 */
import { join } from "node:path";
import { removeFileIfThere } from "../kit/libc.ts";

/** A byte range of a log, and the log's size when it was read. */
export interface LogChunk {
  bytes: Uint8Array;
  /** Offset of `bytes[0]` in the log. */
  offset: number;
  /** The log's total size in bytes. */
  size: number;
}

/**
 * A byte range of a log whose disk space was given back because the log outgrew its
 * cap. Offsets around it stay valid; it reads as one marker line (`gapMarker`).
 */
export interface LogGap {
  start: number;
  end: number;
}

/** The line a dropped range of a log reads as. */
export function gapMarker(gap: LogGap): string {
  return `\n[jobhead: ${gap.end - gap.start} bytes of this log (bytes ${gap.start}-${gap.end}) ` +
    `were dropped: it outgrew its size cap]\n`;
}

/** Largest range of a log one read answers (API.md: 16 MiB). */
export const MAX_LOG_READ_BYTES = 16 * 1024 * 1024;

/** Which range of a log `readLogRange()` reads. */
export interface LogReadRange {
  /** Where the range starts; negative counts from the end. */
  offset?: number;
  /** Bytes at most; MAX_LOG_READ_BYTES by default and at most. */
  limit?: number;
  /** Without an `offset`, the range ends at the log's end (else it starts at 0). */
  fromEnd?: boolean;
}

/**
 * Reads a range of a log, at most MAX_LOG_READ_BYTES, as whole UTF-8 characters: a range
 * that starts or ends inside a character moves to its edge, so a client paging by the
 * bytes it got never garbles or repeats one.
 */
export async function readLogRange(
  logs: LogStore,
  id: string,
  range: LogReadRange = {},
): Promise<LogChunk> {
  const limit = Math.min(range.limit ?? MAX_LOG_READ_BYTES, MAX_LOG_READ_BYTES);
  const chunk = await logs.read(id, range.offset ?? (range.fromEnd ? -limit : 0), limit);
  return wholeCharacters(chunk);
}

/** A chunk without the parts of characters it cut at either edge (the log's own edges aside). */
export function wholeCharacters(chunk: LogChunk): LogChunk {
  let { bytes, offset } = chunk;
  let skip = 0;
  while (offset > 0 && skip < Math.min(3, bytes.length) && (bytes[skip] & 0xc0) === 0x80) skip++;
  bytes = bytes.subarray(skip);
  offset += skip;
  if (offset + bytes.length < chunk.size) {
    bytes = bytes.subarray(0, utf8Boundary(bytes, bytes.length));
  }
  return { bytes, offset, size: chunk.size };
}

/** The largest length ≤ `limit` that does not end inside a UTF-8 sequence. */
export function utf8Boundary(bytes: Uint8Array, limit: number): number {
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

/** Job log files. */
export interface LogStore {
  /** Path of the job's log file; jobs append to it directly. */
  pathOf(id: string): string;
  /**
   * Creates the job's log file empty, replacing a log an earlier job of the same id left
   * (its record may be gone with a lost store). Only for a job about to start: never for
   * one whose processes run. Makes the logs directory again if it went missing.
   */
  create(id: string): Promise<void>;
  /** The log's size in bytes (0 for a missing log). */
  size(id: string): Promise<number>;
  /**
   * Reads up to `limit` bytes from `offset`; a negative offset counts from the end.
   * A missing log reads as empty.
   */
  read(id: string, offset: number, limit: number): Promise<LogChunk>;
  /** The last `maxChars` characters of the log ("" for a missing or empty log). */
  tail(id: string, maxChars: number): Promise<string>;
  /** Removes the log; safe to repeat. */
  remove(id: string): Promise<void>;
  /** The dropped range of the log, if `trim()` dropped one. */
  gapOf(id: string): LogGap | undefined;
  /**
   * Drops the middle of a log larger than `keepHead + keepTail` bytes, keeping about its
   * first `keepHead` and last `keepTail` bytes, while its writers keep appending.
   * Repeated calls widen the one gap. Returns the gap, if any.
   */
  trim(id: string, keepHead: number, keepTail: number): Promise<LogGap | undefined>;
}

/** Disk blocks are freed whole: gap edges fall on this boundary. */
const BLOCK_BYTES = 4096;

/** Mode of new log files unless told otherwise: their owner only (logs hold what jobs print). */
const LOG_FILE_MODE = 0o600;

/** LogStore on plain files: `<dir>/<id>.log`. */
export class FileLogStore implements LogStore {
  #dir: string;
  #fileMode: number;
  #gaps = new Map<string, LogGap | null>();

  /** `options.fileMode` is the mode of new log files (before the umask), 0600 by default. */
  constructor(dir: string, options: { fileMode?: number } = {}) {
    this.#dir = dir;
    this.#fileMode = options.fileMode ?? LOG_FILE_MODE;
  }

  /** The directory holding the log files. */
  get dir(): string {
    return this.#dir;
  }

  pathOf(id: string): string {
    return join(this.#dir, `${id}.log`);
  }

  create(id: string): Promise<void> {
    // Synchronous: a job waits for these few calls to start, and on a busy machine each
    // call's hop to a worker thread and back takes longer than the call.
    try {
      this.#createNow(id);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #createNow(id: string): void {
    this.#gaps.delete(id);
    removeFileIfThere(this.#gapPath(id));
    const path = this.pathOf(id);
    const create = () =>
      Deno.openSync(path, { write: true, createNew: true, mode: this.#fileMode }).close();
    try {
      create();
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) {
        // Removed rather than emptied: the new file gets this store's mode, not the old one's.
        Deno.removeSync(path);
      } else if (err instanceof Deno.errors.NotFound) {
        // The directory was removed under the running head: make it again, as private.
        Deno.mkdirSync(this.#dir, { recursive: true, mode: dirModeOf(this.#fileMode) });
      } else throw err;
      create();
    }
  }

  size(id: string): Promise<number> {
    // Synchronous, as create(): one stat of a file just written, which every ending job
    // asks twice (its size metric, the log cap), costs less than a hop to a file-system
    // thread and back.
    try {
      return Promise.resolve(Deno.statSync(this.pathOf(id)).size);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return Promise.resolve(0);
      return Promise.reject(err);
    }
  }

  async read(id: string, offset: number, limit: number): Promise<LogChunk> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.pathOf(id), { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        return { bytes: new Uint8Array(), offset: 0, size: 0 };
      }
      throw err;
    }
    using _ = file;
    const size = (await file.stat()).size;
    const start = Math.min(size, offset < 0 ? Math.max(0, size + offset) : offset);
    const length = Math.max(0, Math.min(limit, size - start));
    const bytes = new Uint8Array(length);
    await file.seek(start, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < length) {
      const n = await file.read(bytes.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return { bytes: this.#withGap(id, bytes.subarray(0, filled), start), offset: start, size };
  }

  gapOf(id: string): LogGap | undefined {
    if (!this.#gaps.has(id)) {
      let gap: LogGap | null = null;
      try {
        gap = JSON.parse(Deno.readTextFileSync(this.#gapPath(id)));
      } catch {
        // no gap
      }
      this.#gaps.set(id, gap);
    }
    return this.#gaps.get(id) ?? undefined;
  }

  async trim(id: string, keepHead: number, keepTail: number): Promise<LogGap | undefined> {
    const current = this.gapOf(id);
    const size = await this.size(id);
    const start = current?.start ?? Math.ceil(keepHead / BLOCK_BYTES) * BLOCK_BYTES;
    const end = Math.floor((size - keepTail) / BLOCK_BYTES) * BLOCK_BYTES;
    if (end <= start || end <= (current?.end ?? 0)) return current;
    const gap = { start, end };
    // Recorded before the space is freed: a reader that then sees zeros also sees the gap.
    const tmp = `${this.#gapPath(id)}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(gap));
    await Deno.rename(tmp, this.#gapPath(id));
    this.#gaps.set(id, gap);
    const result = await new Deno.Command("fallocate", {
      args: [
        "--punch-hole",
        "--offset",
        String(start),
        "--length",
        String(end - start),
        this.pathOf(id),
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!result.success) {
      throw new Error(`fallocate failed: ${new TextDecoder().decode(result.stderr).trim()}`);
    }
    return gap;
  }

  #gapPath(id: string): string {
    return join(this.#dir, `${id}.gap`);
  }

  /** `bytes` read at `offset`, with any part inside the gap replaced by its marker line. */
  #withGap(id: string, bytes: Uint8Array, offset: number): Uint8Array {
    const gap = this.gapOf(id);
    const end = offset + bytes.length;
    if (!gap || end <= gap.start || offset >= gap.end || bytes.length === 0) return bytes;
    const before = bytes.subarray(0, Math.max(0, gap.start - offset));
    const after = bytes.subarray(Math.max(0, Math.min(bytes.length, gap.end - offset)));
    const marker = new TextEncoder().encode(gapMarker(gap));
    const out = new Uint8Array(before.length + marker.length + after.length);
    out.set(before);
    out.set(marker, before.length);
    out.set(after, before.length + marker.length);
    return out;
  }

  async tail(id: string, maxChars: number): Promise<string> {
    // A character is at most 4 bytes in UTF-8; decode a little more and cut by characters.
    const chunk = await this.read(id, -maxChars * 4, maxChars * 4);
    const text = new TextDecoder().decode(chunk.bytes);
    const chars = Array.from(text);
    return chars.length > maxChars ? chars.slice(chars.length - maxChars).join("") : text;
  }

  async remove(id: string): Promise<void> {
    this.#gaps.delete(id);
    for (const path of [this.pathOf(id), this.#gapPath(id)]) {
      await Deno.remove(path).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
  }
}

/** The mode of a directory whose files get `fileMode`: search rights where read rights are. */
function dirModeOf(fileMode: number): number {
  return fileMode | ((fileMode & 0o444) >> 2);
}

/** A log file opened for reading, or undefined while it does not exist (yet). */
export async function openLogFile(path: string): Promise<Deno.FsFile | undefined> {
  try {
    return await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
