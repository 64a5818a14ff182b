/**
 * Where a process runs: `runtime_env.working_dir` resolved, for jobs and serve replicas
 * alike. A working_dir is a directory on the head (relative ones resolve against the
 * head's own directory) or a package URI (`pkg://NAME`, `gcs://NAME`): the package's
 * shared read-only copy, or a writable copy of the job's own when its env_vars ask.
 */
import { isAbsolute, resolve } from "node:path";
import { type PackageStore, parsePackageUri } from "./packages.ts";

/** Set to `1` (or `true`) in `runtime_env.env_vars`: the job gets its own writable copy. */
export const WORKING_DIR_COPY_ENV = "JOBHEAD_WORKING_DIR_COPY";

/** Whether `workingDir` is a URI (`scheme://…`) rather than a directory on the head. */
export function isWorkingDirUri(workingDir: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(workingDir);
}

/** The absolute path of a working_dir on the head. */
export function localWorkingDirPath(workingDir: string): string {
  return isAbsolute(workingDir) ? workingDir : resolve(workingDir);
}

/**
 * The absolute path of a working_dir on the head; throws an Error saying why it cannot be
 * used (missing, not a directory).
 */
export async function checkLocalWorkingDir(workingDir: string): Promise<string> {
  const path = localWorkingDirPath(workingDir);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new Error(`working_dir "${workingDir}" does not exist`);
  }
  if (!info.isDirectory) throw new Error(`working_dir "${workingDir}" is not a directory`);
  return path;
}

/** Whether `env_vars` ask for a writable copy of a package working_dir. */
export function wantsWorkingDirCopy(envVars: Record<string, string> | undefined): boolean {
  return ["1", "true"].includes(envVars?.[WORKING_DIR_COPY_ENV] ?? "");
}

/**
 * The directory a job runs in: undefined (the head's), a checked directory on the head,
 * or its package: the shared read-only copy, or, given `copyDir`, a writable copy there.
 * Throws an Error whose message says why the working_dir cannot be used.
 */
export async function prepareWorkingDir(
  packages: PackageStore,
  workingDir: string | undefined,
  options: { copyDir?: string } = {},
): Promise<string | undefined> {
  if (workingDir === undefined) return undefined;
  if (!isWorkingDirUri(workingDir)) return await checkLocalWorkingDir(workingDir);
  const ref = parsePackageUri(workingDir);
  if (!ref) {
    throw new Error(
      `working_dir "${workingDir}" is not a package URI: pkg://NAME or gcs://NAME, ` +
        `NAME being 1-128 characters of A-Z a-z 0-9 _ . -`,
    );
  }
  if (options.copyDir === undefined) return await packages.extract(ref);
  await packages.copy(ref, options.copyDir);
  return options.copyDir;
}
