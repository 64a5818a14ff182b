import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { FilePackageStore } from "./packages.ts";
import {
  checkLocalWorkingDir,
  prepareWorkingDir,
  resolveWorkingDir,
  wantsWorkingDirCopy,
} from "./working_dirs.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });

test("resolveWorkingDir() tells packages from directories, and resolves the latter", async () => {
  assert.equal(resolveWorkingDir(undefined), undefined);
  assert.deepEqual(resolveWorkingDir("pkg://a.zip"), {
    package: { protocol: "pkg", name: "a.zip" },
  });
  assert.deepEqual(resolveWorkingDir("gcs://_ray_pkg_1.zip")?.package?.protocol, "gcs");
  assert.throws(() => resolveWorkingDir("s3://bucket/x"), /is not a package URI: pkg:\/\//);
  assert.throws(() => resolveWorkingDir("pkg://../x"), /is not a package URI/);
  assert.deepEqual(resolveWorkingDir("./pkg:/x"), { path: resolve("./pkg:/x") });
  assert.deepEqual(resolveWorkingDir("/srv/app"), { path: "/srv/app" });
  assert.deepEqual(resolveWorkingDir("app"), { path: resolve("app") });
  await Promise.resolve();
});

test("wantsWorkingDirCopy() reads the copy switch", async () => {
  assert.equal(wantsWorkingDirCopy({ JOBHEAD_WORKING_DIR_COPY: "1" }), true);
  assert.equal(wantsWorkingDirCopy({ JOBHEAD_WORKING_DIR_COPY: "true" }), true);
  assert.equal(wantsWorkingDirCopy({ JOBHEAD_WORKING_DIR_COPY: "0" }), false);
  assert.equal(wantsWorkingDirCopy(undefined), false);
  await Promise.resolve();
});

test("prepareWorkingDir() checks local dirs and resolves packages, shared or copied", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-working-dirs-" });
  try {
    const packages = new FilePackageStore(join(dir, "packages"));
    assert.equal(await prepareWorkingDir(packages, undefined), undefined);
    assert.equal(await prepareWorkingDir(packages, dir), dir);
    await Deno.writeTextFile(join(dir, "file"), "x");
    await assert.rejects(checkLocalWorkingDir(join(dir, "file")), /"[^"]+file" is not a directory/);
    await assert.rejects(checkLocalWorkingDir("pkg://p.zip"), /is not a directory on the head/);
    await assert.rejects(
      prepareWorkingDir(packages, join(dir, "nope")),
      /"[^"]+nope" does not exist/,
    );
    await assert.rejects(prepareWorkingDir(packages, "s3://b/x"), /is not a package URI: pkg:\/\//);
    await assert.rejects(
      prepareWorkingDir(packages, "pkg://none.zip"),
      /pkg:\/\/none\.zip does not/,
    );

    const zip = emptyZip();
    await packages.put({ protocol: "pkg", name: "p.zip" }, new Blob([zip]).stream());
    const shared = await prepareWorkingDir(packages, "pkg://p.zip");
    assert.ok(shared?.startsWith(join(dir, "packages", "extracted", "pkg", "p.zip")), shared);
    const copyDir = join(dir, "working_dirs", "job-1");
    assert.equal(await prepareWorkingDir(packages, "pkg://p.zip", { copyDir }), copyDir);
    assert.ok((await Deno.stat(copyDir)).isDirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A zip with no entries: just its end-of-central-directory record. */
function emptyZip(): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(22);
  new DataView(bytes.buffer).setUint32(0, 0x06054b50, true);
  return bytes;
}
