/**
 * Lines of a log file for the dashboard's log view: which line a byte offset is on,
 * where a line starts, and a search over the whole file. A log is read from its file
 * in chunks (never whole); the newline counts of its first megabytes are remembered per
 * job, so that numbering a line near the end of a long log reads only its last chunk.
 */
import { openLogFile } from "../../storage/logs.ts";

/** Bytes read from the file at a time, and the spacing of remembered newline counts. */
const STEP_BYTES = 1 << 20;
/** Logs whose newline counts are remembered; the least recently used is forgotten. */
const MAX_INDEXED_LOGS = 64;
/** Bytes one search request scans at most; it then answers where to go on. */
export const SEARCH_WINDOW_BYTES = 16 << 20;
/** Matching lines one search answer holds at most. */
export const MAX_SEARCH_MATCHES = 1000;

/** A line that matched a search: its number (from 0) and the offset of its first byte. */
export interface LineMatch {
  line: number;
  offset: number;
}

/** One search request's answer; `next` is where the following request goes on, or null at the log's edge. */
export interface SearchResult {
  matches: LineMatch[];
  next: number | null;
  size: number;
}

/** Bytes as a string of one character per byte (windows-1252), so indexes are offsets. */
const BYTES_AS_TEXT = new TextDecoder("windows-1252");

interface Index {
  /** `counts[k]`: newlines in the first `k * STEP_BYTES` bytes. */
  counts: number[];
  /** The log's dropped range's end when counted: freeing it turns counted newlines into zeros. */
  gapEnd: number;
}

/** Line numbers and search over job logs; one per head. */
export class LogLines {
  #indexes = new Map<string, Index>();

  /**
   * Newlines in the first `offset` bytes of the file at `path`, i.e. the number (from 0)
   * of the line byte `offset` is on. `key` names the log; `gapEnd` is its dropped range's end (0: none).
   */
  async lineAt(key: string, path: string, offset: number, gapEnd = 0): Promise<number> {
    using file = await openLogFile(path);
    if (!file) return 0;
    const { size, index } = await this.#indexOf(key, file, gapEnd);
    offset = Math.max(0, Math.min(offset, size));
    const whole = Math.floor(offset / STEP_BYTES);
    while (index.counts.length <= whole) {
      const k = index.counts.length - 1;
      const bytes = await readAt(file, k * STEP_BYTES, STEP_BYTES);
      index.counts.push(index.counts[k] + countNewlines(bytes, bytes.length));
    }
    const rest = await readAt(file, whole * STEP_BYTES, offset - whole * STEP_BYTES);
    return index.counts[whole] + countNewlines(rest, rest.length);
  }

