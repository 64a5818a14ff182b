/**
 * The package store: zip archives uploaded as jobs' working directories
 * (`PUT /api/packages/{protocol}/{name}`), one file each, checked on the way in
 * (storage/zip_safety.ts) and extracted on the way out: once per package content, into a
 * read-only directory every job that names the package shares, or into a job's own
 * writable copy. Extraction runs off the caller's thread and stops at the size and
 * compression-ratio limits.
 *
 * On disk, under the store's directory:
 * - `<protocol>/<name>`: the zip;
 * - `extracted/<protocol>/<name>/<version>/`: its shared extracted copy, `<version>` naming
 *   the zip's content (a replaced zip gets a new one), moved into place complete;
 * - `extracted/<protocol>/<name>/.tmp-<uuid>/`: an extraction under way.
 */
import { dirname, join } from "node:path";
import { InvalidPackageError, NotFoundError } from "./errors.ts";
import { PackageName, PackageProtocol, type PackageRef, packageUri } from "./package_uri.ts";
import { DEFAULT_LIMITS, type ExpansionLimits } from "./zip_safety.ts";

/** Runs an exported function of a module off the caller's thread: the head's WorkerPool. */
export interface TaskRunner {
  run<T>(module: string | URL, fn: string, args: unknown[]): Promise<T>;
}

/** Runs tasks on the caller's own thread: for tests and tools, never for the head. */
export const IN_PROCESS: TaskRunner = {
  async run<T>(module: string | URL, fn: string, args: unknown[]): Promise<T> {
    const exports = await import(String(module));
    return await exports[fn](...args);
  },
};

/** Uploaded packages. */
export interface PackageStore {
  /** The package's size in bytes, or undefined when there is no such package. */
  size(ref: PackageRef): Promise<number | undefined>;
  /**
   * Stores the zip read from `body`, replacing a package of the same name, once every entry
   * has been checked. Throws InvalidPackageError; an error of `body` itself (a size limit)
   * passes through unchanged. Nothing is stored when it throws. Resolves to the size.
   */
  put(ref: PackageRef, body: ReadableStream<Uint8Array>): Promise<number>;
  /**
   * The package's shared, read-only extracted directory, extracted first if needed: once
   * per package content, however many callers ask at once. Throws NotFoundError for a
   * missing package and InvalidPackageError for a corrupt, unsafe or too large one (then
   * nothing of it is left).
   */
  extract(ref: PackageRef): Promise<string>;
  /**
   * Makes `targetDir` a writable copy of the package, replacing what was there. Throws as
   * `extract()` does (then `targetDir` is removed).
   */
  copy(ref: PackageRef, targetDir: string): Promise<void>;
  /**
   * Removes what interrupted extractions left, and the extracted copies of content a
   * package no longer has (it was replaced). Extractions under way are left alone.
   */
  prune(): Promise<void>;
  /** Every stored package, with its size and when it was last uploaded or used. */
  list(): Promise<StoredPackage[]>;
  /** Removes a package and its extracted copies; throws NotFoundError when absent. */
  delete(ref: PackageRef): Promise<void>;
}

/** A stored package, as `PackageStore.list()` tells it. */
export interface StoredPackage {
  ref: PackageRef;
  size: number;
  /** Epoch ms of its upload, or of the last extraction a job asked for, whichever is later. */
  lastUsed: number;
}

/** Options of a FilePackageStore. */
export interface PackageStoreOptions {
  /** How far a package may expand; DEFAULT_LIMITS for what is not given. */
  limits?: Partial<ExpansionLimits>;
  /** Where extractions and copies run; IN_PROCESS when absent. */
  runner?: TaskRunner;
  /** Mode of stored packages (before the umask); 0600 by default. */
  fileMode?: number;
}

const EXTRACT_MODULE = new URL("./package_extract.ts", import.meta.url);
const TEMP_PREFIX = ".tmp-";

/** PackageStore on plain files (the layout is described at the top of this file). */
export class FilePackageStore implements PackageStore {
  #dir: string;
  #fileMode: number;
  #limits: ExpansionLimits;
  #runner: TaskRunner;
  /** Extractions under way, by their final directory. */
  #extracting = new Map<string, Promise<void>>();
  /** Temporary directories of the extractions under way. */
  #temps = new Set<string>();

