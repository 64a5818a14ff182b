import assert from "node:assert/strict";
import { join } from "node:path";
import { TextReader, Uint8ArrayReader, Uint8ArrayWriter, ZipWriter } from "@zip.js/zip.js";
import { InvalidPackageError, NotFoundError } from "./errors.ts";
import { FilePackageStore, type PackageRef, parsePackageUri } from "./packages.ts";

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
  limits = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-packages-" });
  try {
    await fn(new FilePackageStore(join(dir, "packages"), limits), dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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

test("FilePackageStore.put() then extract() recreates files, modes, dirs and inner links", async () => {
  await withStore(async (store, dir) => {
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
    const target = join(dir, "job-1");
    await Deno.mkdir(target);
    await Deno.writeTextFile(join(target, "stale.txt"), "from before");
    await store.extract(REF, target);
    assert.equal(await Deno.readTextFile(join(target, "src/link.txt")), "data");
    assert.equal(await Deno.readTextFile(join(target, "up.txt")), "echo hi\n");
    assert.equal((await Deno.stat(join(target, "run.sh"))).mode! & 0o111, 0o111);
    assert.equal((await Deno.stat(join(target, "src/lib/data.txt"))).mode! & 0o111, 0);
    assert.ok((await Deno.stat(join(target, "empty"))).isDirectory);
    assert.equal((await Deno.lstat(join(target, "src/link.txt"))).isSymlink, true);
    await assert.rejects(Deno.stat(join(target, "stale.txt")), Deno.errors.NotFound);
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
    const target = join(dir, "job-2");
    await assert.rejects(
      store.extract(REF, target),
      /symlink "sub\/t" points to "s\/\.\.\/\.\.", outside/,
    );
    await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
  });
});

test("FilePackageStore.extract() throws NotFoundError and InvalidPackageError", async () => {
  await withStore(async (store, dir) => {
    await assert.rejects(store.extract(REF, join(dir, "job")), NotFoundError);
    await plant(dir, new TextEncoder().encode("this is not a zip"));
    await assert.rejects(store.extract(REF, join(dir, "job")), /not a readable zip/);
    // A flipped byte in the compressed data fails the CRC check.
    const zip = await makeZip([{ name: "a.txt", text: "hello hello hello hello hello" }]);
    const view = new DataView(zip.buffer);
    zip[30 + view.getUint16(26, true) + view.getUint16(28, true) + 2] ^= 0xff;
    await plant(dir, zip);
    await assert.rejects(store.extract(REF, join(dir, "job")), InvalidPackageError);
  });
});

test("FilePackageStore.extract() stops a package that unpacks past the limit", async () => {
  await withStore(async (store, dir) => {
    const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
    await zip.add("zeros", new Uint8ArrayReader(new Uint8Array(64 * 1024)));
    await plant(dir, await zip.close());
    await assert.rejects(store.extract(REF, join(dir, "job")), /unpacks to more than 1000 bytes/);
  }, { maxExtractedBytes: 1000 });
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
