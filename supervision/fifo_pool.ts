/**
 * Fifos kept for reuse. Making a fifo allocates an inode, which on a file system with much
 * churn costs far more than renaming one (measured on the ext4 of our 2-core machines:
 * mkfifo 0.8-0.9 ms, a rename in the same directory 25 µs), and the head makes one for
 * every launch, on its event loop. A fifo that no process holds open carries nothing
 * over, so an ended actor's fifo, once none of its processes is left, is renamed aside and
 * renamed again into place for a later launch.
 */
import { join } from "node:path";
import { makeFifo, removeFileIfThere } from "../kit/libc.ts";

/** Spare fifos are named `.spare-<n>`: no actor's fifo (`<actor id>.fifo`) starts with a dot. */
const SPARE_PREFIX = ".spare-";

/** The spare fifos of one directory, which this pool alone renames in and out. */
export class FifoPool {
  #dir: string;
  #max: number;
  #spares: string[] = [];
  #next = 0;

  /** Spares live in `dir`, at most `max` of them. */
  constructor(dir: string, { max = 64 }: { max?: number } = {}) {
    this.#dir = dir;
    this.#max = max;
  }

  /** How many spares the pool holds. */
  get size(): number {
    return this.#spares.length;
  }

  /**
   * Puts a fifo at `path` (in the pool's directory): a spare renamed there, else a new one
   * with `mode`. Returns false when neither could be done (libc missing, the directory
   * gone): the caller makes it otherwise.
   */
  take(path: string, mode: number): boolean {
    for (let spare = this.#spares.pop(); spare !== undefined; spare = this.#spares.pop()) {
      try {
        Deno.renameSync(spare, path);
        return true;
      } catch {
        // gone with its directory: try the next, or make one
      }
    }
    return makeFifo(path, mode);
  }

  /**
   * Keeps the fifo at `path` for a later `take()`. Only for a fifo no process holds open
   * or will open again (every process of its actor is gone); past the pool's size, or
   * where the rename fails, it is removed.
   */
  give(path: string): void {
    if (this.#spares.length < this.#max) {
      const spare = join(this.#dir, `${SPARE_PREFIX}${this.#next++}`);
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

  /**
   * Removes the spares an earlier head left in the directory (which this pool does not
   * know), and forgets its own: for a start, and after the directory was made again.
   */
  clear(): void {
    this.#spares = [];
    try {
      for (const entry of Deno.readDirSync(this.#dir)) {
        if (entry.name.startsWith(SPARE_PREFIX)) removeFileIfThere(join(this.#dir, entry.name));
      }
    } catch {
      // no directory: no spares
    }
  }
}
