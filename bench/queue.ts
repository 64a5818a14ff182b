/**
 * The `queue` section of `deno task bench`: 10,000 `true` jobs of `entrypoint_num_cpus: 1`
 * on a head with `--num-cpus 2`. Measures the submit latency of a job that queues with 100
 * and with 10,000 jobs ahead of it, the head's RSS with 10,000 queued, the sustained rate
 * at which the queue drains, the end-to-end admission latency (a job ends → the next one's
 * process runs), and the scheduler's own decision time over a queue of 10,000.
 * @module
 */
import { admit, type PendingJob, queueOrder } from "../scheduler/admission.ts";
import type { RunningHead } from "../tests/harness.ts";
import { readMemory } from "./procs.ts";
import { REQUEST_TIMEOUT_MS, submit } from "./api.ts";
import { atMost, epochNs, mapPool, round, summarize, waitUntil } from "./stats.ts";

/** Targets from the scheduler issue, for a 2-core machine. */
export const QUEUE_TARGETS = {
  admissionP50Ms: 5,
  rssWithQueueKb: 150 * 1024,
} as const;

/** The head's flags for this section. */
export const QUEUE_HEAD_ARGS = ["--num-cpus", "2"];

const SUBMIT_CONCURRENCY = 16;

/** What the section gets from the benchmark's runner. */
export interface QueueContext {
  head: RunningHead;
  serverPid: number;
  quick: boolean;
  log: (message: string) => void;
}

async function cluster(head: RunningHead): Promise<{ running: number; pending: number }> {
  const res = await head.fetch("/api/cluster", { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (res.status !== 200) throw new Error(`GET /api/cluster answered ${res.status}`);
  return await res.json();
}

/** Times `count` sequential submits of queued `true` jobs (CPU 1 each). */
async function timedSubmits(head: RunningHead, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await submit(head, { entrypoint: "true", entrypoint_num_cpus: 1 });
    latencies.push(performance.now() - t0);
  }
  return latencies;
}

/** Runs the section; figures as JSON. */
export async function benchQueue(ctx: QueueContext): Promise<Record<string, unknown>> {
  const { head, log } = ctx;
  const total = ctx.quick ? 1_000 : 10_000;
  const dir = await Deno.makeTempDir({ prefix: "jobhead-bench-queue-" });
  try {
    // Two jobs that hold both CPUs until told to end: everything else queues behind them.
    const blockers: string[] = [];
    for (const name of ["a", "b"]) {
      const fifo = `${dir}/${name}.go`;
      await new Deno.Command("mkfifo", { args: [fifo] }).output();
      blockers.push(fifo);
      await submit(head, { entrypoint: `read x <'${fifo}'`, entrypoint_num_cpus: 1 });
    }
    await waitUntil("the blockers to run", async () => (await cluster(head)).running === 2, {
      intervalMs: 10,
      timeoutMs: 10_000,
    });

    log(`queue: 100 queued, then 100 timed submits`);
    await mapPool(
      Array(100).fill(0),
      SUBMIT_CONCURRENCY,
      () => submit(head, { entrypoint: "true", entrypoint_num_cpus: 1 }),
    );
    const at100 = await timedSubmits(head, 100);
    const filler = total - 300;
    log(`queue: ${filler} more submits, ${SUBMIT_CONCURRENCY} in flight`);
    const t0 = performance.now();
    await mapPool(
      Array(filler).fill(0),
      SUBMIT_CONCURRENCY,
      () => submit(head, { entrypoint: "true", entrypoint_num_cpus: 1 }),
    );
    const submitRate = filler / ((performance.now() - t0) / 1000);
    const atFull = await timedSubmits(head, 100);
    const queued = (await cluster(head)).pending;
    const rssKb = readMemory(ctx.serverPid).rssKb;

    log(`queue: draining ${queued} jobs on 2 CPUs`);
    const drainStart = performance.now();
    for (const fifo of blockers) await Deno.writeTextFile(fifo, "go\n");
    await waitUntil("the queue to drain", async () => {
      const state = await cluster(head);
      return state.pending === 0 && state.running === 0;
    }, { intervalMs: 100, timeoutMs: 30 * 60_000 });
    const drainS = (performance.now() - drainStart) / 1000;

    // One CPU's worth at a time: each job writes when it starts and when it ends, so the
    // gap between one's end and the next one's start is the whole admission path.
    const chain = ctx.quick ? 20 : 100;
    log(`queue: admission latency over a chain of ${chain} jobs of CPU 2`);
    const stamp = `date +%s%N >'${dir}'/start-"$JOBHEAD_SUBMISSION_ID"; ` +
      `date +%s%N >'${dir}'/end-"$JOBHEAD_SUBMISSION_ID"`;
    const ids: string[] = [];
    for (let i = 0; i < chain; i++) {
      ids.push(await submit(head, { entrypoint: stamp, entrypoint_num_cpus: 2 }));
    }
    await waitUntil("the chain to end", async () => {
      const state = await cluster(head);
      return state.pending === 0 && state.running === 0;
    }, { intervalMs: 50, timeoutMs: 10 * 60_000 });
    const read = async (name: string) => BigInt((await Deno.readTextFile(`${dir}/${name}`)).trim());
    const admission: number[] = [];
    for (let i = 1; i < ids.length; i++) {
      const gap = await read(`start-${ids[i]}`) - await read(`end-${ids[i - 1]}`);
      admission.push(Number(gap) / 1e6);
    }
    const admissionStats = summarize(admission);
    const decision = decisionTime(total);
    return {
      jobs: total,
      head_args: QUEUE_HEAD_ARGS,
      submit_rate_per_s: round(submitRate),
      submit_latency_ms_at_100_queued: summarize(at100),
      submit_latency_ms_at_full_queue: { ...summarize(atFull), queued_before: total - 100 },
      head_rss_kb_with_queue: atMost(rssKb, QUEUE_TARGETS.rssWithQueueKb),
      queued_when_measured: queued,
      drain: { jobs: queued + 2, seconds: round(drainS), jobs_per_s: round((queued + 2) / drainS) },
      admission_latency_ms: {
        ...admissionStats,
        method: "a job's `date` just before it exits → the next job's first `date` (CPU 2 each)",
      },
      admission_p50_ms: atMost(admissionStats.p50, QUEUE_TARGETS.admissionP50Ms),
      scheduler_decision_ms: decision,
      measured_at_epoch_ns: String(epochNs()),
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The scheduler's pass over `queued` waiting jobs when one CPU frees: in-process, in ms. */
function decisionTime(queued: number): Record<string, number> {
  const queue: PendingJob[] = Array.from({ length: queued }, (_, i) => ({
    id: `j${i}`,
    demand: { CPU: 1 },
    priority: 0,
    seq: i,
    queuedAt: Date.now(),
  })).sort(queueOrder);
  const node = { name: "n", total: { CPU: 2 }, used: { CPU: 1 }, gpusInUse: [], running: 1 };
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    admit([node], queue, { now: Date.now(), reserveAfterMs: 300_000 });
    times.push(performance.now() - t0);
  }
  return summarize(times.slice(20));
}
