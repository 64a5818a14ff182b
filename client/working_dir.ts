/**
 * Packs a local directory as a job's working_dir: walks it, leaving out `.git` and what its
 * `.gitignore` files and the caller's excludes name, names the package by a hash of its
 * content, and zips it only when asked (when the head does not have it yet). It reads
 * the directory with `node:fs`, so it runs in Deno and Node; browsers have no directories.
 * @module
 */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import { join, posix, resolve, sep } from "node:path";
import { TextReader, Uint8ArrayReader, Uint8ArrayWriter, ZipWriter } from "@zip.js/zip.js";
import { WorkingDirError } from "./errors.ts";
import { errorMessage } from "../storage/errors.ts";
import { type IgnoreRule, isIgnored, parseGitignore } from "./gitignore.ts";

/** Default limit on the bytes of the files packed from one working directory. */
export const DEFAULT_MAX_WORKING_DIR_BYTES = 100 * 1024 * 1024;

/** Always left out, before any .gitignore or exclude (which may take it back with `!.git`). */
const DEFAULT_EXCLUDES = [".git"];

/** Options of `packWorkingDir()`. */
export interface PackWorkingDirOptions {
  /** `.gitignore`-style patterns, relative to the directory, applied after its .gitignore files. */
  excludes?: string[];
  /** Most bytes of file content to pack; over it packing fails. */
  maxBytes?: number;
}

/** A working directory, read and hashed, ready to zip. */
export interface WorkingDirPackage {
  /** `<sha256 of the content>.zip`: the same content always gets the same name. */
  name: string;
  /** Files, directories and symlinks packed. */
  entries: number;
  /** Bytes of file content packed. */
  bytes: number;
  /** Paths left out because they are symlinks to nothing in the package, or special files. */
  skipped: string[];
  /** Zips the content. */
  zip(): Promise<Uint8Array>;
}

/** One path to pack. */
interface PackedEntry {
  /** Relative POSIX path. */
  path: string;
  kind: "dir" | "file" | "symlink";
  data?: Uint8Array;
  /** A symlink's target. */
  target?: string;
  executable?: boolean;
  modified: Date;
}

/**
 * Reads `dir` into a package. Throws WorkingDirError when `dir` is not a directory, when
 * its files add up to more than `maxBytes`, or when a symlink in it leads to a directory
 * outside it. A symlink to a file outside is packed as a copy of that file.
 */
export async function packWorkingDir(
  dir: string,
  options: PackWorkingDirOptions = {},
): Promise<WorkingDirPackage> {
  const root = resolve(dir);
  try {
    if (!(await stat(root)).isDirectory()) throw new WorkingDirError(`${dir} is not a directory`);
  } catch (err) {
    if (err instanceof WorkingDirError) throw err;
    throw new WorkingDirError(`working dir ${dir} cannot be read: ${errorMessage(err)}`);
  }
  const walker = new Walker(root, dir, {
    excludes: parseGitignore((options.excludes ?? []).join("\n")),
    maxBytes: options.maxBytes ?? DEFAULT_MAX_WORKING_DIR_BYTES,
    realRoot: await realpath(root),
  });
  await walker.walk("", parseGitignore(DEFAULT_EXCLUDES.join("\n")));
  const entries = walker.finish();
  return {
    name: `${hashEntries(entries)}.zip`,
    entries: entries.length,
    bytes: walker.bytes,
    skipped: walker.skipped,
    zip: () => zipEntries(entries),
  };
}

/** Walks a directory tree, collecting what to pack. */
class Walker {
  bytes = 0;
  skipped: string[] = [];
  #entries: PackedEntry[] = [];
  #root: string;
  #shown: string;
  #options: { excludes: IgnoreRule[]; maxBytes: number; realRoot: string };

  constructor(
    root: string,
    shown: string,
    options: { excludes: IgnoreRule[]; maxBytes: number; realRoot: string },
  ) {
    this.#root = root;
    this.#shown = shown;
    this.#options = options;
  }

