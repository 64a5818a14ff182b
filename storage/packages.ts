/**
 * The package store: zip archives uploaded as jobs' working directories
 * (`PUT /api/packages/{protocol}/{name}`), one file each, checked on the way in and
 * extracted into a job's own directory on the way out. No entry may land outside that
 * directory: names with `..` segments, absolute names and symlinks that lead out of it
 * are rejected.
 */
import { dirname, join, posix, sep } from "node:path";
import { type Entry, type FileEntry, Reader, ZipReader } from "@zip.js/zip.js";
import { z } from "zod";
import { InvalidPackageError, NotFoundError } from "./errors.ts";

/** Where an uploaded package lives: `pkg` (jobhead's clients) or `gcs` (Ray's). */
export const PackageProtocol = z.enum(["pkg", "gcs"]);
export type PackageProtocol = z.infer<typeof PackageProtocol>;

/** A package name: it names a file, so it is restricted like a job id. */
export const PackageName = z.string().regex(
  /^(?!\.)[A-Za-z0-9_.-]{1,128}$/,
  "must be 1-128 characters of A-Z a-z 0-9 _ . - and not start with '.'",
);

/** One package, written `<protocol>://<name>`. */
export interface PackageRef {
  protocol: PackageProtocol;
  name: string;
}

/** `<protocol>://<name>`. */
export function packageUri(ref: PackageRef): string {
  return `${ref.protocol}://${ref.name}`;
}

/** The package a `pkg://…` or `gcs://…` URI names; undefined for another URI or a bad name. */
export function parsePackageUri(uri: string): PackageRef | undefined {
  const match = /^([a-z]+):\/\/(.*)$/.exec(uri);
  const protocol = PackageProtocol.safeParse(match?.[1]);
  if (!match || !protocol.success || !PackageName.safeParse(match[2]).success) return undefined;
  return { protocol: protocol.data, name: match[2] };
}

/** Most bytes one package may unpack to (a zip bomb stops here). */
export const MAX_EXTRACTED_BYTES = 2 * 1024 ** 3;
/** Most entries one package may hold. */
export const MAX_PACKAGE_ENTRIES = 100_000;
/** Longest symlink target a package may hold. */
const MAX_LINK_TARGET_BYTES = 4096;

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
   * Extracts the package into `targetDir`, replacing what was there. Throws NotFoundError
   * for a missing package and InvalidPackageError for a corrupt or unsafe one (then
   * `targetDir` is removed).
   */
  extract(ref: PackageRef, targetDir: string): Promise<void>;
}

/** Limits of a FilePackageStore, and the mode of its files. */
export interface PackageLimits {
  /** Most bytes one package may unpack to. */
  maxExtractedBytes?: number;
  /** Most entries one package may hold. */
  maxEntries?: number;
  /** Mode of stored packages (before the umask); 0600 by default. */
  fileMode?: number;
}

/** PackageStore on plain files: `<dir>/<protocol>/<name>`. */
export class FilePackageStore implements PackageStore {
  #dir: string;
  #maxBytes: number;
  #maxEntries: number;
  #fileMode: number;

  constructor(dir: string, limits: PackageLimits = {}) {
    this.#dir = dir;
    this.#fileMode = limits.fileMode ?? 0o600;
    this.#maxBytes = limits.maxExtractedBytes ?? MAX_EXTRACTED_BYTES;
    this.#maxEntries = limits.maxEntries ?? MAX_PACKAGE_ENTRIES;
  }

