/**
 * The store's schema in PostgreSQL, created and migrated on start: `MIGRATIONS[i]` takes
 * the schema from version i to i + 1. They run in one transaction under an advisory lock,
 * so processes starting together migrate once; the version is kept in `jobhead_meta`.
 * A store whose version is newer than this build's is refused, and so is a store created
 * for another cluster: it keeps a salted fingerprint of the cluster token it was made with.
 */
import type { Sql } from "./connection.ts";

/** The schema version this build writes. */
export const SCHEMA_VERSION = 1;

/** The advisory lock (two-int form) that start-up migrations take. */
const MIGRATION_LOCK: [number, number] = [0x6a6f6268, 1];
/** The class id of the advisory locks kv.ts takes per key; the other int is the key's hash. */
export const KV_LOCK_CLASS = 0x6a6f6268 + 2;

/** The SQLSTATE `jobhead_kv_commit` raises for a sum on a value that is no KvU64. */
export const SUM_ON_NON_U64 = "JHKV1";

const MIGRATIONS: string[] = [
  // 0 → 1: the key-value table, its commit function, and the package tables.
  `
  CREATE TABLE jobhead_kv (
    key bytea PRIMARY KEY,
    value bytea NOT NULL,
    kind smallint NOT NULL,
    versionstamp bigint NOT NULL
  );
  CREATE SEQUENCE jobhead_versionstamp;
  CREATE FUNCTION jobhead_kv_commit(
    lock_ids int[], check_keys bytea[], check_stamps bigint[],
    ops smallint[], op_keys bytea[], op_values bytea[]
  ) RETURNS bigint LANGUAGE plpgsql AS $$
  DECLARE
    id int;
    i int;
    found_stamp bigint;
    stamp bigint;
    old_kind smallint;
    old_value bytea;
    total numeric;
  BEGIN
    FOREACH id IN ARRAY lock_ids LOOP
      PERFORM pg_advisory_xact_lock(${KV_LOCK_CLASS}, id);
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(check_keys, 1), 0) LOOP
      SELECT versionstamp INTO found_stamp FROM jobhead_kv WHERE key = check_keys[i];
      IF NOT FOUND THEN found_stamp := NULL; END IF;
      IF found_stamp IS DISTINCT FROM check_stamps[i] THEN RETURN NULL; END IF;
    END LOOP;
    stamp := nextval('jobhead_versionstamp');
    FOR i IN 1 .. coalesce(array_length(ops, 1), 0) LOOP
      IF ops[i] = 3 THEN
        DELETE FROM jobhead_kv WHERE key = op_keys[i];
      ELSIF ops[i] = 4 THEN
        SELECT kind, value INTO old_kind, old_value FROM jobhead_kv WHERE key = op_keys[i];
        IF FOUND AND old_kind <> 2 THEN
          RAISE EXCEPTION 'Failed to perform ''sum'' mutation on a non-U64 value in the database'
            USING ERRCODE = '${SUM_ON_NON_U64}';
        END IF;
        IF NOT FOUND THEN old_value := NULL; END IF;
        total := (coalesce(convert_from(old_value, 'UTF8')::numeric, 0)
          + convert_from(op_values[i], 'UTF8')::numeric) % 18446744073709551616;
        INSERT INTO jobhead_kv (key, value, kind, versionstamp)
          VALUES (op_keys[i], convert_to(total::text, 'UTF8'), 2, stamp)
          ON CONFLICT (key) DO UPDATE SET value = excluded.value, kind = 2, versionstamp = stamp;
      ELSE
        INSERT INTO jobhead_kv (key, value, kind, versionstamp)
          VALUES (op_keys[i], op_values[i], ops[i], stamp)
          ON CONFLICT (key) DO UPDATE
          SET value = excluded.value, kind = excluded.kind, versionstamp = excluded.versionstamp;
      END IF;
    END LOOP;
    RETURN stamp;
  END $$;
  CREATE TABLE jobhead_packages (
    protocol text NOT NULL,
    name text NOT NULL,
    content uuid NOT NULL,
    size bigint NOT NULL,
    uploaded_at bigint NOT NULL,
    last_used bigint NOT NULL,
    PRIMARY KEY (protocol, name)
  );
  CREATE TABLE jobhead_package_chunks (
    content uuid NOT NULL,
    seq int NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (content, seq)
  );
  `,
];

/** A store this process must not use; its message names the store and why, in one line. */
export class StoreRefusedError extends Error {
  override name = "StoreRefusedError";
}

/**
 * Creates or migrates the schema, and checks (or, for a new store, records) the cluster
 * token's fingerprint. Throws StoreRefusedError for a newer schema or another cluster's
 * store; `name` names the store in messages.
 */
export async function migrate(sql: Sql, name: string, token: string | undefined): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK[0]}, ${MIGRATION_LOCK[1]})`;
    await tx`CREATE TABLE IF NOT EXISTS jobhead_meta (name text PRIMARY KEY, value text NOT NULL)`;
    const meta = new Map(
      (await tx<{ name: string; value: string }[]>`SELECT name, value FROM jobhead_meta`)
        .map((row) => [row.name, row.value]),
    );
    const version = Number(meta.get("schema_version") ?? 0);
    if (version > SCHEMA_VERSION) {
      throw new StoreRefusedError(
        `the store ${name} has schema version ${version}, newer than this jobhead's ` +
          `(${SCHEMA_VERSION}): upgrade jobhead`,
      );
    }
    const fingerprint = meta.get("cluster_fingerprint");
    if (fingerprint === undefined) {
      await tx`INSERT INTO jobhead_meta (name, value)
        VALUES ('cluster_fingerprint', ${await fingerprintOf(token)})`;
    } else if (!await matches(fingerprint, token)) {
      throw new StoreRefusedError(
        `the store ${name} belongs to another cluster: it was created with ` +
          `${fingerprint === NO_TOKEN ? "no token" : "another token"}, and this process has ` +
          `${
            token === undefined ? "none" : "another"
          } (give every head and node the cluster's token)`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) await tx.unsafe(MIGRATIONS[v]);
    if (version < SCHEMA_VERSION) {
      await tx`INSERT INTO jobhead_meta (name, value) VALUES ('schema_version', ${SCHEMA_VERSION})
        ON CONFLICT (name) DO UPDATE SET value = excluded.value`;
    }
  });
}

/** The fingerprint of a store made without a token. */
const NO_TOKEN = "none";

/** `sha256:<salt>:<hash>` of a token with a fresh salt; `none` without a token. */
async function fingerprintOf(token: string | undefined, salt?: string): Promise<string> {
  if (token === undefined) return NO_TOKEN;
  salt ??= hex(crypto.getRandomValues(new Uint8Array(16)));
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`${salt}:${token}`),
  );
  return `sha256:${salt}:${hex(new Uint8Array(digest))}`;
}

async function matches(fingerprint: string, token: string | undefined): Promise<boolean> {
  if (fingerprint === NO_TOKEN || token === undefined) return fingerprint === NO_TOKEN && !token;
  const [, salt] = fingerprint.split(":");
  return await fingerprintOf(token, salt) === fingerprint;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
