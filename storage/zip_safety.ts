/**
 * The rules a package (a zip) must follow to be stored and extracted, as pure functions:
 * no entry may land outside the target directory (no `..` segments, absolute names,
 * backslashes, or symlinks that lead out), and no package may expand past its limits (a
 * zip bomb stops at the byte limit or at the compression-ratio limit, whichever comes
 * first). The package store checks declared sizes when a package is uploaded and counts
 * the real bytes while it extracts.
 */
import { posix, sep } from "node:path";
import { InvalidPackageError } from "./errors.ts";

/** Most bytes one package may expand to, unless configured otherwise (1 GiB). */
export const DEFAULT_MAX_EXTRACTED_BYTES = 1024 ** 3;
/** Most bytes one package may expand to per byte of zip, unless configured otherwise. */
export const DEFAULT_MAX_RATIO = 200;
/** Bytes a package may always expand to, whatever its ratio: tiny zips of text are fine. */
export const RATIO_FREE_BYTES = 1024 * 1024;
/** Most entries one package may hold. */
export const MAX_PACKAGE_ENTRIES = 100_000;
/** Compression methods a package's entries may use: stored (0) and deflate (8). */
export const COMPRESSION_METHODS = [0, 8];
/** Longest symlink target a package may hold. */
export const MAX_LINK_TARGET_BYTES = 4096;

/** How far a package may expand. */
export interface ExpansionLimits {
  /** Most bytes it may expand to. */
  maxBytes: number;
  /** Most bytes per byte of zip it may expand to (past RATIO_FREE_BYTES); 0: no limit. */
  maxRatio: number;
  /** Most entries it may hold. */
  maxEntries: number;
}

/** The limits of a package store that was given none. */
export const DEFAULT_LIMITS: ExpansionLimits = {
  maxBytes: DEFAULT_MAX_EXTRACTED_BYTES,
  maxRatio: DEFAULT_MAX_RATIO,
  maxEntries: MAX_PACKAGE_ENTRIES,
};

/** What the checks need to know of one zip entry (zip.js's Entry has these fields). */
export interface EntryInfo {
  filename: string;
  directory: boolean;
  symlink?: boolean;
  encrypted: boolean;
  compressionMethod: number;
  /** As the zip declares it: the real size is counted while extracting. */
  uncompressedSize: number;
  compressedSize: number;
}

/** An entry to extract, at a checked relative path. */
export interface PlannedEntry<E extends EntryInfo = EntryInfo> {
  /** Relative POSIX path without `.`, `..` or empty segments. */
  path: string;
  kind: "dir" | "file" | "symlink";
  entry: E;
}

/**
 * Checks every entry of a zip of `zipBytes` bytes and returns them in extraction order
 * (directories, files, then symlinks). Throws InvalidPackageError naming the first bad
 * entry, or the limit the declared sizes pass. Symlink targets are checked apart, once
 * read, with checkLinkTarget().
 */
export function planEntries<E extends EntryInfo>(
  entries: E[],
  zipBytes: number,
  limits: ExpansionLimits,
): PlannedEntry<E>[] {
  if (entries.length > limits.maxEntries) {
    throw new InvalidPackageError(
      `it holds ${entries.length} entries: the limit is ${limits.maxEntries}`,
    );
  }
  const kinds = new Map<string, PlannedEntry["kind"]>();
  const planned: PlannedEntry<E>[] = [];
  let declaredBytes = 0;
  for (const entry of entries) {
    const path = entryPath(entry.filename);
    const kind = entry.directory ? "dir" : entry.symlink ? "symlink" : "file";
    if (entry.encrypted) throw new InvalidPackageError(`entry "${path}" is encrypted`);
    if (!COMPRESSION_METHODS.includes(entry.compressionMethod)) {
      throw new InvalidPackageError(
        `entry "${path}" uses compression method ${entry.compressionMethod}: ` +
          `only stored (0) and deflate (8) are supported`,
      );
    }
    if (path === "") {
      if (kind === "dir") continue; // "./": the target itself
      throw new InvalidPackageError(`entry "${entry.filename}" has no name`);
    }
    const seen = kinds.get(path);
    if (seen !== undefined) {
      if (seen === "dir" && kind === "dir") continue;
      throw new InvalidPackageError(`entry "${path}" appears twice`);
    }
    if (
      kind === "symlink" &&
      Math.max(entry.compressedSize, entry.uncompressedSize) > MAX_LINK_TARGET_BYTES
    ) {
      throw new InvalidPackageError(`symlink "${path}" is over ${MAX_LINK_TARGET_BYTES} bytes`);
    }
    kinds.set(path, kind);
    declaredBytes += entry.uncompressedSize;
    checkExpansion(declaredBytes, zipBytes, limits);
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
  const order = { dir: 0, file: 1, symlink: 2 };
  return planned.sort((a, b) => order[a.kind] - order[b.kind]);
}

/**
 * Throws InvalidPackageError if a zip of `zipBytes` bytes that has expanded to
 * `expandedBytes` so far is past a limit: the byte limit, or the ratio limit once past
 * RATIO_FREE_BYTES.
 */
export function checkExpansion(
  expandedBytes: number,
  zipBytes: number,
  limits: Pick<ExpansionLimits, "maxBytes" | "maxRatio">,
): void {
  if (expandedBytes > limits.maxBytes) {
    throw new InvalidPackageError(
      `it expands to more than ${limits.maxBytes} bytes (the limit set by ` +
        `--max-package-extract-bytes)`,
    );
  }
  if (
    limits.maxRatio > 0 && expandedBytes > RATIO_FREE_BYTES &&
    expandedBytes > limits.maxRatio * zipBytes
  ) {
    throw new InvalidPackageError(
      `its compression ratio is over ${limits.maxRatio} (the limit set by ` +
        `--max-package-ratio): its ${zipBytes} bytes expand to more than ` +
        `${limits.maxRatio * zipBytes} bytes`,
    );
  }
}

/** The entry name as a relative path; throws InvalidPackageError if it could leave the target. */
export function entryPath(name: string): string {
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
export function checkLinkTarget(path: string, target: string): void {
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

/**
 * Throws InvalidPackageError unless `realPath`, where the symlink at `path` really leads
 * once every link on the way is followed, is `realRoot` or lies under it.
 */
export function checkResolvedLink(
  path: string,
  target: string,
  realPath: string,
  realRoot: string,
): void {
  if (realPath !== realRoot && !realPath.startsWith(realRoot + sep)) {
    throw new InvalidPackageError(
      `symlink "${path}" points to "${target}", outside the target directory`,
    );
  }
}
