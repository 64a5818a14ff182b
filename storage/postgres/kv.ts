/**
 * KvStore on PostgreSQL, with Deno KV's semantics: one row per key in `jobhead_kv`, keys
 * in an order-preserving encoding (key_codec.ts), values serialised as structured clones
 * (`node:v8`), versionstamps from one sequence, and atomic operations committed by one
 * server-side function call (`jobhead_kv_commit`, schema.ts) that locks the keys it
 * checks and writes, so no other commit can slip between a check and the writes.
 */
import { deserialize, serialize } from "node:v8";
import type { KvAtomic, KvStore } from "../kv.ts";
import {
  compareBytes,
  decodeKey,
  encodeKey,
  MAX_READ_KEY_BYTES,
  MAX_WRITE_KEY_BYTES,
  prefixEnd,
  prefixStart,
} from "./key_codec.ts";
import { errorMessage } from "../errors.ts";
import { type Guard, type Sql, sqlState } from "./connection.ts";
import { SUM_ON_NON_U64 } from "./schema.ts";

/** Deno KV's limits, kept the same here so code that works on one works on the other. */
const MAX_VALUE_BYTES = 65_536;
const MAX_CHECKS = 100;
const MAX_MUTATIONS = 1_000;
const MAX_TOTAL_MUTATION_BYTES = 819_200;
const MAX_GET_MANY_KEYS = 10;
const DEFAULT_BATCH_SIZE = 100;
const MAX_BATCH_SIZE = 1_000;

/** How a row's `value` is written: its `kind`. */
const VALUE_V8 = 1;
const VALUE_U64 = 2;
/** Operations of `jobhead_kv_commit`: a set carries its value's kind. */
const OP_DELETE = 3;
const OP_SUM = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Row {
  key: Uint8Array;
  value: Uint8Array;
  kind: number;
  versionstamp: string;
}

/** KvStore on a PostgreSQL database whose schema `migrate()` (schema.ts) has made. */
export class PostgresKv implements KvStore {
  #sql: Sql;
  #guard: Guard;

  constructor(sql: Sql, guard: Guard) {
    this.#sql = sql;
    this.#guard = guard;
  }

