/**
 * The package store in PostgreSQL: each package's zip is kept in `jobhead_package_chunks`
 * (1 MiB rows) under a content id that `jobhead_packages` names, so any head takes an
 * upload and any process can fetch it. An upload or a delete is one transaction: readers
 * see the old content or the new, whole. Each process keeps, in a FilePackageStore of its
 * own (its data directory's `packages/`), a copy of each zip it used and that copy's one
 * shared extraction; a copy whose content is not the stored one any more is fetched again.
 */
import { NotFoundError } from "../errors.ts";
import { type PackageRef, packageUri } from "../package_uri.ts";
import {
  FilePackageStore,
  type PackageStore,
  type PackageStoreOptions,
  type StoredPackage,
} from "../packages.ts";
import type { Guard, Sql } from "./connection.ts";

/** Bytes in one row of `jobhead_package_chunks`. */
export const CHUNK_BYTES = 1 << 20;

/** Options of the package store: where this process keeps its copies, and their limits. */
export interface PackageCacheOptions extends PackageStoreOptions {
  /** The directory of this process's copies and extractions. */
  dir: string;
}

/** PackageStore on PostgreSQL, as described at the top of this file. */
export class PostgresPackageStore implements PackageStore {
  #sql: Sql;
  #guard: Guard;
  #local: FilePackageStore;
  /** The content id of each local copy this process fetched or uploaded, by package URI. */
  #localContent = new Map<string, string>();
  /** Fetches under way, by package URI and content id: callers share one. */
  #fetching = new Map<string, Promise<void>>();
  /** Per package URI, the last upload or fetch this process started: they run one at a time. */
  #turns = new Map<string, Promise<unknown>>();

  constructor(sql: Sql, guard: Guard, options: PackageCacheOptions) {
    this.#sql = sql;
    this.#guard = guard;
    this.#local = new FilePackageStore(options.dir, options);
  }

  async size(ref: PackageRef): Promise<number | undefined> {
    const row = await this.#row(ref);
    return row?.size;
  }