  /**
   * The offset of the first byte of line `line` (from 0) in the file at `path`, or of
   * its last line when it has fewer.
   */
  async offsetOf(key: string, path: string, line: number, gapEnd = 0): Promise<number> {
    using file = await openLogFile(path);
    if (!file) return 0;
    const { size, index } = await this.#indexOf(key, file, gapEnd);
    // Skip whole remembered steps that end before the line, then scan.
    let k = 0;
    while (k + 1 < index.counts.length && index.counts[k + 1] < line) k++;
    let seen = index.counts[k];
    let lastStart = 0;
    for (let at = k * STEP_BYTES; at < size; at += STEP_BYTES) {
      const bytes = await readAt(file, at, STEP_BYTES);
      for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) {
        seen++;
        if (at + i + 1 < size) lastStart = at + i + 1;
        if (seen === line) return at + i + 1;
      }
    }
    return line <= 0 ? 0 : lastStart;
  }

  /**
   * Lines holding `query` (ASCII letters match either case; bytes, so escape sequences
   * inside the text count), scanning at most SEARCH_WINDOW_BYTES from `from`: forwards
   * (occurrences starting at or after `from`, in order) or backwards (occurrences starting
   * before `from`, nearest first). Each line is reported once.
   */
  async search(
    key: string,
    path: string,
    query: string,
    options: { from: number; backward?: boolean; gapEnd?: number },
  ): Promise<SearchResult> {
    using file = await openLogFile(path);
    const size = file ? (await file.stat()).size : 0;
    if (!file || size === 0) return { matches: [], next: null, size };
    const needle = BYTES_AS_TEXT.decode(new TextEncoder().encode(query)).toLowerCase();
    const from = Math.max(0, Math.min(options.from, size));
    const start = options.backward ? Math.max(0, from - SEARCH_WINDOW_BYTES) : from;
    const end = options.backward ? from : Math.min(size, from + SEARCH_WINDOW_BYTES);
    // An occurrence that starts before `end` may run on past it.
    const bytes = await readAt(file, start, end - start + needle.length - 1);
    const text = BYTES_AS_TEXT.decode(bytes).toLowerCase();
    let line = await this.lineAt(key, path, start, options.gapEnd);
    let lineStart = -1; // index in `text` of the current line's start; -1: before `start`
    let scanned = 0; // newlines in `text` before this index are counted
    const matches: LineMatch[] = [];
    let next: number | null = options.backward
      ? (start > 0 ? start : null)
      : (end < size ? end : null);
    for (let i = text.indexOf(needle); i !== -1 && i < end - start;) {
      for (
        let nl = text.indexOf("\n", scanned);
        nl !== -1 && nl < i;
        nl = text.indexOf("\n", scanned)
      ) {
        line++;
        lineStart = nl + 1;
        scanned = nl + 1;
      }
      scanned = i;
      const offset = lineStart === -1 ? await lineStartBefore(file, start) : start + lineStart;
      matches.push({ line, offset });
      const lineEnd = text.indexOf("\n", i);
      if (lineEnd === -1) break;
      if (!options.backward && matches.length === MAX_SEARCH_MATCHES) {
        next = start + lineEnd + 1 < size ? start + lineEnd + 1 : null;
        break;
      }
      i = text.indexOf(needle, lineEnd + 1);
    }
    if (options.backward) {
      matches.reverse();
      if (matches.length > MAX_SEARCH_MATCHES) {
        matches.length = MAX_SEARCH_MATCHES;
        next = matches[matches.length - 1].offset;
      }
    }
    return { matches, next, size };
  }

  /** The file's size and its remembered counts; a file replaced under the same key starts anew. */
  async #indexOf(key: string, file: Deno.FsFile, gapEnd: number) {
    const info = await file.stat();
    const index = this.#index(`${key}:${info.ino}:${info.birthtime?.getTime()}`, gapEnd);
    return { size: info.size, index };
  }

  #index(key: string, gapEnd: number): Index {
    let index = this.#indexes.get(key);
    this.#indexes.delete(key);
    if (!index || index.gapEnd !== gapEnd) index = { counts: [0], gapEnd };
    this.#indexes.set(key, index); // now the most recently used
    if (this.#indexes.size > MAX_INDEXED_LOGS) {
      this.#indexes.delete(this.#indexes.keys().next().value!);
    }
    return index;
  }
}

/** The offset of the first byte of the line `offset` is on. */
async function lineStartBefore(file: Deno.FsFile, offset: number): Promise<number> {
  for (let at = offset; at > 0;) {
    const from = Math.max(0, at - STEP_BYTES);
    const bytes = await readAt(file, from, at - from);
    const nl = bytes.lastIndexOf(10);
    if (nl !== -1) return from + nl + 1;
    at = from;
  }
  return 0;
}

/** Up to `length` bytes of `file` from `offset` (fewer at its end). */
async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(Math.max(0, length));
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < bytes.length) {
    const n = await file.read(bytes.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return bytes.subarray(0, filled);
}

/**
 * Newlines in the first `length` bytes of `bytes`, four bytes at a time: a word with no
 * newline is skipped by one test (a word with a zero byte after XOR with `\n\n\n\n`
 * may hold one; each of its bytes is then checked).
 */
function countNewlines(bytes: Uint8Array, length: number): number {
  let n = 0;
  let i = 0;
  for (; i < length && (bytes.byteOffset + i) % 4 !== 0; i++) if (bytes[i] === 10) n++;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, (length - i) >> 2);
  for (let w = 0; w < words.length; w++) {
    const x = words[w] ^ 0x0a0a0a0a;
    if (((x - 0x01010101) & ~x & 0x80808080) === 0) continue;
    if ((x & 0xff) === 0) n++;
    if ((x & 0xff00) === 0) n++;
    if ((x & 0xff0000) === 0) n++;
    if ((x >>> 24) === 0) n++;
  }
  for (i += words.length * 4; i < length; i++) if (bytes[i] === 10) n++;
  return n;
}
