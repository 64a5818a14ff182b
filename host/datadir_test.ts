import assert from "node:assert/strict";
import { join } from "node:path";
import {
  damagedPath,
  DataDirInUseError,
  dataModes,
  isDamagedStoreError,
  lockDataDir,
  openStore,
  parsePid,
} from "./datadir.ts";

const sanitize = { sanitizeOps: true, sanitizeResources: true };
const quiet = { info() {}, warn() {}, error() {} };

async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "jobhead-datadir-unit-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** A KV file of a few hundred records, whose pages past the first few are overwritten. */
async function kvDamagedPastItsHeader(path: string): Promise<void> {
  const kv = await Deno.openKv(path);
  await kv.set(["session"], { name: "s", nodeId: "n" });
  for (let i = 0; i < 500; i++) await kv.set(["jobs", `j${i}`], "x".repeat(3000));
  kv.close();
  using file = await Deno.open(path, { write: true });
  await file.seek(8192, Deno.SeekMode.Start);
  await file.write(new Uint8Array(4096).fill(0xab));
}

Deno.test("dataModes() gives files the directory's read and write bits", () => {
  assert.deepEqual(dataModes(0o700), { dir: 0o700, file: 0o600 });
  assert.deepEqual(dataModes(0o750), { dir: 0o750, file: 0o640 });
});

Deno.test("parsePid() reads the first line of a lock file", () => {
  assert.equal(parsePid("1234\n"), 1234);
  assert.equal(parsePid("77\n\n"), 77);
  assert.equal(parsePid(""), undefined);
  assert.equal(parsePid("0\n"), undefined);
  assert.equal(parsePid("12ab\n"), undefined);
});

Deno.test("isDamagedStoreError() tells damage from other failures", () => {
  assert.ok(isDamagedStoreError(new TypeError("database disk image is malformed")));
  assert.ok(isDamagedStoreError(new Error("file is not a database")));
  assert.ok(!isDamagedStoreError(new Error("Permission denied (os error 13)")));
  assert.ok(!isDamagedStoreError(new Error("database is locked")));
});

Deno.test("damagedPath() stamps the time in a file-safe way", () => {
  const at = new Date("2026-11-29T16:05:09.123Z");
  assert.equal(damagedPath("/d/jobhead.kv", at), "/d/jobhead.kv.damaged-20261129T160509Z");
});

Deno.test({
  name: "lockDataDir() lets one holder in and names its pid to the next",
  ...sanitize,
  fn: async () => {
    await using dir = await tempDir();
    const lock = await lockDataDir(dir.path, 0o600);
    assert.equal(await Deno.readTextFile(join(dir.path, "jobhead.lock")), `${Deno.pid}\n`);
    await assert.rejects(
      () => lockDataDir(dir.path, 0o600),
      (err: Error) =>
        err instanceof DataDirInUseError &&
        err.message === `data directory ${dir.path} is in use by pid ${Deno.pid}`,
    );
    lock.close();
    (await lockDataDir(dir.path, 0o600)).close();
  },
});

Deno.test({
  name: "openStore() names a damaged file whose first read fails though it opens",
  ...sanitize,
  fn: async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "jobhead.kv");
    await kvDamagedPastItsHeader(path);
    // The case under test: SQLite opens the file, and only reading finds the damage.
    const kv = await Deno.openKv(path);
    await assert.rejects(() => kv.get(["session"]), /malformed/);
    kv.close();

    await assert.rejects(
      () => openStore(path, { fileMode: 0o600, recover: false, logger: quiet }),
      (err: Error) =>
        err.message.startsWith(
          `the KV file ${path} is damaged (database disk image is malformed)`,
        ) &&
        err.message.includes("--recover"),
    );
  },
});

Deno.test({
  name: "openStore() with recover moves a damaged file aside and opens a fresh one",
  ...sanitize,
  fn: async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "jobhead.kv");
    await kvDamagedPastItsHeader(path);
    const before = await Deno.readFile(path);
    const kv = await openStore(path, { fileMode: 0o600, recover: true, logger: quiet });
    try {
      assert.equal((await kv.get(["session"])).value, null);
    } finally {
      kv.close();
    }
    const names = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
    const aside = names.find((name) => /^jobhead\.kv\.damaged-\d{8}T\d{6}Z$/.test(name));
    assert.ok(aside, names.join(" "));
    assert.deepEqual(await Deno.readFile(join(dir.path, aside)), before);
  },
});

Deno.test({
  name: "openStore() with recover keeps a healthy file",
  ...sanitize,
  fn: async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "jobhead.kv");
    const first = await openStore(path, { fileMode: 0o600, recover: false, logger: quiet });
    await first.set(["session"], "kept");
    first.close();
    const kv = await openStore(path, { fileMode: 0o600, recover: true, logger: quiet });
    try {
      assert.equal((await kv.get(["session"])).value, "kept");
    } finally {
      kv.close();
    }
  },
});
