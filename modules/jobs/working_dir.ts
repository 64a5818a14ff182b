/**
 * A job's working directory: its `runtime_env.working_dir` made ready before it starts,
 * and the writable copy of its package (when it asked for one) removed with the job.
 */
import { join } from "node:path";
import type { Job } from "../../storage/jobs.ts";
import type { PackageStore } from "../../storage/packages.ts";
import { prepareWorkingDir, wantsWorkingDirCopy } from "../../storage/working_dirs.ts";

/** Where a job's own writable copy of its package goes, under the data directory. */
export function jobCopyDirOf(dataDir: string, id: string): string {
  return join(dataDir, "working_dirs", id);
}

/**
 * The directory a job runs in: undefined (the head's), a directory on the head, or its
 * `pkg://` or `gcs://` package: the copy every job of that package shares (read-only), or
 * the job's own writable copy when its env_vars set JOBHEAD_WORKING_DIR_COPY. Throws with a
 * message saying why not.
 */
export function prepareJobWorkingDir(
  job: Job,
  options: { packages: PackageStore; dataDir: string },
): Promise<string | undefined> {
  const { working_dir, env_vars } = job.runtime_env;
  const copyDir = wantsWorkingDirCopy(env_vars) ? jobCopyDirOf(options.dataDir, job.id) : undefined;
  return prepareWorkingDir(options.packages, working_dir, { copyDir });
}

/** Removes a job's own copy of its package; nothing to remove is fine. Safe to repeat. */
export async function removeJobWorkingDir(dataDir: string, id: string): Promise<void> {
  await Deno.remove(jobCopyDirOf(dataDir, id), { recursive: true }).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}
