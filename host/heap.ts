/**
 * The head's V8 heap once it has started. Loading the head's modules allocates much that
 * lives on (code, schemas, routes), and V8 answers a young generation whose objects all
 * survive by growing it: the head was serving with 12-16 MB of young generation of which
 * it used under 1 MB. V8 gives that back by itself only once it sees the process idle
 * (its memory reducer: 30-40 s after start, measured on Deno 2.9).
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** V8's `gc()`, with the options of its `--expose-gc` extension. */
type CollectGarbage = (options: { type: "major"; execution: "sync" }) => void;

/**
 * Runs one full garbage collection now, which also shrinks the young generation to what
 * is used. V8 offers `gc()` only to contexts made while `--expose-gc` is set: the flag is
 * set for the moment it takes to make one (Workers and jobs never see it), and cleared
 * again unless the head was started with it. Returns false where V8 offers no `gc()`.
 */
export function collectStartupGarbage(): boolean {
  let gc = (globalThis as { gc?: CollectGarbage }).gc;
  if (!gc) {
    setFlagsFromString("--expose-gc");
    try {
      gc = runInNewContext("typeof gc === 'function' ? gc : undefined");
    } catch {
      // no contexts of our own: nothing to collect with
    } finally {
      setFlagsFromString("--no-expose-gc");
    }
  }
  if (!gc) return false;
  gc({ type: "major", execution: "sync" });
  return true;
}
