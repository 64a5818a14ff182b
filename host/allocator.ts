/**
 * How the head's C heap hands memory back. Deno allocates through glibc's malloc, whose
 * heap only shrinks from its top: what a burst of traffic leaves free below long-lived
 * allocations stays resident.
 */

/** mallopt(3): allocations of at least this many bytes get a mapping of their own. */
const M_MMAP_THRESHOLD = -3;
/** The head's large buffers: log frames (32 KiB), the gate's pipe buffers, socket writes. */
export const MMAP_THRESHOLD_BYTES = 32 * 1024;

/**
 * Gives every allocation of MMAP_THRESHOLD_BYTES or more its own mapping, which goes back to
 * the system when it is freed. glibc otherwise takes such buffers from its heap (up to
 * 32 MiB by its own sliding threshold) and keeps the heap's high-water mark: 500 stalled log
 * tails, each fed frames until its socket filled, left 50-90 MB of free but resident heap
 * behind. Returns false where glibc cannot be reached through FFI.
 */
export function returnLargeBuffersToTheSystem(): boolean {
  let libc;
  try {
    libc = Deno.dlopen(
      "libc.so.6",
      {
        mallopt: { parameters: ["i32", "i32"], result: "i32" },
      } as const,
    );
  } catch {
    return false; // no FFI (permissions), or not glibc
  }
  try {
    return libc.symbols.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1;
  } finally {
    libc.close();
  }
}
