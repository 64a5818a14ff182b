/**
 * Job logs: one file per job, appended by the job's own processes (never by the head),
 * read by byte ranges so a large log never has to be loaded whole.
 */
import { join } from "node:path";

/** A byte range of a log, and the log's size when it was read. */
export interface LogChunk {
  bytes: Uint8Array;
  /** Offset of `bytes[0]` in the log. */
  offset: number;
  /** The log's total size in bytes. */
  size: number;
}

/** Job log files. */
export interface LogStore {
  /** Path of the job's log file; jobs append to it directly. */
  pathOf(id: string): string;
  /** Creates the job's log file, empty, if it does not exist. */
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
}

/** LogStore on plain files: `<dir>/<id>.log`. */
export class FileLogStore implements LogStore {
  #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The directory holding the log files. */
  get dir(): string {
    return this.#dir;
  }

  pathOf(id: string): string {
    return join(this.#dir, `${id}.log`);
  }

  async create(id: string): Promise<void> {
    const file = await Deno.open(this.pathOf(id), { append: true, create: true });
    file.close();
  }

  async size(id: string): Promise<number> {
    try {
      return (await Deno.stat(this.pathOf(id))).size;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return 0;
      throw err;
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
    return { bytes: bytes.subarray(0, filled), offset: start, size };
  }

  async tail(id: string, maxChars: number): Promise<string> {
    // A character is at most 4 bytes in UTF-8; decode a little more and cut by characters.
    const chunk = await this.read(id, -maxChars * 4, maxChars * 4);
    const text = new TextDecoder().decode(chunk.bytes);
    const chars = Array.from(text);
    return chars.length > maxChars ? chars.slice(chars.length - maxChars).join("") : text;
  }

  async remove(id: string): Promise<void> {
    await Deno.remove(this.pathOf(id)).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
}
