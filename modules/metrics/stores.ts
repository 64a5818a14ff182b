/** Store metrics: the latency of every write through the job and actor stores. */
import type { Job, JobStatus } from "../../kit/job_record.ts";
import type { ActorStore } from "../../storage/actors.ts";
import type { JobStore } from "../../storage/jobs.ts";
import type { Histogram, MetricsScope } from "../../kit/metrics.ts";

/** Buckets of store writes, in seconds: KV commits take about a millisecond. */
const WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The stores whose writes are timed. */
export interface TimedStores {
  jobs: JobStore<Job>;
  actors: ActorStore;
}

/** Wraps stores so their writes are timed; `onJobDeleted` hears of a deleted job, and its status. */
export function timeStoreWrites<T extends TimedStores>(
  metrics: MetricsScope,
  stores: T,
  onJobDeleted: (id: string, status: JobStatus) => void,
): T {
  const writes = metrics.histogram({
    name: "jobhead_store_write_duration_seconds",
    help: "Time of a write to the KV store, by store and operation (failed writes too).",
    labelNames: ["store", "op"],
    buckets: WRITE_BUCKETS,
  });
  const jobs = stores.jobs;
  return {
    ...stores,
    jobs: timed(jobs, "jobs", ["create", "update"], writes, {
      delete: async (id: string) => {
        const before = await jobs.get(id);
        await time(writes, { store: "jobs", op: "delete" }, () => jobs.delete(id));
        if (before) onJobDeleted(id, before.status);
      },
    }),
    actors: timed(stores.actors, "actors", ["put", "delete"], writes, {}),
  };
}

/**
 * `target` with its methods `ops` timed and `overrides` in place; every other property
 * passes through, so methods added to a store later keep working.
 */
function timed<T extends object>(
  target: T,
  store: string,
  ops: string[],
  writes: Histogram,
  overrides: Record<string, unknown>,
): T {
  return new Proxy(target, {
    get(object, property) {
      if (typeof property === "string" && property in overrides) return overrides[property];
      const value = Reflect.get(object, property, object);
      if (typeof value !== "function") return value;
      if (typeof property !== "string" || !ops.includes(property)) return value.bind(object);
      return (...args: unknown[]) =>
        time(writes, { store, op: property }, () => value.apply(object, args));
    },
  });
}

async function time<R>(
  writes: Histogram,
  labels: Record<string, string>,
  write: () => Promise<R>,
): Promise<R> {
  const started = performance.now();
  try {
    return await write();
  } finally {
    writes.observe((performance.now() - started) / 1000, labels);
  }
}