  /** Collects directory `rel` ("" for the root) under `rules` (the .gitignore rules above it). */
  async walk(rel: string, rules: IgnoreRule[]): Promise<void> {
    const abs = rel === "" ? this.#root : join(this.#root, ...rel.split("/"));
    const gitignore = await readFile(join(abs, ".gitignore"), "utf8").catch(() => "");
    if (gitignore !== "") rules = [...rules, ...parseGitignore(gitignore, rel)];
    const children = await readdir(abs, { withFileTypes: true });
    children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const ignoreRules = [...rules, ...this.#options.excludes];
    for (const child of children) {
      const path = rel === "" ? child.name : `${rel}/${child.name}`;
      if (isIgnored(ignoreRules, path, child.isDirectory())) continue;
      const childAbs = join(abs, child.name);
      const info = await lstat(childAbs);
      if (child.isSymbolicLink()) {
        await this.#addLink(path, childAbs, info.mtime);
      } else if (child.isDirectory()) {
        this.#entries.push({ path, kind: "dir", modified: info.mtime });
        await this.walk(path, rules);
      } else if (child.isFile()) {
        await this.#addFile(path, childAbs);
      } else {
        this.skipped.push(path); // sockets, FIFOs, devices
      }
    }
  }

  /** The entries, without links to what is not in the package; sorted by path. */
  finish(): PackedEntry[] {
    let entries = this.#entries;
    for (;;) {
      const paths = new Set([".", ...entries.map((e) => e.path)]); // "." is the root
      const dangling = entries.filter((e) =>
        e.kind === "symlink" &&
        !paths.has(posix.normalize(posix.join(posix.dirname(e.path), e.target!)))
      );
      if (dangling.length === 0) break;
      this.skipped.push(...dangling.map((e) => e.path));
      entries = entries.filter((e) => !dangling.includes(e));
    }
    this.skipped.sort();
    return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async #addFile(path: string, abs: string): Promise<void> {
    const info = await stat(abs);
    this.bytes += info.size;
    if (this.bytes > this.#options.maxBytes) {
      throw new WorkingDirError(
        `working dir ${this.#shown} holds more than ${this.#options.maxBytes} bytes ` +
          `(reached at ${path}): leave files out with .gitignore or excludes`,
      );
    }
    const data = new Uint8Array(await readFile(abs));
    this.#entries.push({
      path,
      kind: "file",
      data,
      executable: (info.mode & 0o111) !== 0,
      modified: info.mtime,
    });
  }

  /** A link inside by name and in fact is packed as a link; one to a file outside, as a copy. */
  async #addLink(path: string, abs: string, modified: Date): Promise<void> {
    const target = await readlink(abs);
    let real: string;
    try {
      real = await realpath(abs);
    } catch {
      this.skipped.push(path); // leads nowhere
      return;
    }
    const lexical = posix.normalize(posix.join(posix.dirname(path), target));
    const namedInside = !posix.isAbsolute(target) && lexical !== ".." && !lexical.startsWith("../");
    const { realRoot } = this.#options;
    if (namedInside && (real === realRoot || real.startsWith(realRoot + sep))) {
      this.#entries.push({ path, kind: "symlink", target, modified });
    } else if ((await stat(abs)).isFile()) {
      await this.#addFile(path, abs);
    } else {
      throw new WorkingDirError(
        `${path} in working dir ${this.#shown} is a symlink to ${target}, outside it: ` +
          `exclude it or replace it with a copy`,
      );
    }
  }
}

/** SHA-256 over every entry's kind, path, mode and content, in path order. */
function hashEntries(entries: PackedEntry[]): string {
  const hash = createHash("sha256");
  for (const entry of entries) {
    const content = entry.data ?? new TextEncoder().encode(entry.target ?? "");
    const mode = entry.kind === "file" ? (entry.executable ? "755" : "644") : "-";
    hash.update(`${entry.kind}\0${entry.path}\0${mode}\0${content.length}\0`);
    hash.update(content);
  }
  return hash.digest("hex");
}

async function zipEntries(entries: PackedEntry[]): Promise<Uint8Array> {
  const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
  for (const entry of entries) {
    const lastModDate = entry.modified;
    if (entry.kind === "dir") {
      await zip.add(`${entry.path}/`, undefined, { directory: true, lastModDate });
    } else if (entry.kind === "symlink") {
      await zip.add(entry.path, new TextReader(entry.target!), { unixMode: 0o120777, lastModDate });
    } else {
      await zip.add(entry.path, new Uint8ArrayReader(entry.data!), {
        unixMode: entry.executable ? 0o100755 : 0o100644,
        lastModDate,
      });
    }
  }
  return await zip.close();
}
