/** Waiting on a condition the API reports: for states that no event announces to a test. */
import { setTimeout as delay } from "node:timers/promises";

/**
 * Calls `probe` every `intervalMs` until it returns something other than undefined or
 * false, and returns that. Throws after `timeoutMs`, naming `what`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  { timeoutMs = 15_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
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