  async size(ref: PackageRef): Promise<number | undefined> {
    try {
      const info = await Deno.stat(this.#pathOf(ref));
      return info.isFile ? info.size : undefined;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
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
      await this.#check(ref, file);
      await Deno.rename(temp, path);
      return (await file.stat()).size;
    } finally {
      await Deno.remove(temp).catch(() => {}); // already renamed, unless something failed
    }
  }

  async extract(ref: PackageRef, targetDir: string): Promise<void> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#pathOf(ref), { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new NotFoundError(`Package ${packageUri(ref)} does not exist`);
      }
      throw err;
    }
    using _file = file;
    await Deno.remove(targetDir, { recursive: true }).catch(ignoreNotFound);
    await Deno.mkdir(targetDir, { recursive: true });
    try {
      await this.#withEntries(ref, file, (plan) => unpack(plan, targetDir, this.#maxBytes));
    } catch (err) {
      await Deno.remove(targetDir, { recursive: true }).catch(ignoreNotFound);
      throw err;
    }
  }

  /** Checks that `file` is a zip this store would extract. */
  #check(ref: PackageRef, file: Deno.FsFile): Promise<void> {
    return this.#withEntries(ref, file, () => Promise.resolve());
  }

  /** Reads and plans the entries of the zip in `file`, then runs `use` on the plan. */
  async #withEntries(
    ref: PackageRef,
    file: Deno.FsFile,
    use: (plan: PlannedEntry[]) => Promise<void>,
  ): Promise<void> {
    const size = (await file.stat()).size;
    const zip = new ZipReader(new FileReader(file, size), {
      useWebWorkers: false,
      filenameValidation: "tolerant", // planEntries() checks names, and says why one is bad
      checkSignature: true,
    });
    try {
      let entries: Entry[];
      try {
        entries = await zip.getEntries();
      } catch (err) {
        throw new InvalidPackageError(`it is not a readable zip (${messageOf(err)})`);
      }
      const limits = { maxBytes: this.#maxBytes, maxEntries: this.#maxEntries };
      await use(await planEntries(entries, limits));
    } catch (err) {
      if (!(err instanceof InvalidPackageError)) throw err;
      throw new InvalidPackageError(`Package ${packageUri(ref)} is invalid: ${err.message}`);
    } finally {
      await zip.close();
    }
  }

  #pathOf(ref: PackageRef): string {
    // Checked again here: a name becomes a path.
    PackageProtocol.parse(ref.protocol);
    PackageName.parse(ref.name);
    return join(this.#dir, ref.protocol, ref.name);
  }
}

/** An entry to extract, at a checked relative path. */
interface PlannedEntry {
  /** Relative POSIX path without `.`, `..` or empty segments. */
  path: string;
  kind: "dir" | "file" | "symlink";
  entry: Entry;
  /** A symlink's target. */
  target?: string;
}

/**
 * Checks every entry of a zip and returns them in extraction order (directories, files,
 * then symlinks). Throws InvalidPackageError naming the first bad entry.
 */
async function planEntries(
  entries: Entry[],
  limits: { maxBytes: number; maxEntries: number },
): Promise<PlannedEntry[]> {
  if (entries.length > limits.maxEntries) {
    throw new InvalidPackageError(
      `it holds ${entries.length} entries: the limit is ${limits.maxEntries}`,
    );
  }
  const kinds = new Map<string, PlannedEntry["kind"]>();
  const planned: PlannedEntry[] = [];
  let declaredBytes = 0;
  for (const entry of entries) {
    const path = entryPath(entry.filename);
    const kind = entry.directory ? "dir" : entry.symlink ? "symlink" : "file";
    if (entry.encrypted) throw new InvalidPackageError(`entry "${path}" is encrypted`);
    if (path === "") {
      if (kind === "dir") continue; // "./": the target itself
      throw new InvalidPackageError(`entry "${entry.filename}" has no name`);
    }
    const seen = kinds.get(path);
    if (seen !== undefined) {
      if (seen === "dir" && kind === "dir") continue;
      throw new InvalidPackageError(`entry "${path}" appears twice`);
    }
    kinds.set(path, kind);
    declaredBytes += entry.uncompressedSize;
    if (declaredBytes > limits.maxBytes) throw tooBig(limits.maxBytes);
    planned.push({ path, kind, entry });
  }
  for (const { path } of planned) {
    // Nothing is written through a file or a symlink of the package itself.
    for (let parent = posix.dirname(path); parent !== "."; parent = posix.dirname(parent)) {
      const kind = kinds.get(parent);
      if (kind !== undefined && kind !== "dir") {
        throw new InvalidPackageError(`entry "${path}" lies under "${parent}", a ${kind}`);
      }
    }
  }
  for (const item of planned) {
    if (item.kind !== "symlink") continue;
    const bytes = await readEntry(item.entry as FileEntry, MAX_LINK_TARGET_BYTES);
    item.target = new TextDecoder().decode(bytes);
    checkLinkTarget(item.path, item.target);
  }
  const order = { dir: 0, file: 1, symlink: 2 };
  return planned.sort((a, b) => order[a.kind] - order[b.kind]);
}

/** The entry name as a relative path; throws InvalidPackageError if it could leave the target. */
function entryPath(name: string): string {
  if (name.includes("\0")) throw new InvalidPackageError(`entry "${name}" has a NUL in its name`);
  if (name.includes("\\")) {
    throw new InvalidPackageError(`entry "${name}" has a backslash in its name`);
  }
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new InvalidPackageError(`entry "${name}" is an absolute path`);
  }
  const segments = name.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) {
    throw new InvalidPackageError(`entry "${name}" escapes the target directory`);
  }
  return segments.join("/");
}

