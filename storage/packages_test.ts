import assert from "node:assert/strict";
import { join } from "node:path";
import { TextReader, Uint8ArrayReader, Uint8ArrayWriter, ZipWriter } from "@zip.js/zip.js";
import { InvalidPackageError, NotFoundError } from "./errors.ts";
import { WorkerPool } from "../kit/worker_pool.ts";
import { FilePackageStore, type PackageStoreOptions, type TaskRunner } from "./packages.ts";
import { type PackageRef, parsePackageUri } from "./package_uri.ts";
import type { ExpansionLimits } from "./zip_safety.ts";

const REF: PackageRef = { protocol: "pkg", name: "test.zip" };
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });

/** One zip entry: a file (text), a directory (name ends with /), or a symlink. */
type Item = { name: string; text?: string; link?: string; mode?: number };

async function makeZip(items: Item[]): Promise<Uint8Array> {
  const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
  for (const item of items) {
    if (item.name.endsWith("/")) {
      await zip.add(item.name, undefined, { directory: true });
    } else if (item.link !== undefined) {
      await zip.add(item.name, new TextReader(item.link), { unixMode: 0o120777 });
    } else {
      await zip.add(item.name, new TextReader(item.text ?? ""), { unixMode: item.mode });
    }
  }
  return await zip.close();
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

async function withStore(
  fn: (store: FilePackageStore, dir: string) => Promise<void>,
  options: PackageStoreOptions = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-packages-" });
  try {
    await fn(new FilePackageStore(join(dir, "packages"), options), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Nothing of the package is left extracted, complete or not. */
async function assertNothingExtracted(dir: string): Promise<void> {
  const left: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(dir, "packages", "extracted", "pkg", REF.name))) {
      left.push(entry.name);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  assert.deepEqual(left, []);
}

/** Stores `bytes` as the package behind the store's back, the way a disk could change it. */
async function plant(dir: string, bytes: Uint8Array): Promise<void> {
  await Deno.mkdir(join(dir, "packages", "pkg"), { recursive: true });
  await Deno.writeFile(join(dir, "packages", "pkg", REF.name), bytes);
}

test("parsePackageUri() takes pkg:// and gcs:// with safe names only", async () => {
  assert.deepEqual(parsePackageUri("pkg://abc.zip"), { protocol: "pkg", name: "abc.zip" });
  assert.deepEqual(parsePackageUri("gcs://_ray_pkg_1.zip"), {
    protocol: "gcs",
    name: "_ray_pkg_1.zip",
  });
  for (const bad of ["s3://x.zip", "pkg://", "pkg://../x", "pkg://a/b", "pkg://.hidden", "/tmp"]) {
    assert.equal(parsePackageUri(bad), undefined, bad);
  }
  await Promise.resolve();
});

test("FilePackageStore.extract() makes one read-only copy with modes, dirs and inner links", async () => {
  await withStore(async (store) => {
    assert.equal(await store.size(REF), undefined);
    const zip = await makeZip([
      { name: "empty/" },
      { name: "run.sh", text: "echo hi\n", mode: 0o100755 },
      { name: "src/lib/data.txt", text: "data" },
      { name: "src/link.txt", link: "lib/data.txt" },
      { name: "up.txt", link: "src/../run.sh" },
    ]);
    assert.equal(await store.put(REF, streamOf(zip)), zip.length);
    assert.equal(await store.size(REF), zip.length);
    const target = await store.extract(REF);
    assert.equal(await Deno.readTextFile(join(target, "src/link.txt")), "data");
    assert.equal(await Deno.readTextFile(join(target, "up.txt")), "echo hi\n");
    assert.equal((await Deno.lstat(join(target, "src/link.txt"))).isSymlink, true);
    const modeOf = async (path: string) => (await Deno.stat(join(target, path))).mode! & 0o777;
    assert.equal(await modeOf("run.sh"), 0o555);
    assert.equal(await modeOf("src/lib/data.txt"), 0o444);
    for (const dir of [".", "empty", "src", "src/lib"]) assert.equal(await modeOf(dir), 0o555, dir);
    assert.equal(await store.extract(REF), target, "the same copy serves every caller");
  });
});

test("FilePackageStore.extract() extracts once for concurrent callers, in a worker", async () => {
  const pool = new WorkerPool({ size: 2 });
  try {
    let runs = 0;
    const runner: TaskRunner = {
      run<T>(module: string | URL, fn: string, args: unknown[]) {
        runs++;
        return pool.run<T>(module, fn, args);
      },
    };
    await withStore(async (store) => {
      await store.put(REF, streamOf(await makeZip([{ name: "a.txt", text: "a" }])));
      const dirs = await Promise.all([1, 2, 3].map(() => store.extract(REF)));
      assert.equal(new Set(dirs).size, 1);
      assert.equal(runs, 1);
      assert.equal(await Deno.readTextFile(join(dirs[0], "a.txt")), "a");
      // A replaced package is new content: it gets a copy of its own.
      await store.put(REF, streamOf(await makeZip([{ name: "b.txt", text: "b" }])));
      const replaced = await store.extract(REF);
      assert.notEqual(replaced, dirs[0]);
      assert.equal(runs, 2);
      await assert.rejects(Deno.stat(join(replaced, "a.txt")), Deno.errors.NotFound);
    }, { runner });
  } finally {
    pool.close();
  }
});

test("FilePackageStore.copy() makes a writable copy and replaces what was there", async () => {
  await withStore(async (store, dir) => {
    const zip = await makeZip([
      { name: "run.sh", text: "echo hi\n", mode: 0o100755 },
      { name: "sub/data.txt", text: "data" },
      { name: "link", link: "sub/data.txt" },
    ]);
    await store.put(REF, streamOf(zip));
    const target = join(dir, "job-1");
    await Deno.mkdir(target);
    await Deno.writeTextFile(join(target, "stale.txt"), "from before");
    await store.copy(REF, target);
    await assert.rejects(Deno.stat(join(target, "stale.txt")), Deno.errors.NotFound);
    const modeOf = async (path: string) => (await Deno.stat(join(target, path))).mode! & 0o777;
    assert.equal(await modeOf("run.sh"), 0o755);
    assert.equal(await modeOf("sub/data.txt"), 0o644);
    assert.equal(await modeOf("sub"), 0o755);
    assert.equal((await Deno.lstat(join(target, "link"))).isSymlink, true);
    await Deno.writeTextFile(join(target, "sub/data.txt"), "changed");
    assert.equal(await Deno.readTextFile(join(await store.extract(REF), "sub/data.txt")), "data");
  });
});

test("FilePackageStore.prune() removes interrupted extractions and replaced content", async () => {
  await withStore(async (store, dir) => {
    await store.put(REF, streamOf(await makeZip([{ name: "a.txt", text: "a" }])));
    const old = await store.extract(REF);
    await store.put(REF, streamOf(await makeZip([{ name: "a.txt", text: "new" }])));
    const current = await store.extract(REF);
    const interrupted = join(dir, "packages", "extracted", "pkg", REF.name, ".tmp-interrupted");
    await Deno.mkdir(join(interrupted, "half"), { recursive: true, mode: 0o555 });
    await store.prune();
    await assert.rejects(Deno.stat(old), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(interrupted), Deno.errors.NotFound);
    assert.equal(await Deno.readTextFile(join(current, "a.txt")), "new");
  });
});

test("FilePackageStore.put() rejects entries that escape, and stores nothing", async () => {
  const cases: [Item[], RegExp][] = [
    [[{ name: "../evil.txt", text: "x" }], /entry "\.\.\/evil\.txt" escapes/],
    [[{ name: "a/../../evil.txt", text: "x" }], /escapes the target directory/],
    [[{ name: "/etc/evil", text: "x" }], /absolute path/],
    [[{ name: "a\\..\\..\\evil", text: "x" }], /backslash/],
    [[{ name: "out", link: "/etc/passwd" }], /symlink "out" points to "\/etc\/passwd"/],
    [[{ name: "a/out", link: "../../x" }], /outside the target directory/],
    [[{ name: "dir", link: "sub" }, { name: "dir/file", text: "x" }], /lies under "dir"/],
    [[{ name: "x.txt", text: "1" }, { name: "./x.txt", text: "2" }], /appears twice/],
  ];
  await withStore(async (store) => {
    for (const [items, message] of cases) {
      const zip = await makeZip(items);
      await assert.rejects(store.put(REF, streamOf(zip)), (err: Error) => {
        assert.ok(err instanceof InvalidPackageError, `${err}`);
        assert.match(err.message, /^Package pkg:\/\/test\.zip is invalid: /);
        assert.match(err.message, message);
        return true;
      });
      assert.equal(await store.size(REF), undefined, JSON.stringify(items));
    }
  });
});

test("FilePackageStore.extract() rejects links that lead out through other links", async () => {
  await withStore(async (store, dir) => {
    // Each link points inside by name: sub/s is sub itself, so sub/t = sub/s/../.. = dir/..
    await plant(
      dir,
      await makeZip([{ name: "sub/" }, { name: "sub/s", link: "." }, {
        name: "sub/t",
        link: "s/../..",
      }]),
    );
    await assert.rejects(store.extract(REF), /symlink "sub\/t" points to "s\/\.\.\/\.\.", outside/);
    await assertNothingExtracted(dir);
  });
});

test("FilePackageStore.extract() throws NotFoundError and InvalidPackageError", async () => {
  await withStore(async (store, dir) => {
    await assert.rejects(store.extract(REF), NotFoundError);
    await plant(dir, new TextEncoder().encode("this is not a zip"));
    await assert.rejects(store.extract(REF), /not a readable zip/);
    // A flipped byte in the compressed data fails the CRC check.
    const zip = await makeZip([{ name: "a.txt", text: "hello hello hello hello hello" }]);
    const view = new DataView(zip.buffer);
    zip[30 + view.getUint16(26, true) + view.getUint16(28, true) + 2] ^= 0xff;
    await plant(dir, zip);
    await assert.rejects(store.extract(REF), InvalidPackageError);
    await assertNothingExtracted(dir);
  });
});

test("FilePackageStore stops zip bombs at the byte and the ratio limits, in a worker", async () => {
  const zeros = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
  await zeros.add("zeros", new Uint8ArrayReader(new Uint8Array(4 * 1024 * 1024)));
  const bomb = await zeros.close();
  const pool = new WorkerPool({ size: 1 });
  try {
    const cases: [Partial<ExpansionLimits>, RegExp][] = [
      [{ maxBytes: 1000, maxRatio: 0 }, /is invalid: it expands to more than 1000 bytes/],
      [{ maxRatio: 50 }, /is invalid: its compression ratio is over 50 .*: its \d+ bytes expand/],
    ];
    for (const [limits, message] of cases) {
      await withStore(async (store, dir) => {
        // Declared sizes are checked on the way in…
        await assert.rejects(store.put(REF, streamOf(bomb)), message);
        // …and real bytes while extracting, for packages stored under other limits.
        await plant(dir, bomb);
        await assert.rejects(store.extract(REF), (err: Error) => {
          assert.ok(err instanceof InvalidPackageError, String(err));
          assert.match(err.message, /^Package pkg:\/\/test\.zip is invalid: /);
          assert.match(err.message, message);
          return true;
        });
        await assertNothingExtracted(dir);
      }, { limits, runner: pool });
    }
  } finally {
    pool.close();
  }
});

test("FilePackageStore.extract() stops an entry that expands past its declared size", async () => {
  await withStore(async (store, dir) => {
    const writer = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
    await writer.add("zeros", new Uint8ArrayReader(new Uint8Array(4 * 1024 * 1024)));
    const zip = await writer.close();
    // The central directory says 1 MiB: within the limits, so only inflating tells.
    const view = new DataView(zip.buffer);
    const central = view.getUint32(zip.length - 22 + 16, true);
    view.setUint32(central + 24, 1024 * 1024, true);
    await plant(dir, zip);
    await assert.rejects(
      store.extract(REF),
      /^InvalidPackageError: Package pkg:\/\/test\.zip is invalid: entry "zeros" expands past the size it declares$/,
    );
    await assertNothingExtracted(dir);
  }, { limits: { maxBytes: 2 * 1024 * 1024, maxRatio: 0 } });
});

test("FilePackageStore.put() passes the body's own error through", async () => {
  await withStore(async (store) => {
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new RangeError("too big"));
      },
    });
    await assert.rejects(store.put(REF, body), RangeError);
    assert.equal(await store.size(REF), undefined);
  });
});
