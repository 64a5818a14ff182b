/**
 * The `cluster` section of `deno task bench`: a head (`--no-local-jobs`) and two worker
 * nodes on a throwaway PostgreSQL server. Measures submit on the head → the job's process
 * running on a node; the throughput of 1,000 `true` jobs over the cluster beside the
 * section's single-node KV head in the same run; and, by simulation, the scheduler's
 * placements per second over 1,000 nodes and the store's load per heartbeat of 1,000 nodes.
 * @module
 */
import postgres from "postgres";
import { Scheduler } from "../scheduler/scheduler.ts";
import { NodeTable } from "../host/nodes.ts";
import { type RunningHead, startHead } from "../tests/harness.ts";
import { startPrivateServer } from "../tests/postgres.ts";
import { findJobProcs, isAlive, readCpuSeconds } from "./procs.ts";
import { REQUEST_TIMEOUT_MS, submit } from "./api.ts";
import { atLeast, atMost, epochNs, mapPool, round, summarize, waitUntil } from "./stats.ts";

/** Targets from the cluster issue. */
export const CLUSTER_TARGETS = {
  startOnNodeP50Ms: 15,
  stopOnNodeP50Ms: 50,
  placementsPerS: 1_000,
} as const;

const SUBMIT_CONCURRENCY = 16;

/** What the section gets from the benchmark's runner. */
export interface ClusterContext {
  /** The section's own head: single-node, on Deno KV: the baseline. */
  head: RunningHead;
  quick: boolean;
  log: (message: string) => void;
}