/** Throws InvalidPackageError unless the link at `path` points inside the target, by name. */
function checkLinkTarget(path: string, target: string): void {
  if (target === "" || target.includes("\0")) {
    throw new InvalidPackageError(`symlink "${path}" has an empty or invalid target`);
  }
  if (target.startsWith("/") || target.includes("\\") || /^[A-Za-z]:/.test(target)) {
    throw new InvalidPackageError(`symlink "${path}" points to "${target}", an absolute path`);
  }
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === ".." || resolved.startsWith("../")) {
    throw new InvalidPackageError(
      `symlink "${path}" points to "${target}", outside the target directory`,
    );
  }
}

/** Writes the planned entries under `root`; every byte counts against `maxBytes`. */
async function unpack(plan: PlannedEntry[], root: string, maxBytes: number): Promise<void> {
  const budget = { left: maxBytes, max: maxBytes };
  for (const item of plan) {
    const path = join(root, ...item.path.split("/"));
    if (item.kind === "dir") {
      await Deno.mkdir(path, { recursive: true, mode: 0o755 });
      continue;
    }
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o755 });
    if (item.kind === "symlink") {
      await Deno.symlink(item.target!, path);
      continue;
    }
    const mode = item.entry.executable ? 0o755 : 0o644;
    // createNew: never write through anything already at this path.
    using file = await Deno.open(path, { write: true, createNew: true, mode });
    await copyEntry(item.entry as FileEntry, file, budget);
  }
  // Each link points inside by name; links through links could still lead out.
  const realRoot = await Deno.realPath(root);
  for (const item of plan) {
    if (item.kind !== "symlink") continue;
    let real: string;
    try {
      real = await Deno.realPath(join(root, ...item.path.split("/")));
    } catch {
      throw new InvalidPackageError(
        `symlink "${item.path}" points to "${item.target}", which is not in the package`,
      );
    }
    if (real !== realRoot && !real.startsWith(realRoot + sep)) {
      throw new InvalidPackageError(
        `symlink "${item.path}" points to "${item.target}", outside the target directory`,
      );
    }
  }
}

/** Decompresses `entry` into `file`, taking its bytes from `budget`. */
async function copyEntry(
  entry: FileEntry,
  file: Deno.FsFile,
  budget: { left: number; max: number },
): Promise<void> {
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      budget.left -= chunk.length;
      if (budget.left < 0) throw tooBig(budget.max);
      await writeAll(file, chunk);
    },
  });
  try {
    await entry.getData(sink);
  } catch (err) {
    if (err instanceof InvalidPackageError) throw err;
    throw new InvalidPackageError(`entry "${entry.filename}" cannot be read: ${messageOf(err)}`);
  }
}

/** The content of a small entry; throws InvalidPackageError past `maxBytes`. */
async function readEntry(entry: FileEntry, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      length += chunk.length;
      if (length > maxBytes) {
        throw new InvalidPackageError(`entry "${entry.filename}" is over ${maxBytes} bytes`);
      }
      chunks.push(chunk);
    },
  });
  try {
    await entry.getData(sink);
  } catch (err) {
    if (err instanceof InvalidPackageError) throw err;
    throw new InvalidPackageError(`entry "${entry.filename}" cannot be read: ${messageOf(err)}`);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Random access to a zip file for zip.js; reads run one at a time (they share the offset). */
class FileReader extends Reader<Deno.FsFile> {
  #file: Deno.FsFile;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(file: Deno.FsFile, size: number) {
    super(file);
    this.#file = file;
    this.size = size;
  }

  override readUint8Array(index: number, length: number): Promise<Uint8Array> {
    const read = this.#queue.then(async () => {
      const bytes = new Uint8Array(Math.max(0, Math.min(length, this.size - index)));
      await this.#file.seek(index, Deno.SeekMode.Start);
      let done = 0;
      while (done < bytes.length) {
        const n = await this.#file.read(bytes.subarray(done));
        if (n === null) break;
        done += n;
      }
      return bytes.subarray(0, done);
    });
    this.#queue = read.catch(() => {});
    return read;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

function tooBig(maxBytes: number): InvalidPackageError {
  return new InvalidPackageError(`it unpacks to more than ${maxBytes} bytes`);
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof Deno.errors.NotFound)) throw err;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
