/**
 * Files kept for reuse: actors' fifos. Making a file allocates an inode, which on a file
 * system with much churn costs far more than renaming one (measured on the ext4 of our
 * 2-core machines: mkfifo 0.8-0.9 ms, a rename in the same directory 25-35 µs), and every
 * launch needs a fifo, made on the head's event loop. A fifo that no process holds open
 * carries nothing over, so an ended actor's fifo, once none of its processes is left, is
 * renamed aside and renamed into place for a later launch. (Exit files are not kept:
 * emptying one for its next use took the head 0.2-0.3 ms, more than the supervisor's
 * making it.)
 */
import { join } from "node:path";
import { removeFileIfThere } from "../kit/libc.ts";

/** Options of a `SpareFiles`. */
export interface SpareFilesOptions {
  /** Names of spares: `<prefix><n>`, a prefix no other file of the directory has. */
  prefix: string;
  /** Spares kept at most; past it, given files are removed. */
  max?: number;
  /** Makes a new file at a path when there is no spare; false when it could not. */
  make: (path: string) => boolean;
}

/** The spares of one kind in one directory, which this pool alone renames in and out. */
export class SpareFiles {
  #dir: string;
  #prefix: string;
  #max: number;
  #make: (path: string) => boolean;
  #spares: string[] = [];
  #next = 0;

  /** Spares live in `dir`. */
  constructor(dir: string, options: SpareFilesOptions) {
    this.#dir = dir;
    this.#prefix = options.prefix;
    this.#max = options.max ?? 64;
    this.#make = options.make;
  }

  /** How many spares the pool holds. */
  get size(): number {
    return this.#spares.length;
  }

  /**
   * Puts a file at `path` (in the same file system), replacing what is there: a spare
   * renamed there, else a new one made. Returns false when neither was done (no spare,
   * nothing made): the caller does without.
   */
  take(path: string): boolean {
    for (let spare = this.#spares.pop(); spare !== undefined; spare = this.#spares.pop()) {
      try {
        Deno.renameSync(spare, path);
        return true;
      } catch {
        // gone with its directory: try the next, or make one
      }
    }
    return this.#make(path);
  }

  /**
   * Keeps the file at `path` for a later `take()`. Only for a file no process holds open
   * or will open again (every process of its actor is gone); past the pool's size, or
   * where it cannot be renamed, it is removed.
   */
  give(path: string): void {
    if (this.#spares.length < this.#max) {
      const spare = join(this.#dir, `${this.#prefix}${this.#next++}`);
      try {
        Deno.renameSync(path, spare);
        this.#spares.push(spare);
        return;
      } catch {
        // not there any more, or the directory is gone
      }
    }
    removeFileIfThere(path);
  }

  /** Removes the spares an earlier head left in the directory (which this pool does not know). */
  clear(): void {
    this.#spares = [];
    try {
      for (const entry of Deno.readDirSync(this.#dir)) {
        if (entry.name.startsWith(this.#prefix)) removeFileIfThere(join(this.#dir, entry.name));
      }
    } catch {
      // no directory: no spares
    }
  }
}
