/**
 * Reading and extracting package zips. The package store runs `extractPackage()` and
 * `copyTree()` in a worker of the head's pool (their arguments and results are plain
 * data), so inflating a large package never stalls the head's event loop; it reads a
 * zip's entries with `checkZip()` on the way in.
 */
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import { type Entry, Reader, ZipReader } from "@zip.js/zip.js";
import { errorMessage, InvalidPackageError } from "./errors.ts";
import {
  checkExpansion,
  checkLinkTarget,
  checkResolvedLink,
  type ExpansionLimits,
  MAX_LINK_TARGET_BYTES,
  planEntries,
  type PlannedEntry,
} from "./zip_safety.ts";

/**
 * Bytes of compressed input inflated at a time. The platform's DecompressionStream turns
 * each input chunk into one output buffer, of up to ~1,030 times its size for deflate: so
 * this bounds the memory one step of a zip bomb takes, and how far past a limit the count
 * can run, to about 4 MiB. (zip.js's own entry reader, used before, held about twice an
 * entry's size in memory while inflating it; it now only reads the central directory.)
 */
const INFLATE_INPUT_BYTES = 4 * 1024;
/** Bytes read from the zip at a time. */
const READ_BYTES = 64 * 1024;
/** Signature of a zip's local file header. */
const LOCAL_HEADER_SIGNATURE = 0x04034b50;

/** Modes of extracted entries: read-only when shared, writable in a job's own copy. */
const MODES = {
  shared: { dir: 0o555, file: 0o444, executable: 0o555 },
  writable: { dir: 0o755, file: 0o644, executable: 0o755 },
};

/**
 * Checks the zip open in `file` as its extraction would (names, links, declared sizes),
 * without writing anything. Throws InvalidPackageError saying why it is refused.
 */
export async function checkZip(file: Deno.FsFile, limits: ExpansionLimits): Promise<void> {
  await withPlan(file, limits, () => Promise.resolve());
}

/**
 * Extracts the zip at `zipPath` into `targetDir`, which must not exist yet, with read-only
 * modes (files 0444, or 0555 when executable; directories 0555). Counts the real bytes
 * against `limits`. Throws InvalidPackageError for a corrupt, unsafe or too large package,
 * leaving what it wrote for the caller to remove.
 */
export async function extractPackage(
  zipPath: string,
  targetDir: string,
  limits: ExpansionLimits,
): Promise<void> {
  using file = await Deno.open(zipPath, { read: true });
  await withPlan(file, limits, async (plan, zipBytes) => {
    await Deno.mkdir(targetDir, { mode: 0o700 });
    await unpack(file, plan, targetDir, (written) => checkExpansion(written, zipBytes, limits));
    setModes(plan.entries, targetDir, MODES.shared);
  });
}

/**
 * Copies the tree at `source` (an extracted package) to `target`, which must not exist yet,
 * with writable modes (files 0644 or 0755, directories 0755) and symlinks kept as links.
 */
export async function copyTree(source: string, target: string): Promise<void> {
  await Deno.mkdir(target, { mode: MODES.writable.dir });
  for await (const item of Deno.readDir(source)) {
    const from = join(source, item.name);
    const to = join(target, item.name);
    if (item.isSymlink) {
      await Deno.symlink(await Deno.readLink(from), to);
    } else if (item.isDirectory) {
      await copyTree(from, to);
    } else if (item.isFile) {
      const executable = ((await Deno.stat(from)).mode! & 0o111) !== 0;
      await Deno.copyFile(from, to);
      await Deno.chmod(to, executable ? MODES.writable.executable : MODES.writable.file);
    }
  }
}

/** A zip's checked entries in extraction order, and its symlinks' checked targets by path. */
interface Plan {
  entries: PlannedEntry<Entry>[];
  links: Map<string, string>;
}

/** Reads and plans the entries of the zip in `file`, then runs `use` on the plan. */
async function withPlan(
  file: Deno.FsFile,
  limits: ExpansionLimits,
  use: (plan: Plan, zipBytes: number) => Promise<void>,
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
      throw new InvalidPackageError(`it is not a readable zip (${errorMessage(err)})`);
    }
    const plan = planEntries(entries, size, limits);
    const links = new Map<string, string>();
    for (const item of plan) {
      if (item.kind !== "symlink") continue;
      const bytes = await readSmallEntry(file, item.entry, MAX_LINK_TARGET_BYTES);
      const target = new TextDecoder().decode(bytes);
      checkLinkTarget(item.path, target);
      links.set(item.path, target);
    }
    await use({ entries: plan, links }, size);
  } finally {
    await zip.close();
  }
}

