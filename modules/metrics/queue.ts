/** Queue metrics: how many jobs wait for capacity, how long they waited, how many expired. */
import type { MetricsScope } from "../../kit/metrics.ts";
import type { Scheduler } from "../../scheduler/scheduler.ts";

/** Buckets of the queue wait, in seconds: from a free slot (ms) to the 900 s start timeout. */
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

/** Registers the queue's series on `scheduler`; returns what stops listening to it. */
export function watchQueue(metrics: MetricsScope, scheduler: Scheduler): () => void {
  const depth = metrics.gauge({
    name: "jobhead_queue_depth",
    help: "Jobs waiting in the scheduler's queue for capacity or a running slot.",
    collect: () => depth.set(scheduler.queueLength),
  });
  const wait = metrics.histogram({
    name: "jobhead_queue_wait_seconds",
    help: "Time a job waited in the queue (since its submission) until it was placed to start.",
    buckets: WAIT_BUCKETS,
  });
  const expiries = metrics.counter({
    name: "jobhead_queue_expiries_total",
    help: "Jobs that waited in the queue past their start timeout and failed.",
  });
  return scheduler.onQueueExit((exit) => {
    if (exit.outcome === "placed") wait.observe(exit.waitedMs / 1000);
    else expiries.inc();
  });
}
