/** Metrics of the head process itself: memory, open files, event-loop lag. */
import { setTimeout as delay } from "node:timers/promises";
import type { MetricsScope } from "../../kit/metrics.ts";

/** How often the event loop's lag is measured. */
const LAG_INTERVAL_MS = 500;
/** Buckets of the event-loop lag, in seconds. */
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/** Registers the head's RSS and open file descriptors, read from /proc at each scrape. */
export function registerProcessMetrics(metrics: MetricsScope): void {
  const rss = metrics.gauge({
    name: "jobhead_resident_memory_bytes",
    help: "Resident set size of the head process (VmRSS of /proc/self/status).",
    collect: async () => {
      const status = await Deno.readTextFile("/proc/self/status");
      rss.set(parseVmRssBytes(status));
    },
  });
  const fds = metrics.gauge({
    name: "jobhead_open_fds",
    help: "File descriptors the head process has open (entries of /proc/self/fd).",
    collect: async () => {
      let count = 0;
      for await (const _ of Deno.readDir("/proc/self/fd")) count++;
      fds.set(count - 1); // less the one the listing itself opened
    },
  });
}

/** VmRSS of a /proc/PID/status text, in bytes; NaN when absent. */
export function parseVmRssBytes(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : NaN;
}

/**
 * Measures the event loop's lag: how late a 500 ms timer fires past its due time, into
 * a histogram. Runs until `signal` aborts.
 */
export async function watchEventLoopLag(metrics: MetricsScope, signal: AbortSignal): Promise<void> {
  const lag = metrics.histogram({
    name: "jobhead_event_loop_lag_seconds",
    help: "How late a 500 ms timer fires: time the event loop was busy elsewhere.",
    buckets: LAG_BUCKETS,
  });
  while (!signal.aborted) {
    const due = performance.now() + LAG_INTERVAL_MS;
    await delay(LAG_INTERVAL_MS, undefined, { signal }).catch(() => {});
    if (!signal.aborted) lag.observe(Math.max(0, performance.now() - due) / 1000);
  }
}