  constructor(dir: string, options: PackageStoreOptions = {}) {
    this.#dir = dir;
    this.#fileMode = options.fileMode ?? 0o600;
    const limits = options.limits ?? {};
    this.#limits = {
      maxBytes: limits.maxBytes ?? DEFAULT_LIMITS.maxBytes,
      maxRatio: limits.maxRatio ?? DEFAULT_LIMITS.maxRatio,
      maxEntries: limits.maxEntries ?? DEFAULT_LIMITS.maxEntries,
    };
    this.#runner = options.runner ?? IN_PROCESS;
  }

  /** Where the zip of `ref` is kept (it may not exist). */
  zipPath(ref: PackageRef): string {
    return this.#pathOf(ref);
  }

  async size(ref: PackageRef): Promise<number | undefined> {
    const info = await this.#stat(ref);
    return info?.size;
  }

  async put(ref: PackageRef, body: ReadableStream<Uint8Array>): Promise<number> {
    const path = this.#pathOf(ref);
    await Deno.mkdir(dirname(path), { recursive: true });
    const temp = join(dirname(path), `.upload-${crypto.randomUUID()}`);
    try {
      using file = await Deno.open(temp, {
        read: true,
        write: true,
        createNew: true,
        mode: this.#fileMode,
      });
      for await (const chunk of body) await writeAll(file, chunk);
      // Loaded on the first upload: the zip reader is not needed until then.
      const { checkZip } = await import("./package_extract.ts");
      await checkZip(file, this.#limits).catch((err) => {
        throw invalid(ref, err);
      });
      await Deno.rename(temp, path);
      return (await file.stat()).size;
    } finally {
      await Deno.remove(temp).catch(() => {}); // already renamed, unless something failed
    }
  }

  async extract(ref: PackageRef): Promise<string> {
    const info = await this.#stat(ref);
    if (!info) throw new NotFoundError(`Package ${packageUri(ref)} does not exist`);
    // Its access time says when it was last used (its modification time names its content).
    await Deno.utime(this.#pathOf(ref), new Date(), info.mtime ?? new Date()).catch(() => {});
    const dir = join(this.#extractedDirOf(ref), versionOf(info));
    if (!this.#extracting.has(dir) && await isDirectory(dir)) return dir;
    // No await between this look-up and the set: concurrent callers share one extraction.
    let extracting = this.#extracting.get(dir);
    if (!extracting) {
      extracting = this.#extractOnce(ref, dir).finally(() => this.#extracting.delete(dir));
      this.#extracting.set(dir, extracting);
    }
    await extracting;
    return dir;
  }

  async copy(ref: PackageRef, targetDir: string): Promise<void> {
    const shared = await this.extract(ref);
    await removeTree(targetDir);
    await Deno.mkdir(dirname(targetDir), { recursive: true });
    try {
      await this.#runner.run(EXTRACT_MODULE, "copyTree", [shared, targetDir]);
    } catch (err) {
      await removeTree(targetDir);
      throw err;
    }
  }

  async prune(): Promise<void> {
    const root = join(this.#dir, "extracted");
    for (const protocol of PackageProtocol.options) {
      for (const name of await listDir(join(root, protocol))) {
        if (!PackageName.safeParse(name).success) continue;
        const ref = { protocol, name };
        const info = await this.#stat(ref);
        const current = info && versionOf(info);
        const dir = this.#extractedDirOf(ref);
        for (const entry of await listDir(dir)) {
          const path = join(dir, entry);
          if (entry === current || this.#temps.has(path) || this.#extracting.has(path)) continue;
          await removeTree(path);
        }
      }
    }
  }

  async list(): Promise<StoredPackage[]> {
    const packages: StoredPackage[] = [];
    for (const protocol of PackageProtocol.options) {
      for (const name of await listDir(join(this.#dir, protocol))) {
        if (!PackageName.safeParse(name).success) continue; // an upload under way
        const ref = { protocol, name };
        const info = await this.#stat(ref);
        if (!info) continue;
        const times = [info.mtime, info.atime].map((t) => t?.getTime() ?? 0);
        packages.push({ ref, size: info.size, lastUsed: Math.max(...times) });
      }
    }
    return packages;
  }

  async delete(ref: PackageRef): Promise<void> {
    const path = this.#pathOf(ref);
    try {
      await Deno.remove(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new NotFoundError(`Package ${packageUri(ref)} does not exist`);
      }
      throw err;
    }
    // Extractions under way finish into a directory nobody names: prune() takes those.
    for (const entry of await listDir(this.#extractedDirOf(ref))) {
      const dir = join(this.#extractedDirOf(ref), entry);
      if (!this.#temps.has(dir) && !this.#extracting.has(dir)) await removeTree(dir);
    }
  }

  async #extractOnce(ref: PackageRef, dir: string): Promise<void> {
    await Deno.mkdir(dirname(dir), { recursive: true });
    const temp = join(dirname(dir), TEMP_PREFIX + crypto.randomUUID());
    this.#temps.add(temp);
    try {
      await this.#runner.run(EXTRACT_MODULE, "extractPackage", [
        this.#pathOf(ref),
        temp,
        this.#limits,
      ]);
      await Deno.rename(temp, dir);
    } catch (err) {
      throw err instanceof Error && err.name === "NotFound"
        ? new NotFoundError(`Package ${packageUri(ref)} does not exist`)
        : invalid(ref, err);
    } finally {
      await removeTree(temp);
      this.#temps.delete(temp);
    }
  }

  async #stat(ref: PackageRef): Promise<Deno.FileInfo | undefined> {
    try {
      const info = await Deno.stat(this.#pathOf(ref));
      return info.isFile ? info : undefined;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
  }

  #extractedDirOf(ref: PackageRef): string {
    return join(this.#dir, "extracted", ref.protocol, ref.name);
  }

  #pathOf(ref: PackageRef): string {
    // Checked again here: a name becomes a path.
    PackageProtocol.parse(ref.protocol);
    PackageName.parse(ref.name);
    return join(this.#dir, ref.protocol, ref.name);
  }
}

/**
 * Names the content of a stored zip: every upload writes a new file, so its inode, size
 * and modification time change with it.
 */
function versionOf(info: Deno.FileInfo): string {
  return `${info.ino ?? 0}-${info.size}-${info.mtime?.getTime() ?? 0}`;
}

/**
 * `err` as the InvalidPackageError of `ref`, when it is one (thrown here, or by a worker,
 * which keeps only its name); other errors pass through.
 */
function invalid(ref: PackageRef, err: unknown): unknown {
  if (!(err instanceof Error) || err.name !== "InvalidPackageError") return err;
  return new InvalidPackageError(`Package ${packageUri(ref)} is invalid: ${err.message}`);
}

/** Removes `path` and everything under it, read-only directories included; absent is fine. */
async function removeTree(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    if (!(err instanceof Deno.errors.PermissionDenied)) throw err;
    // Not root: a read-only directory's entries cannot be removed until it is writable.
    await makeWritable(path);
    await Deno.remove(path, { recursive: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  const info = await Deno.lstat(path);
  if (!info.isDirectory) return;
  await Deno.chmod(path, 0o700);
  for await (const entry of Deno.readDir(path)) await makeWritable(join(path, entry.name));
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}