  async get<T = unknown>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>> {
    const bytes = readKey(key);
    const rows = await this.#guard.run(() =>
      this.#sql<Row[]>`SELECT key, value, kind, versionstamp::text FROM jobhead_kv
        WHERE key = ${bytes}`
    );
    return rows.length === 0 ? { key, value: null, versionstamp: null } : entryOf<T>(rows[0], key);
  }

  async getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    if (keys.length > MAX_GET_MANY_KEYS) {
      throw new TypeError(`Too many ranges (max ${MAX_GET_MANY_KEYS})`);
    }
    const encoded = keys.map((key) => readKey(key));
    const rows = encoded.length === 0
      ? []
      : await this.#guard.run(() =>
        this.#sql<Row[]>`SELECT key, value, kind, versionstamp::text FROM jobhead_kv
        WHERE key = ANY(${this.#sql.array(encoded as unknown as string[], BYTEA)})`
      );
    const byKey = new Map(rows.map((row) => [hex(row.key), row]));
    return keys.map((key, i) => {
      const row = byKey.get(hex(encoded[i]));
      return row ? entryOf(row, key) : { key, value: null, versionstamp: null };
    }) as { [K in keyof T]: Deno.KvEntryMaybe<T[K]> };
  }

  async set(key: Deno.KvKey, value: unknown): Promise<Deno.KvCommitResult> {
    return await this.atomic().set(key, value).commit() as Deno.KvCommitResult;
  }

  async delete(key: Deno.KvKey): Promise<void> {
    await this.atomic().delete(key).commit();
  }

  async *list<T = unknown>(
    selector: Deno.KvListSelector,
    options: Deno.KvListOptions = {},
  ): AsyncIterableIterator<Deno.KvEntry<T>> {
    if (options.cursor !== undefined) throw new TypeError("List cursors are not supported");
    let [start, end] = rangeOf(selector);
    if (compareBytes(start, end) > 0) throw new TypeError("Start key is greater than end key");
    const reverse = options.reverse ?? false;
    let remaining = options.limit ?? Infinity;
    const batchSize = Math.min(options.batchSize ?? DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE);
    if (batchSize < 1) throw new TypeError("batchSize must be at least 1");
    while (remaining > 0 && compareBytes(start, end) < 0) {
      const n = Math.min(batchSize, remaining);
      const rows = await this.#guard.run(() =>
        reverse
          ? this.#sql<Row[]>`SELECT key, value, kind, versionstamp::text FROM jobhead_kv
              WHERE key >= ${start} AND key < ${end} ORDER BY key DESC LIMIT ${n}`
          : this.#sql<Row[]>`SELECT key, value, kind, versionstamp::text FROM jobhead_kv
              WHERE key >= ${start} AND key < ${end} ORDER BY key LIMIT ${n}`
      );
      for (const row of rows) yield entryOf<T>(row, decodeKey(row.key));
      remaining -= rows.length;
      if (rows.length < n) return;
      const last = new Uint8Array(rows[rows.length - 1].key);
      if (reverse) end = last;
      else start = prefixStart(last); // the first key after it
    }
  }

  atomic(): KvAtomic {
    return new PostgresAtomic(this.#sql, this.#guard);
  }

  close(): void {
    // The connections belong to the PostgresStore, which closes them.
  }
}

const BYTEA = 17;

/** An atomic operation, collected here and committed by one call of `jobhead_kv_commit`. */
class PostgresAtomic implements KvAtomic {
  #sql: Sql;
  #guard: Guard;
  #checks: { key: Uint8Array; versionstamp: string | null }[] = [];
  #ops: { op: number; key: Uint8Array; value: Uint8Array }[] = [];
  #bytes = 0;

  constructor(sql: Sql, guard: Guard) {
    this.#sql = sql;
    this.#guard = guard;
  }

  check(...checks: Deno.AtomicCheck[]): this {
    for (const check of checks) {
      if (check.versionstamp !== null && !/^[0-9a-f]{20}$/.test(check.versionstamp)) {
        throw new TypeError("invalid versionstamp");
      }
      this.#checks.push({ key: writeKey(check.key), versionstamp: check.versionstamp });
    }
    if (this.#checks.length > MAX_CHECKS) {
      throw new TypeError(`Too many checks (max ${MAX_CHECKS})`);
    }
    return this;
  }

  set(key: Deno.KvKey, value: unknown): this {
    if (value instanceof Deno.KvU64) {
      return this.#add(VALUE_U64, key, encoder.encode(String(value.value)));
    }
    const bytes = new Uint8Array(serialize(value));
    if (bytes.length > MAX_VALUE_BYTES) {
      throw new TypeError(`Value too large (max ${MAX_VALUE_BYTES} bytes)`);
    }
    return this.#add(VALUE_V8, key, bytes);
  }

  delete(key: Deno.KvKey): this {
    return this.#add(OP_DELETE, key, new Uint8Array());
  }

  sum(key: Deno.KvKey, n: bigint): this {
    if (typeof n !== "bigint" || n < 0n || n >= 1n << 64n) {
      throw new TypeError("Value must be a 64-bit unsigned integer");
    }
    return this.#add(OP_SUM, key, encoder.encode(String(n)));
  }

  async commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    const checks = this.#checks;
    const ops = this.#ops;
    // Every key checked or written is locked, in one order, so that commits never deadlock.
    const locks = [...new Set([...checks, ...ops].map(({ key }) => lockIdOf(key)))]
      .sort((a, b) => a - b);
    const sql = this.#sql;
    const call = () =>
      sql<{ stamp: string | null }[]>`SELECT jobhead_kv_commit(
        ${sql.array(locks, INT4)},
        ${sql.array(checks.map((c) => c.key) as unknown as string[], BYTEA)},
        ${sql.array(checks.map((c) => stampToBigint(c.versionstamp)) as string[], INT8)},
        ${sql.array(ops.map((o) => o.op), INT2)},
        ${sql.array(ops.map((o) => o.key) as unknown as string[], BYTEA)},
        ${sql.array(ops.map((o) => o.value) as unknown as string[], BYTEA)}
      )::text AS stamp`;
    const rows = await this.#guard.run(call, { retryConflicts: true }).catch((err) => {
      // Raised by the function for a sum on a value that is no KvU64: as Deno KV says it.
      if (sqlState(err) === SUM_ON_NON_U64) throw new TypeError(errorMessage(err));
      throw err;
    });
    const stamp = rows[0].stamp;
    return stamp === null ? { ok: false } : { ok: true, versionstamp: formatStamp(stamp) };
  }

  #add(op: number, key: Deno.KvKey, value: Uint8Array): this {
    const bytes = writeKey(key);
    this.#ops.push({ op, key: bytes, value });
    if (this.#ops.length > MAX_MUTATIONS) {
      throw new TypeError(`Too many mutations (max ${MAX_MUTATIONS})`);
    }
    this.#bytes += bytes.length + value.length;
    if (this.#bytes > MAX_TOTAL_MUTATION_BYTES) {
      throw new TypeError(`Total mutation size too large (max ${MAX_TOTAL_MUTATION_BYTES} bytes)`);
    }
    return this;
  }
}

const INT2 = 21;
const INT4 = 23;
const INT8 = 20;

/** The entry a row holds. */
function entryOf<T>(row: Row, key: Deno.KvKey): Deno.KvEntry<T> {
  const value = row.kind === VALUE_U64
    ? new Deno.KvU64(BigInt(decoder.decode(row.value)))
    : deserialize(row.value);
  return { key, value: value as T, versionstamp: formatStamp(row.versionstamp) };
}

/** A versionstamp as Deno KV writes it: 20 hex digits, from the sequence's number. */
function formatStamp(stamp: string): string {
  return BigInt(stamp).toString(16).padStart(16, "0") + "0000";
}

function stampToBigint(versionstamp: string | null): string | null {
  return versionstamp === null ? null : String(BigInt(`0x${versionstamp.slice(0, 16)}`));
}

function readKey(key: Deno.KvKey): Uint8Array {
  const bytes = encodeKey(key);
  if (bytes.length > MAX_READ_KEY_BYTES) {
    throw new TypeError(`Key too large for read (max ${MAX_READ_KEY_BYTES} bytes)`);
  }
  return bytes;
}

function writeKey(key: Deno.KvKey): Uint8Array {
  if (key.length === 0) throw new TypeError("Key cannot be empty");
  const bytes = encodeKey(key);
  if (bytes.length > MAX_WRITE_KEY_BYTES) {
    throw new TypeError(`Key too large for write (max ${MAX_WRITE_KEY_BYTES} bytes)`);
  }
  return bytes;
}

/** The byte range `[start, end)` a selector names, checked as Deno KV checks it. */
function rangeOf(selector: Deno.KvListSelector): [Uint8Array, Uint8Array] {
  const s = selector as { prefix?: Deno.KvKey; start?: Deno.KvKey; end?: Deno.KvKey };
  if (s.prefix !== undefined) {
    const prefix = readKey(s.prefix);
    const start = s.start === undefined ? prefixStart(prefix) : readKey(s.start);
    const end = s.end === undefined ? prefixEnd(prefix) : readKey(s.end);
    if (s.start !== undefined && !isUnder(start, prefix)) {
      throw new TypeError("Start key is not in the keyspace defined by prefix");
    }
    if (s.end !== undefined && !isUnder(end, prefix)) {
      throw new TypeError("End key is not in the keyspace defined by prefix");
    }
    return [start, end];
  }
  if (s.start === undefined || s.end === undefined) {
    throw new TypeError("Selector must specify either 'prefix' or both 'start' and 'end' key");
  }
  return [readKey(s.start), readKey(s.end)];
}

/** Whether `key` is strictly under `prefix`. */
function isUnder(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.length > prefix.length && compareBytes(key.subarray(0, prefix.length), prefix) === 0;
}

/**
 * The 32-bit id of the advisory lock that guards `key` in a commit (FNV-1a of its bytes):
 * two keys may share one, which only makes their commits wait for each other.
 */
function lockIdOf(key: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of key) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash | 0;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
