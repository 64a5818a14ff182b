/**
 * The PostgreSQL store (`--store postgres://…`): the KvStore every store and module writes
 * through, LISTEN/NOTIFY for wake-ups between processes, and the client itself for tables
 * of their own. Opening it creates or migrates the schema (schema.ts) and refuses, with one
 * line naming the store (password masked), a URL that is not PostgreSQL's, a server that
 * cannot be reached or refuses the password, a newer schema, or another cluster's store.
 *
 * @example
 * ```ts
 * const store = await openPostgresStore("postgres://jobhead@db:5432/jobhead", { token });
 * await store.kv.set(["greeting"], "hello");
 * await store.close();
 * ```
 * @module
 */
import postgres from "postgres";
import { setTimeout as delay } from "node:timers/promises";
import { join } from "node:path";
import { errorMessage } from "../errors.ts";
import type { KvStore } from "../kv.ts";
import { Guard, isUnreachable, maskUrl, type Sql, sqlState } from "./connection.ts";
import { PostgresKv } from "./kv.ts";
import { type PackageCacheOptions, PostgresPackageStore } from "./packages.ts";
import type { PackageStore } from "../packages.ts";
import { migrate, StoreRefusedError } from "./schema.ts";

export { maskUrl, type Sql } from "./connection.ts";
export { SCHEMA_VERSION, StoreRefusedError } from "./schema.ts";
export type { PackageCacheOptions } from "./packages.ts";

/** Options of `openPostgresStore`. */
export interface PostgresStoreOptions {
  /** The password, when the URL has none; the URL's wins. */
  password?: string;
  /** The cluster token: a new store records its fingerprint, an existing one must match it. */
  token?: string;
  /** Connections in the pool at most (LISTEN takes one more); 10 when absent. */
  maxConnections?: number;
  /**
   * Where this process keeps its copies of packages and their extractions (the data
   * directory's `packages/`), and their limits. Absent: a directory in the temp
   * directory, made only if a package is used.
   */
  packages?: PackageCacheOptions;
  /** Hears when the server goes away (`available` false, and why) and when it is back. */
  onAvailability?: (available: boolean, reason: string) => void;
}

/** An open PostgreSQL store. */
export interface PostgresStore {
  /** The key-value API, with Deno KV's semantics. */
  kv: KvStore;
  /** Uploaded packages, kept in the store; extracted into this process's own cache. */
  packages: PackageStore;
  /**
   * Calls `onPayload` with each notification on `channel` from any process of the store,
   * this one included, and `onListen` each time the subscription is made: first, and
   * again after a lost connection came back (notifications sent while it was away are
   * lost: `onListen` is the moment to look again).
   */
  listen(
    channel: string,
    onPayload: (payload: string) => void,
    onListen?: () => void,
  ): Promise<{ unlisten(): Promise<void> }>;
  /** Sends `payload` (under 8000 bytes) to every listener of `channel`, when the caller's transaction (if any) commits. */
  notify(channel: string, payload: string): Promise<void>;
  /** The client, for tables and advisory locks of the store's users. */
  sql: Sql;
  /** The store as messages name it: its URL with the password masked. */
  name: string;
  /** Whether the server answered the last call. */
  readonly available: boolean;
  /** Closes every connection; calls under way fail. */
  close(): Promise<void>;
}

/** Longest NOTIFY payload PostgreSQL takes, in bytes (its limit is 8000 including the end). */
const MAX_PAYLOAD_BYTES = 7_999;
const CONNECT_TIMEOUT_S = 10;
const CLOSE_SETTLE_MS = 20;

/**
 * Opens the store at `url` (`postgres://user[:password]@host[:port]/database`). Throws
 * StoreRefusedError, with a one-line message naming the store, when it cannot be used.
 */
export async function openPostgresStore(
  url: string,
  options: PostgresStoreOptions = {},
): Promise<PostgresStore> {
  const name = maskUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StoreRefusedError(
      `the store ${name} is not a valid URL: expected kv or postgres://user@host:port/database`,
    );
  }
  if (!["postgres:", "postgresql:"].includes(parsed.protocol) || !parsed.hostname) {
    throw new StoreRefusedError(
      `the store ${name} is not a PostgreSQL URL: expected kv or postgres://user@host:port/database`,
    );
  }
  const user = decodeURIComponent(parsed.username) || "postgres";
  const sql = postgres(url, {
    password: parsed.password ? decodeURIComponent(parsed.password) : options.password,
    max: options.maxConnections ?? 10,
    connect_timeout: CONNECT_TIMEOUT_S,
    max_lifetime: 0, // connections live as long as the store: no recycling timers
    onnotice: () => {},
    connection: { application_name: "jobhead" },
  });
  const guard = new Guard(name, options.onAvailability);
  try {
    await migrate(sql, name, options.token);
  } catch (err) {
    await sql.end({ timeout: 0 }).catch(() => {});
    // A refused connection's socket closes (and its timers stop) a moment after the error.
    await delay(CLOSE_SETTLE_MS);
    throw refusal(err, name, user, parsed.pathname.slice(1));
  }
  return {
    kv: new PostgresKv(sql, guard),
    packages: new PostgresPackageStore(
      sql,
      guard,
      options.packages ?? {
        dir: join(Deno.env.get("TMPDIR") || "/tmp", `jobhead-packages-${crypto.randomUUID()}`),
      },
    ),
    sql,
    name,
    get available() {
      return guard.available;
    },
    async listen(channel, onPayload, onListen) {
      const subscription = await guard.run(() => sql.listen(channel, onPayload, onListen));
      return { unlisten: () => subscription.unlisten() };
    },
    async notify(channel, payload) {
      if (new TextEncoder().encode(payload).length > MAX_PAYLOAD_BYTES) {
        throw new TypeError(`Notification payload too large (max ${MAX_PAYLOAD_BYTES} bytes)`);
      }
      await guard.run(() => sql.notify(channel, payload));
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}

/** Why the store at `name` cannot be opened, as one line. */
function refusal(err: unknown, name: string, user: string, database: string): Error {
  if (err instanceof StoreRefusedError) return err;
  const message = errorMessage(err).replace(/\s+/g, " ");
  if (isUnreachable(err)) {
    return new StoreRefusedError(`cannot reach the store ${name}: ${message}`);
  }
  switch (sqlState(err)) {
    case "28P01":
      return new StoreRefusedError(`the store ${name} refused the password of user "${user}"`);
    case "28000":
      return new StoreRefusedError(`the store ${name} refused user "${user}": ${message}`);
    case "3D000":
      return new StoreRefusedError(`the store ${name} has no database "${database}"`);
  }
  return new StoreRefusedError(`cannot open the store ${name}: ${message}`);
}
