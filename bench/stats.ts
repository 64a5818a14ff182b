/** Small numeric and timing helpers for the benchmark. @module */

import { setTimeout as delay } from "node:timers/promises";

/** A measured figure next to its target: `ok` says whether the target is met. */
export interface Figure {
  value: number;
  max?: number;
  min?: number;
  ok: boolean;
}

/** A figure whose target is an upper bound. */
export function atMost(value: number, max: number): Figure {
  return { value: round(value), max, ok: value <= max };
}

/** A figure whose target is a lower bound. */
export function atLeast(value: number, min: number): Figure {
  return { value: round(value), min, ok: value >= min };
}

/** Rounds to three decimals (µs when the unit is ms). */
export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Nearest-rank percentile of `values` (p in 0..100); NaN for no values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** p50, p99, mean, min and max of a sample, rounded, with its size. */
export function summarize(values: number[]): Record<string, number> {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return {
    n: values.length,
    p50: round(percentile(values, 50)),
    p99: round(percentile(values, 99)),
    mean: round(mean),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
  };
}

/** Wall-clock time now in epoch nanoseconds, at sub-microsecond resolution. */
export function epochNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep input order. */
export async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Polls `check` every `intervalMs` until it returns true.
 * Throws when `timeoutMs` passes first; the message names `what` and `describe()`'s state.
 */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: { intervalMs: number; timeoutMs: number; describe?: () => string | Promise<string> },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) {
      const state = options.describe ? `: ${await options.describe()}` : "";
      throw new Error(`Timed out after ${options.timeoutMs} ms waiting for ${what}${state}`);
    }
    await delay(options.intervalMs);
  }
}
