/**
 * The data directory: created private (0700, files 0600 unless configured otherwise),
 * locked so that one head at a time uses it, and its KV file opened with a clear word
 * when it is damaged, or moved aside to start afresh (`--recover`).
 */
import { join } from "node:path";
import type { Logger } from "../kit/module.ts";
import { errorMessage } from "../storage/errors.ts";

/** The KV file, in the data directory. */
export const KV_FILE = "jobhead.kv";
/** The lock file, in the data directory: flock'd by the head that uses it, holds its pid. */
export const LOCK_FILE = "jobhead.lock";
/** The head's own subdirectories, kept at the data directory's mode. */
export const OWN_SUBDIRS = ["logs", "run", "packages", "working_dirs"] as const;
/** SQLite's companions of the KV file. */
const KV_COMPANIONS = ["-wal", "-shm"] as const;

/** Another process holds the data directory's lock. Its message is meant for the operator as is. */
export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

/** Modes of what the head creates in its data directory. */
export interface DataModes {
  /** Directories: the data directory and its subdirectories. */
  dir: number;
  /** Files: the KV file, logs, packages, the lock file. */
  file: number;
}

/** The file mode that goes with a directory mode: the same read and write bits, no execute. */
export function dataModes(dirMode: number): DataModes {
  return { dir: dirMode, file: dirMode & 0o666 };
}

/** `mode` as an octal string, e.g. `0755`. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

/** Creates the data directory at mode `dirMode` unless it exists; throws if it is no directory. */
export async function ensureDataDir(dataDir: string, dirMode: number): Promise<void> {
  try {
    if (!(await Deno.stat(dataDir)).isDirectory) {
      throw new Error(`the data directory ${dataDir} is not a directory`);
    }
    return;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(dataDir, { recursive: true, mode: dirMode });
  await Deno.chmod(dataDir, dirMode); // the umask may have taken bits the operator asked for
}

/**
 * Creates the head's own subdirectories at `modes.dir`, tightening those an earlier
 * version made with looser modes, and warns when the data directory itself lets more
 * users in than that (it may be shared: it is not changed). Call with the lock held.
 */
export async function prepareDataDir(
  dataDir: string,
  modes: DataModes,
  logger: Logger,
): Promise<void> {
  const mode = (await Deno.stat(dataDir)).mode ?? 0;
  if ((mode & 0o777 & ~modes.dir) !== 0) {
    logger.warn(
      `the data directory ${dataDir} is mode ${formatMode(mode)}: other users may list ` +
        `it; what jobhead keeps in it is ${formatMode(modes.dir)} (directories) and ` +
        `${formatMode(modes.file)} (files); chmod ${
          formatMode(modes.dir)
        } ${dataDir} hides the rest`,
    );
  }
  for (const name of OWN_SUBDIRS) {
    const path = join(dataDir, name);
    await Deno.mkdir(path, { recursive: true, mode: modes.dir });
    await Deno.chmod(path, modes.dir);
  }
}

/**
 * Takes the data directory's lock without waiting and writes this process's pid into the
 * lock file. Throws DataDirInUseError naming the holder's pid when another process has it.
 * Close the returned file to release the lock; the kernel drops it when the process ends,
 * however it ends. Jobs do not inherit it: Deno opens files close-on-exec.
 */
export async function lockDataDir(dataDir: string, fileMode: number): Promise<Deno.FsFile> {
  const path = join(dataDir, LOCK_FILE);
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: fileMode });
  try {
    if (!await file.tryLock(true)) {
      const holder = parsePid(await Deno.readTextFile(path).catch(() => ""));
      throw new DataDirInUseError(
        `data directory ${dataDir} is in use by ${holder ? `pid ${holder}` : "another process"}`,
      );
    }
    // Written over the old pid and cut after: a reader never sees an empty file.
    const bytes = new TextEncoder().encode(`${Deno.pid}\n`);
    await file.seek(0, Deno.SeekMode.Start);
    for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
    await file.truncate(bytes.length);
    return file;
  } catch (err) {
    file.close();
    throw err;
  }
}

/** The pid on the first line of a lock file, or undefined. */
export function parsePid(text: string): number | undefined {
  const line = text.split("\n")[0].trim();
  return /^[1-9]\d*$/.test(line) ? Number(line) : undefined;
}

/** Whether an error of SQLite says the database file is damaged (not merely unreadable). */
export function isDamagedStoreError(err: unknown): boolean {
  return /malformed|not a database|corrupt/i.test(errorMessage(err));
}

/** Options of `openStore`. */
export interface OpenStoreOptions {
  /** Mode of the KV file and its companions. */
  fileMode: number;
  /** Read every entry, and move a file that fails aside rather than refuse it. */
  recover: boolean;
  logger: Logger;
}

/**
 * Opens the KV file at `path` and reads from it once, so that damage shows now rather
 * than as a failed request. A damaged file throws an error naming it and saying what to
 * do, unless `recover` is set: then the file is checked whole, and if it fails it moves
 * aside (with its -wal and -shm) to `<path>.damaged-<time>` and a fresh store is opened.
 */
export async function openStore(path: string, options: OpenStoreOptions): Promise<Deno.Kv> {
  await ensureFileModes(path, options.fileMode);
  try {
    return await openAndCheck(path, { whole: options.recover });
  } catch (err) {
    const reason = errorMessage(err);
    if (!isDamagedStoreError(err)) throw new Error(`cannot open the KV file ${path}: ${reason}`);
    if (!options.recover) {
      throw new Error(
        `the KV file ${path} is damaged (${reason}). Start with --recover to move it aside, ` +
          `start with an empty store and take back the jobs still running; see "Recovering a ` +
          `damaged data directory" in the README`,
      );
    }
    const aside = await moveAside(path, new Date());
    options.logger.warn(`the KV file ${path} is damaged (${reason}): moved it aside to ${aside}`);
  }
  await ensureFileModes(path, options.fileMode);
  return await openAndCheck(path, { whole: false });
}

/** Where a damaged KV file goes: beside it, named by the time it was moved. */
export function damagedPath(path: string, now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
  return `${path}.damaged-${stamp}`;
}

async function openAndCheck(path: string, options: { whole: boolean }): Promise<Deno.Kv> {
  const kv = await Deno.openKv(path);
  try {
    await kv.get(["session"]);
    if (options.whole) { for await (const _ of kv.list({ prefix: [] })) { /* read it all */ } }
    return kv;
  } catch (err) {
    kv.close();
    throw err;
  }
}

/**
 * Creates the KV file empty at `fileMode` if it is missing (SQLite gives its -wal and
 * -shm the mode of the database file, whatever the umask), and tightens existing ones.
 */
async function ensureFileModes(path: string, fileMode: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, mode: fileMode });
  file.close();
  for (const suffix of ["", ...KV_COMPANIONS]) {
    try {
      const info = await Deno.stat(path + suffix);
      if (((info.mode ?? 0) & 0o777) !== fileMode) await Deno.chmod(path + suffix, fileMode);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/** Renames the KV file and its companions aside; returns the new path of the KV file. */
async function moveAside(path: string, now: Date): Promise<string> {
  const aside = damagedPath(path, now);
  await Deno.rename(path, aside);
  for (const suffix of KV_COMPANIONS) {
    await Deno.rename(path + suffix, aside + suffix).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
  }
  return aside;
}