/** Writes the planned entries under `root`, calling `check` with the bytes written so far. */
async function unpack(
  zip: Deno.FsFile,
  plan: Plan,
  root: string,
  check: (written: number) => void,
): Promise<void> {
  let written = 0;
  for (const item of plan.entries) {
    const path = join(root, ...item.path.split("/"));
    if (item.kind === "dir") {
      Deno.mkdirSync(path, { recursive: true, mode: 0o700 });
      continue;
    }
    Deno.mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (item.kind === "symlink") {
      Deno.symlinkSync(plan.links.get(item.path)!, path);
      continue;
    }
    // createNew: never write through anything already at this path.
    using file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    await readEntry(zip, item.entry, (chunk) => {
      written += chunk.length;
      check(written);
      writeAllSync(file, chunk);
    });
  }
  // Each link points inside by name; links through links could still lead out.
  const realRoot = await Deno.realPath(root);
  for (const [path, target] of plan.links) {
    let real: string;
    try {
      real = await Deno.realPath(join(root, ...path.split("/")));
    } catch {
      throw new InvalidPackageError(
        `symlink "${path}" points to "${target}", which is not in the package`,
      );
    }
    checkResolvedLink(path, target, real, realRoot);
  }
}

/** Gives every extracted entry and `root` itself its final mode; directories last. */
function setModes(
  plan: PlannedEntry<Entry>[],
  root: string,
  modes: typeof MODES.shared,
): void {
  const dirs = new Set<string>();
  for (const item of plan) {
    const path = join(root, ...item.path.split("/"));
    for (let parent = dirname(path); parent !== root; parent = dirname(parent)) dirs.add(parent);
    if (item.kind === "dir") dirs.add(path);
    if (item.kind === "file") {
      Deno.chmodSync(path, item.entry.executable ? modes.executable : modes.file);
    }
  }
  for (const dir of dirs) Deno.chmodSync(dir, modes.dir);
  Deno.chmodSync(root, modes.dir);
}

/**
 * Streams the content of `entry`, from the zip open in `zip`, to `take` chunk by chunk:
 * stored, or inflated a few KiB of input at a time; checked against the size and CRC-32
 * the zip declares. Throws InvalidPackageError, or what `take` throws.
 */
async function readEntry(
  zip: Deno.FsFile,
  entry: Entry,
  take: (chunk: Uint8Array) => void | Promise<void>,
): Promise<void> {
  const name = entry.filename;
  const header = await readAt(zip, entry.offset, 30);
  const view = new DataView(header.buffer, header.byteOffset, header.length);
  if (header.length < 30 || view.getUint32(0, true) !== LOCAL_HEADER_SIGNATURE) {
    throw new InvalidPackageError(`entry "${name}" has no local header`);
  }
  let position = entry.offset + 30 + view.getUint16(26, true) + view.getUint16(28, true);
  const end = position + entry.compressedSize;
  const stored = entry.compressionMethod === 0;
  const compressed = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (position >= end) return controller.close();
      const bytes = await readAt(zip, position, Math.min(READ_BYTES, end - position));
      if (bytes.length === 0) throw new InvalidPackageError(`entry "${name}" is truncated`);
      position += bytes.length;
      const step = stored ? bytes.length : INFLATE_INPUT_BYTES;
      for (let at = 0; at < bytes.length; at += step) {
        controller.enqueue(bytes.subarray(at, at + step));
      }
    },
  }, { highWaterMark: 0 });
  // DecompressionStream is typed to take any BufferSource; it is given Uint8Arrays.
  const content = stored ? compressed : compressed.pipeThrough(
    new DecompressionStream("deflate-raw") as TransformStream<Uint8Array, Uint8Array>,
  );
  let size = 0;
  let crc = 0;
  try {
    for await (const chunk of content) {
      size += chunk.length;
      if (size > entry.uncompressedSize) {
        throw new InvalidPackageError(`entry "${name}" expands past the size it declares`);
      }
      crc = crc32(chunk, crc);
      await take(chunk);
    }
  } catch (err) {
    if (err instanceof InvalidPackageError) throw err;
    throw new InvalidPackageError(`entry "${name}" cannot be read: ${errorMessage(err)}`);
  }
  if (size !== entry.uncompressedSize || crc !== entry.crc32) {
    throw new InvalidPackageError(
      `entry "${name}" is corrupt: its content does not match its declared size and CRC-32`,
    );
  }
}

/** The content of a small entry; throws InvalidPackageError past `maxBytes`. */
async function readSmallEntry(
  zip: Deno.FsFile,
  entry: Entry,
  maxBytes: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  await readEntry(zip, entry, (chunk) => {
    length += chunk.length;
    if (length > maxBytes) {
      throw new InvalidPackageError(`entry "${entry.filename}" is over ${maxBytes} bytes`);
    }
    chunks.push(chunk.slice());
  });
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Up to `length` bytes of `file` from `position`: fewer only at its end. */
async function readAt(file: Deno.FsFile, position: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(position, Deno.SeekMode.Start);
  let done = 0;
  while (done < length) {
    const n = await file.read(bytes.subarray(done));
    if (n === null) break;
    done += n;
  }
  return bytes.subarray(0, done);
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
    const size = Math.max(0, Math.min(length, this.size - index));
    const read = this.#queue.then(() => readAt(this.#file, index, size));
    this.#queue = read.catch(() => {});
    return read;
  }
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
}
