/**
 * Polling a condition: only for what no event announces (a process gone, a file made,
 * a deletion, a gauge); each call says why. Anything the head announces is awaited
 * with `waitForEvent` (events.ts) instead.
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { HANG_GUARD_MS } from "./fifos.ts";

/**
 * Calls `probe` every `intervalMs` until it returns something other than undefined or
 * false, and returns that. Throws after `timeoutMs` (a hang guard), naming `what`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  { timeoutMs = HANG_GUARD_MS, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await delay(intervalMs);
  }
}
