/**
 * The few C library calls the head makes without Deno's file API: where a missing file is
 * the common case, Deno answers with an error object and its stack, which costs more than
 * the call. Each falls back to Deno's API where libc cannot be loaded.
 */

interface Libc {
  symbols: {
    unlink(path: BufferSource): number;
    /** The same calls on a thread of their own, off the event loop. */
    mkfifoOffLoop(path: BufferSource, mode: number): Promise<number>;
    unlinkOffLoop(path: BufferSource): Promise<number>;
  };
}

/**
 * The C library, loaded once with this module, for the life of the process (so that no
 * test that merely calls these sees it as a leak); null where it cannot be.
 */
const libc: Libc | null = (() => {
  try {
    return Deno.dlopen(
      "libc.so.6",
      {
        unlink: { parameters: ["buffer"], result: "i32" },
        mkfifoOffLoop: {
          name: "mkfifo",
          parameters: ["buffer", "u32"],
          result: "i32",
          nonblocking: true,
        },
        unlinkOffLoop: { name: "unlink", parameters: ["buffer"], result: "i32", nonblocking: true },
      } as const,
    );
  } catch {
    return null;
  }
})();

function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text + "\0");
}

/**
 * Makes a fifo at `path` with `mode`, off the event loop (making a file waits for the file
 * system's journal, milliseconds on a busy disk); false if it did not (or libc cannot be
 * loaded).
 */
export async function makeFifo(path: string, mode: number): Promise<boolean> {
  return await libc?.symbols.mkfifoOffLoop(cString(path), mode) === 0;
}

/** As removeFileIfThere(), off the event loop. */
export async function removeFileOffLoop(path: string): Promise<void> {
  if (libc) await libc.symbols.unlinkOffLoop(cString(path));
  else await Deno.remove(path).catch(() => {});
}

/** Removes the file at `path` if it is there (not a directory); never throws. */
export function removeFileIfThere(path: string): void {
  if (libc) {
    libc.symbols.unlink(cString(path));
    return;
  }
  try {
    Deno.removeSync(path);
  } catch {
    // none
  }
}
