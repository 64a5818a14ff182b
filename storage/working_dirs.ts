/**
 * Where a process runs: `runtime_env.working_dir` resolved, for jobs and serve replicas
 * alike. A working_dir is a directory on the head (relative ones resolve against the
 * head's own directory) or a package URI (`pkg://NAME`, `gcs://NAME`): the package's
 * shared read-only copy, or a writable copy of the job's own when its env_vars ask.
 */
import { isAbsolute, resolve } from "node:path";
import type { PackageStore } from "./packages.ts";
import { type PackageRef, parsePackageUri } from "./package_uri.ts";

/** Set to `1` (or `true`) in `runtime_env.env_vars`: the job gets its own writable copy. */
export const WORKING_DIR_COPY_ENV = "JOBHEAD_WORKING_DIR_COPY";

/** What a working_dir names: a directory on the head (its absolute path), or a package. */
export type WorkingDirTarget =
  | { path: string; package?: undefined }
  | { package: PackageRef; path?: undefined };

/**
 * What `workingDir` names: undefined for none (the process runs in the head's own
 * directory), a directory on the head, or a package. Nothing is read from disk. Throws an
 * Error saying why for a URI that names no package.
 */
export function resolveWorkingDir(workingDir: string | undefined): WorkingDirTarget | undefined {
  if (workingDir === undefined) return undefined;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(workingDir)) {
    return { path: isAbsolute(workingDir) ? workingDir : resolve(workingDir) };
  }
  const ref = parsePackageUri(workingDir);
  if (!ref) {
    throw new Error(
      `working_dir "${workingDir}" is not a package URI: pkg://NAME or gcs://NAME, ` +
        `NAME being 1-128 characters of A-Z a-z 0-9 _ . -`,
    );
  }
  return { package: ref };
}

/**
 * The absolute path of a working_dir on the head, checked; throws an Error saying why it
 * cannot be used (a URI, missing, not a directory).
 */
export async function checkLocalWorkingDir(workingDir: string): Promise<string> {
  const path = resolveWorkingDir(workingDir)?.path;
  if (path === undefined) {
    throw new Error(`working_dir "${workingDir}" is not a directory on the head`);
  }
  return await checkDirectory(path, workingDir);
}

/** `path`, once it is found to be a directory; else throws an Error naming `workingDir`. */
async function checkDirectory(path: string, workingDir: string): Promise<string> {
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
  const target = resolveWorkingDir(workingDir);
  if (target === undefined) return undefined;
  if (target.path !== undefined) return await checkDirectory(target.path, workingDir!);
  if (options.copyDir === undefined) return await packages.extract(target.package);
  await packages.copy(target.package, options.copyDir);
  return options.copyDir;
}
