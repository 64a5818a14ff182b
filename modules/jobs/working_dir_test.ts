import assert from "node:assert/strict";
import { join } from "node:path";
import { aJob } from "../../storage/jobs_fixture.ts";
import { FilePackageStore } from "../../storage/packages.ts";
import { jobCopyDirOf, prepareJobWorkingDir, removeJobWorkingDir } from "./working_dir.ts";

Deno.test({
  name:
    "prepareJobWorkingDir() gives a job that asks its own copy, which removeJobWorkingDir() removes",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "jobhead-job-working-dir-" });
    try {
      const packages = new FilePackageStore(join(dataDir, "packages"));
      await packages.put({ protocol: "pkg", name: "p.zip" }, new Blob([emptyZip()]).stream());
      const options = { packages, dataDir };
      const shared = aJob({ id: "a", runtime_env: { working_dir: "pkg://p.zip" } });
      const own = aJob({
        id: "b",
        runtime_env: { working_dir: "pkg://p.zip", env_vars: { JOBHEAD_WORKING_DIR_COPY: "1" } },
      });
      assert.equal(await prepareJobWorkingDir(aJob(), options), undefined);
      const sharedDir = await prepareJobWorkingDir(shared, options);
      assert.ok(sharedDir?.startsWith(join(dataDir, "packages", "extracted")), sharedDir);
      assert.equal(await prepareJobWorkingDir(own, options), jobCopyDirOf(dataDir, "b"));
      assert.ok((await Deno.stat(jobCopyDirOf(dataDir, "b"))).isDirectory);

      await removeJobWorkingDir(dataDir, "b");
      await assert.rejects(Deno.stat(jobCopyDirOf(dataDir, "b")), Deno.errors.NotFound);
      await removeJobWorkingDir(dataDir, "b"); // safe to repeat
      assert.ok((await Deno.stat(sharedDir!)).isDirectory, "the shared copy stays");
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

/** A zip with no entries: just its end-of-central-directory record. */
function emptyZip(): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(22);
  new DataView(bytes.buffer).setUint32(0, 0x06054b50, true);
  return bytes;
}
