/**
 * The key-value API every store and module writes through: the part of Deno KV that
 * jobhead uses. `Deno.Kv` satisfies it as it is; other backends (PostgreSQL) implement
 * it with the same semantics: ordered keys, versionstamps, and atomic operations whose
 * checks and mutations commit together or not at all.
 */
export interface KvStore {
  /** The entry at `key`; its `value` and `versionstamp` are null when there is none. */
  get<T = unknown>(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<T>>;
  /** The entries at `keys`, in the same order (at most 10 keys). */
  getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }>;
  /** Writes `value` at `key`, giving it a new versionstamp. */
  set(key: Deno.KvKey, value: unknown): Promise<Deno.KvCommitResult>;
  /** Removes `key`; a missing key is no error. */
  delete(key: Deno.KvKey): Promise<void>;
  /** The entries a selector names, in key order (reversed on request). */
  list<T = unknown>(
    selector: Deno.KvListSelector,
    options?: Deno.KvListOptions,
  ): AsyncIterable<Deno.KvEntry<T>>;
  /** An atomic operation: checks, then sets and deletes, committed as one. */
  atomic(): KvAtomic;
  /** Closes the store; pending work fails. */
  close(): void;
}

/** An atomic operation of a `KvStore`. */
export interface KvAtomic {
  /** Fails the commit unless each key still has the given versionstamp (null: absent). */
  check(...checks: Deno.AtomicCheck[]): this;
  set(key: Deno.KvKey, value: unknown): this;
  delete(key: Deno.KvKey): this;
  /** Adds `n` to the `Deno.KvU64` at `key` (absent: 0), wrapping at 2^64. */
  sum(key: Deno.KvKey, n: bigint): this;
  /** `{ok: true, versionstamp}`, or `{ok: false}` when a check failed (nothing written). */
  commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError>;
}
