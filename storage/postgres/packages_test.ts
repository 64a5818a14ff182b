import assert from "node:assert/strict";
import { join } from "node:path";
import { InvalidPackageError, NotFoundError } from "../errors.ts";
import type { PackageRef } from "../package_uri.ts";
import { createTestDatabase } from "../../tests/postgres.ts";
import { makeZip } from "../../tests/zip.ts";
import { openPostgresStore, type PostgresStore } from "./mod.ts";
import { CHUNK_BYTES } from "./packages.ts";

const REF: PackageRef = { protocol: "pkg", name: "app.zip" };

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

/** Two processes' stores on one fresh database, each with a package cache of its own. */
async function withTwoStores(
  fn: (a: PostgresStore, b: PostgresStore, dirs: [string, string]) => Promise<void>,
): Promise<void> {
  const db = await createTestDatabase();
  const root = await Deno.makeTempDir({ prefix: "jobhead-pg-packages-" });
  const dirs: [string, string] = [join(root, "a"), join(root, "b")];
  const open = (dir: string) =>
    openPostgresStore(db.url, { password: db.password, packages: { dir } });
  const a = await open(dirs[0]);
  const b = await open(dirs[1]);
  try {
    await fn(a, b, dirs);
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("PostgreSQL packages: uploaded through one process, extracted by another, in 1 MiB chunks", async () => {
  await withTwoStores(async (a, b) => {
    const big = crypto.getRandomValues(new Uint8Array(60_000));
    const blob = new Uint8Array(CHUNK_BYTES * 2 + 12_345);
    for (let i = 0; i < blob.length; i += big.length) blob.set(big.subarray(0, blob.length - i), i);
    const zip = await makeZip({ "main.sh": "echo hi", "data/blob.bin": blob });
    assert.equal(await a.packages.put(REF, streamOf(zip)), zip.length);
    const [{ chunks }] = await a.sql`SELECT count(*)::int AS chunks FROM jobhead_package_chunks`;
    assert.equal(chunks, Math.ceil(zip.length / CHUNK_BYTES));
    assert.equal(await b.packages.size(REF), zip.length);
    const dir = await b.packages.extract(REF);
    assert.equal(await Deno.readTextFile(join(dir, "main.sh")), "echo hi");
    assert.deepEqual(await Deno.readFile(join(dir, "data/blob.bin")), blob);
    // Asked again, the same extraction serves; concurrent callers share one fetch.
    const again = await Promise.all([1, 2, 3].map(() => b.packages.extract(REF)));
    assert.deepEqual(again, [dir, dir, dir]);
  });
});

Deno.test("PostgreSQL packages: a replaced package is fetched again elsewhere, a deleted one is gone everywhere", async () => {
  await withTwoStores(async (a, b) => {
    await a.packages.put(REF, streamOf(await makeZip({ "v.txt": "one" })));
    const first = await b.packages.extract(REF);
    assert.equal(await Deno.readTextFile(join(first, "v.txt")), "one");
    await b.packages.put(REF, streamOf(await makeZip({ "v.txt": "two" })));
    const second = await a.packages.extract(REF);
    assert.notEqual(second, first);
    assert.equal(await Deno.readTextFile(join(second, "v.txt")), "two");
    const [{ chunks }] = await a.sql`SELECT count(*)::int AS chunks FROM jobhead_package_chunks`;
    assert.equal(chunks, 1, "the replaced content's chunks are gone");
    const listed = await a.packages.list();
    assert.deepEqual(listed.map((p) => p.ref), [REF]);

    await a.packages.delete(REF);
    await assert.rejects(b.packages.extract(REF), NotFoundError);
    await assert.rejects(a.packages.delete(REF), NotFoundError);
    assert.equal(await b.packages.size(REF), undefined);
    // b still has its copy on disk until it prunes.
    await b.packages.prune();
    assert.deepEqual(await b.packages.list(), []);
  });
});

Deno.test("PostgreSQL packages: an invalid zip is refused and nothing is stored", async () => {
  await withTwoStores(async (a) => {
    await assert.rejects(
      a.packages.put(REF, streamOf(new TextEncoder().encode("not a zip"))),
      InvalidPackageError,
    );
    const [{ n }] = await a.sql`SELECT count(*)::int AS n FROM jobhead_packages`;
    assert.equal(n, 0);
    assert.equal(await a.packages.size(REF), undefined);
  });
});
