/**
 * The few C library calls the head makes without Deno's file API: where a missing file is
 * the common case, Deno answers with an error object and its stack, which costs more than
 * the call. Where libc cannot be loaded, a removal goes through Deno's API, and a fifo is
 * not made (the caller makes it otherwise).
 */

interface Libc {
  symbols: {
    mkfifo(path: BufferSource, mode: number): number;
    unlink(path: BufferSource): number;
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
        mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
        unlink: { parameters: ["buffer"], result: "i32" },
      } as const,
    );
  } catch {
    return null;
  }
})();

function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(text + "\0");
}

/** Makes a fifo at `path` with `mode`; false if it did not (or libc cannot be loaded). */
export function makeFifo(path: string, mode: number): boolean {
  return libc?.symbols.mkfifo(cString(path), mode) === 0;
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