/** How many of `ids` are not terminal yet, from the list of PENDING and RUNNING jobs. */
async function activeAmong(head: RunningHead, ids: ReadonlySet<string>): Promise<number> {
  const res = await head.fetch("/api/jobs/?status=PENDING,RUNNING", {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const jobs: { submission_id: string }[] = await res.json();
  return jobs.filter((job) => ids.has(job.submission_id)).length;
}

/** Seconds from the first submit until all `count` `true` jobs ended, 16 submits in flight. */
async function throughput(head: RunningHead, count: number): Promise<number> {
  const t0 = performance.now();
  const ids = await mapPool(
    Array(count).fill(0),
    SUBMIT_CONCURRENCY,
    () => submit(head, { entrypoint: "true" }),
  );
  const wanted = new Set(ids);
  await waitUntil("jobs to end", async () => await activeAmong(head, wanted) === 0, {
    intervalMs: 20,
    timeoutMs: 300_000,
  });
  return (performance.now() - t0) / 1000;
}

/** Submit on the head → the job's process running on node `node`, `samples` times in turn. */
async function startOnNode(head: RunningHead, node: string, samples: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = epochNs();
    const id = await submit(head, {
      entrypoint: "date +%s%N",
      entrypoint_resources: { [`node:${node}`]: 0.001 },
    });
    let logs = "";
    await waitUntil(`job ${id} to print its start`, async () => {
      const res = await head.fetch(`/api/jobs/${id}/logs`);
      logs = res.status === 200 ? (await res.json()).logs : "";
      return /^\d+\n/.test(logs);
    }, { intervalMs: 5, timeoutMs: 30_000 });
    latencies.push(Number(BigInt(logs.trim()) - t0) / 1e6);
  }
  return latencies;
}

/**
 * `POST …/stop` on the head → every process of a `sleep 600` job running on node `node`
 * gone (its pids polled in /proc every ~1 ms), `samples` times in turn.
 */
async function stopOnNode(
  head: RunningHead,
  node: RunningHead & { name: string },
  samples: number,
) {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const id = await submit(head, {
      entrypoint: "sleep 600",
      entrypoint_resources: { [`node:${node.name}`]: 0.001 },
    });
    const ofJob = () => findJobProcs(node.runId).filter((p) => p.submissionId === id);
    await waitUntil(`the sleep of job ${id} on ${node.name}`, () => {
      return ofJob().some((p) => p.comm === "sleep");
    }, { intervalMs: 5, timeoutMs: 30_000 });
    const pids = ofJob().map((p) => p.pid);
    const t0 = performance.now();
    const answer = head.fetch(`/api/jobs/${id}/stop`, {
      method: "POST",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    let alive = pids;
    while (alive.length > 0) {
      alive = alive.filter(isAlive);
      if (alive.length > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    latencies.push(performance.now() - t0);
    const stopped = await (await answer).json();
    if (stopped.stopped !== true) {
      throw new Error(`stop of ${id} answered ${JSON.stringify(stopped)}`);
    }
  }
  return latencies;
}

/**
 * The scheduler's placements per second over `nodes` simulated nodes of 8 CPUs, filling
 * them: `batch`, the jobs queued at once (one pass places them all), or one at a time (each
 * submit waits for its placement: a pass per job, over every node and what runs).
 */
async function placementRate(nodes: number, batch: boolean): Promise<number> {
  const jobs = nodes * 8;
  const scheduler = new Scheduler({
    nodes: Array.from({ length: nodes }, (_, i) => ({ name: `sim${i}`, total: { CPU: 8 } })),
    reserveAfterMs: 300_000,
  });
  const t0 = performance.now();
  const placements: Promise<void>[] = [];
  for (let i = 0; i < jobs; i++) {
    const placed = new Promise<void>((resolve) =>
      scheduler.enqueue({
        id: `job${i}`,
        demand: { CPU: 1 },
        priority: 0,
        seq: i,
        queuedAt: 0,
        onPlace: () => resolve(),
      })
    );
    if (batch) placements.push(placed);
    else await placed;
  }
  await Promise.all(placements);
  const seconds = (performance.now() - t0) / 1000;
  scheduler.close();
  return jobs / seconds;
}

/**
 * `nodes` simulated nodes heartbeating once a second for `seconds` through `connections`
 * connections: each heartbeat's latency, and the server's CPU time per heartbeat.
 */
async function heartbeatLoad(
  url: string,
  password: string,
  options: { nodes: number; seconds: number; connections: number },
): Promise<Record<string, unknown>> {
  const sql = postgres(url, { password, max: options.connections, onnotice: () => {} });
  try {
    const table = new NodeTable(sql);
    await table.ensure();
    const epochs = await mapPool(
      Array.from({ length: options.nodes }, (_, i) => `sim${i}`),
      options.connections,
      (name) =>
        table.register(
          { name, id: name, address: "http://sim", total: { CPU: 8 }, labels: {} },
          10,
        ),
    );
    const backends: number[] = (await Promise.all(
      Array.from({ length: options.connections }, () => sql`select pg_backend_pid() as pid`),
    )).map((rows) => rows[0].pid);
    const cpuBefore = backends.reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
    const latencies: number[] = [];
    const t0 = performance.now();
    for (let second = 0; second < options.seconds; second++) {
      const tick = performance.now();
      await mapPool(epochs, options.connections, async (epoch, i) => {
        const start = performance.now();
        await table.heartbeat(`sim${i}`, epoch);
        latencies.push(performance.now() - start);
      });
      const left = 1000 - (performance.now() - tick);
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    }
    const elapsed = (performance.now() - t0) / 1000;
    const cpuAfter = backends.reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
    return {
      nodes: options.nodes,
      heartbeats: latencies.length,
      heartbeats_per_s: round(latencies.length / elapsed),
      latency_ms: summarize(latencies),
      server_cpu_ms_per_heartbeat: round(((cpuAfter - cpuBefore) * 1000) / latencies.length),
      note: "backends of the pool only (pg_backend_pid); one UPDATE per heartbeat",
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** The section. */
export async function benchCluster(ctx: ClusterContext): Promise<Record<string, unknown>> {
  const { log, quick } = ctx;
  await using server = await startPrivateServer();
  const db = await server.createDatabase();
  const member = (name: string, args: string[]) => ({
    env: { PGPASSWORD: db.password },
    extraArgs: ["--store", db.url, "--name", name, ...args],
  });
  log("cluster: a head (--no-local-jobs) and two nodes on a throwaway PostgreSQL");
  await using head = await startHead(member("head", ["--no-local-jobs"]));
  await using n1 = await startHead({ ...member("n1", []), command: "node" });
  await using _n2 = await startHead({ ...member("n2", []), command: "node" });
  await waitUntil("both nodes alive", async () => {
    const cluster = await (await head.fetch("/api/cluster")).json();
    return cluster.nodes.filter((n: { state: string }) => n.state === "ALIVE").length === 2;
  }, { intervalMs: 50, timeoutMs: 60_000 });

  const samples = quick ? 30 : 200;
  log(`cluster: ${samples} sequential submits on the head, each → its process on node n1`);
  await startOnNode(head, "n1", 5); // warm-up
  const start = summarize(await startOnNode(head, "n1", samples));
  const stopSamples = quick ? 10 : 50;
  log(`cluster: ${stopSamples} \`sleep 600\` jobs on node n1 stopped through the head, in turn`);
  const stop = summarize(await stopOnNode(head, { ...n1, name: "n1" }, stopSamples));

  const jobs = quick ? 200 : 1000;
  log(`cluster: ${jobs} \`true\` jobs over the cluster, then on the single-node KV head`);
  const clusterS = await throughput(head, jobs);
  const singleS = await throughput(ctx.head, jobs);

  const simulated = quick ? 200 : 1000;
  log(`cluster: placements over ${simulated} simulated nodes; their heartbeats' store load`);
  const batch = await placementRate(simulated, true);
  const oneByOne = await placementRate(simulated, false);
  const heartbeats = await heartbeatLoad(db.url, db.password, {
    nodes: simulated,
    seconds: quick ? 2 : 5,
    connections: 10,
  });
  return {
    start_on_other_node_ms: start,
    start_p50_ms: atMost(start.p50, CLUSTER_TARGETS.startOnNodeP50Ms),
    stop_on_other_node_ms: {
      ...stop,
      method: "POST stop on the head → the job's pids on the node gone, /proc polled every ~1 ms",
    },
    stop_p50_ms: atMost(stop.p50, CLUSTER_TARGETS.stopOnNodeP50Ms),
    throughput: {
      jobs,
      cluster_jobs_per_s: round(jobs / clusterS),
      single_node_kv_jobs_per_s: round(jobs / singleS),
      cluster_setup: "1 head (--no-local-jobs) + 2 nodes, one machine",
    },
    simulated_nodes: {
      nodes: simulated,
      placements_per_s_one_at_a_time: atLeast(round(oneByOne), CLUSTER_TARGETS.placementsPerS),
      placements_per_s_queued_at_once: round(batch),
      heartbeat_load: heartbeats,
    },
  };
}