  put(ref: PackageRef, body: ReadableStream<Uint8Array>): Promise<number> {
    // Checked (and kept) locally first, then stored in one transaction.
    return this.#inTurn(ref, async () => {
      const size = await this.#local.put(ref, body);
      this.#localContent.delete(packageUri(ref));
      const content = crypto.randomUUID();
      await this.#guard.run(() =>
        this.#sql.begin(async (tx) => {
          using file = await Deno.open(this.#local.zipPath(ref));
          const buffer = new Uint8Array(CHUNK_BYTES);
          for (let seq = 0;; seq++) {
            const chunk = await readFull(file, buffer);
            if (chunk.length === 0 && seq > 0) break;
            await tx`INSERT INTO jobhead_package_chunks (content, seq, data)
              VALUES (${content}, ${seq}, ${chunk})`;
            if (chunk.length < CHUNK_BYTES) break;
          }
          const now = Date.now();
          const [old] = await tx<{ content: string }[]>`
            SELECT content FROM jobhead_packages
            WHERE protocol = ${ref.protocol} AND name = ${ref.name} FOR UPDATE`;
          await tx`INSERT INTO jobhead_packages
              (protocol, name, content, size, uploaded_at, last_used)
            VALUES (${ref.protocol}, ${ref.name}, ${content}, ${size}, ${now}, ${now})
            ON CONFLICT (protocol, name) DO UPDATE SET content = excluded.content,
              size = excluded.size, uploaded_at = excluded.uploaded_at,
              last_used = excluded.last_used`;
          if (old) await tx`DELETE FROM jobhead_package_chunks WHERE content = ${old.content}`;
        })
      );
      this.#localContent.set(packageUri(ref), content);
      return size;
    });
  }

  async extract(ref: PackageRef): Promise<string> {
    await this.#fetch(ref);
    return await this.#local.extract(ref);
  }

  async copy(ref: PackageRef, targetDir: string): Promise<void> {
    await this.#fetch(ref);
    await this.#local.copy(ref, targetDir);
  }

  async prune(): Promise<void> {
    await this.#local.prune();
    // Local copies of packages deleted meanwhile (by any process) go too.
    const stored = new Set((await this.list()).map((p) => packageUri(p.ref)));
    for (const { ref } of await this.#local.list()) {
      if (stored.has(packageUri(ref))) continue;
      this.#localContent.delete(packageUri(ref));
      await this.#local.delete(ref).catch(ignoreNotFound);
    }
  }

  async list(): Promise<StoredPackage[]> {
    const rows = await this.#guard.run(() =>
      this.#sql<{ protocol: string; name: string; size: string; last: string }[]>`
        SELECT protocol, name, size::text, greatest(uploaded_at, last_used)::text AS last
        FROM jobhead_packages ORDER BY protocol, name`
    );
    return rows.map((row) => ({
      ref: { protocol: row.protocol, name: row.name } as PackageRef,
      size: Number(row.size),
      lastUsed: Number(row.last),
    }));
  }

  async delete(ref: PackageRef): Promise<void> {
    const deleted = await this.#guard.run(() =>
      this.#sql.begin(async (tx) => {
        const [row] = await tx<{ content: string }[]>`DELETE FROM jobhead_packages
          WHERE protocol = ${ref.protocol} AND name = ${ref.name} RETURNING content`;
        if (row) await tx`DELETE FROM jobhead_package_chunks WHERE content = ${row.content}`;
        return row !== undefined;
      })
    );
    if (!deleted) throw new NotFoundError(`Package ${packageUri(ref)} does not exist`);
    await this.#inTurn(ref, async () => {
      this.#localContent.delete(packageUri(ref));
      await this.#local.delete(ref).catch(ignoreNotFound);
    });
  }

  /** The stored package's row, or undefined. */
  async #row(ref: PackageRef): Promise<{ content: string; size: number } | undefined> {
    const [row] = await this.#guard.run(() =>
      this.#sql<{ content: string; size: string }[]>`SELECT content, size::text
        FROM jobhead_packages WHERE protocol = ${ref.protocol} AND name = ${ref.name}`
    );
    return row && { content: row.content, size: Number(row.size) };
  }

  /**
   * Makes the local copy of `ref` the stored content, fetching it if it is not (one fetch
   * per content however many callers ask), and notes the use. Throws NotFoundError.
   */
  async #fetch(ref: PackageRef): Promise<void> {
    const row = await this.#row(ref);
    if (!row) throw new NotFoundError(`Package ${packageUri(ref)} does not exist`);
    const uri = packageUri(ref);
    await this.#guard.run(() =>
      this.#sql`UPDATE jobhead_packages SET last_used = ${Date.now()}
        WHERE protocol = ${ref.protocol} AND name = ${ref.name}`
    );
    if (this.#localContent.get(uri) === row.content) return;
    const key = `${uri} ${row.content}`;
    let fetching = this.#fetching.get(key);
    if (!fetching) {
      fetching = this.#inTurn(ref, async () => {
        if (this.#localContent.get(uri) === row.content) return;
        await this.#local.put(ref, this.#chunks(ref, row.content));
        this.#localContent.set(uri, row.content);
      }).finally(() => this.#fetching.delete(key));
      this.#fetching.set(key, fetching);
    }
    await fetching;
  }

  /** The stored bytes of `content`, a chunk at a time; NotFoundError if it was replaced meanwhile. */
  #chunks(ref: PackageRef, content: string): ReadableStream<Uint8Array> {
    let seq = 0;
    return new ReadableStream({
      pull: async (controller) => {
        const [row] = await this.#guard.run(() =>
          this.#sql<{ data: Uint8Array }[]>`SELECT data FROM jobhead_package_chunks
            WHERE content = ${content} AND seq = ${seq}`
        );
        if (!row) {
          if (seq === 0) {
            controller.error(new NotFoundError(`Package ${packageUri(ref)} does not exist`));
          } else controller.close();
          return;
        }
        seq++;
        controller.enqueue(new Uint8Array(row.data));
      },
    });
  }

  /** Runs `task` after the tasks of `ref` this process started before it. */
  #inTurn<T>(ref: PackageRef, task: () => Promise<T>): Promise<T> {
    const uri = packageUri(ref);
    const previous = this.#turns.get(uri) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(task);
    const settled = next.catch(() => {});
    this.#turns.set(uri, settled);
    settled.then(() => {
      if (this.#turns.get(uri) === settled) this.#turns.delete(uri);
    });
    return next;
  }
}

/** Reads into `buffer` until it is full or the file ends; the bytes read. */
async function readFull(file: Deno.FsFile, buffer: Uint8Array): Promise<Uint8Array> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.slice(0, filled);
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof NotFoundError)) throw err;
}
