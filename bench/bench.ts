/**
 * `deno task bench`: starts real heads and measures them from the outside, over HTTP and
 * through `/proc`. Prints one JSON object on stdout (progress goes to stderr), each figure next
 * to its target from issue #2.
 *
 * Each section runs against a head of its own (fresh data dir), so sections are independent
 * and `--only` gives the same figures as a full run. Flags:
 *   --only a,b   run only these sections (see --list)
 *   --list       print the section names and exit
 *   --quick      smaller samples, for trying the benchmark out (figures are not comparable)
 *   --out FILE   also write the JSON to FILE
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import { cpus, totalmem } from "node:os";
import { type RunningHead, startHead } from "../tests/harness.ts";
import { createTestDatabase } from "../tests/postgres.ts";
import {
  descendantsOf,
  findJobProcs,
  isAlive,
  killRunProcs,
  type ProcMemory,
  readCmdline,
  readCpuSeconds,
  readMemory,
  readRssByKind,
  readTcpMemoryKb,
  resolveServerPid,
} from "./procs.ts";
import {
  atLeast,
  atMost,
  epochNs,
  mapPool,
  percentile,
  round,
  summarize,
  waitUntil,
} from "./stats.ts";

import { benchQueue, QUEUE_HEAD_ARGS } from "./queue.ts";
import { benchCluster } from "./cluster.ts";

type Head = RunningHead;

/** What a section gets: its own head, and the process that serves it. */
interface SectionContext {
  head: Head;
  /** The pid whose RSS is the head's (the harness's pid may be a launcher). */
  serverPid: number;
  /** Pids that are the head, never a job's. */
  headPids: Set<number>;
  quick: boolean;
}

/** One part of the benchmark; its result becomes `result[name]`. */
interface Section {
  name: string;
  description: string;
  /** Flags for the section's head, after the harness's own. */
  headArgs?: string[];
  run(ctx: SectionContext): Promise<Record<string, unknown>>;
}

/**
 * Issue #2's targets (jobs) as issue #15 tightened them, and issue #3's (logs), for a 2-core
 * machine.
 */
const TARGETS = {
  submitP50Ms: 5,
  /** With SUBMIT_CONCURRENCY clients submitting at once. */
  submitConcurrentP50Ms: 10,
  /** Or `startRatioToSpawn` × a bare `sh -c` spawn measured in the same run, if more. */
  startP50Ms: 5,
  startRatioToSpawn: 1.5,
  throughputRatio: 0.5,
  overheadPerJobKb: 2048,
  overheadPssPerJobKb: 150,
  overheadProcessesPerJob: 2,
  headRssIdleKb: 60 * 1024,
  headRssWithJobsKb: 120 * 1024,
  stopP50Ms: 50,
  /** Stopping `scaleStopJobs` running jobs at once: every process of them gone. */
  scaleStopAllGoneMs: 1000,
  /** Head RSS with `scaleJobs` running jobs and as many log followers. */
  headRssAtScaleKb: 120 * 1024,
  tailP50Ms: 20,
  tailP99Ms: 100,
  followerMbPerS: 200,
  headRssWithFollowersKb: 120 * 1024,
  stalledTailsRssOverIdleKb: 100 * 1024,
  stalledTailsHealthzP99Ms: 50,
} as const;

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "STOPPED"]);
const SUBMIT_CONCURRENCY = 16;
/** No single request may hang the benchmark. */
const REQUEST_TIMEOUT_MS = 30_000;

const SECTIONS: Section[] = [
  {
    name: "submit",
    description: "latency of POST /api/jobs/ (sequential `true` jobs)",
    run: benchSubmit,
  },
  {
    name: "start",
    description: "submit → process started (timestamp written by the job), and → API past PENDING",
    run: benchStart,
  },
  {
    name: "throughput",
    description: "500 `true` jobs, 16 submissions in flight, vs `xargs -P` in the same run",
    run: benchThroughput,
  },
  {
    name: "memory",
    description: "head RSS and per-job overhead processes with 200 running `sleep 600` jobs",
    run: benchMemory,
  },
  {
    name: "scale",
    description: "1000 running jobs with 1000 log followers: head RSS; then 500 stopped at once",
    run: benchScale,
  },
  {
    name: "stop",
    description: "POST …/stop → every process of a `sleep 600` job gone",
    run: benchStop,
  },
  {
    name: "logs",
    description: "log tail latency (WebSocket vs tail -f), follower MB/s on a 200 MB log, " +
      "head RSS with 1000 followers of 100 jobs",
    run: benchLogs,
  },
  {
    name: "queue",
    description: "10,000 queued `true` jobs of CPU 1 on --num-cpus 2: submit latency at 100 and " +
      "10,000 queued, head RSS, drain rate, admission latency",
    headArgs: QUEUE_HEAD_ARGS,
    run: (ctx) => benchQueue({ ...ctx, log }),
  },
  {
    name: "cluster",
    description: "a head and two nodes on PostgreSQL: submit → process on another node, " +
      "1,000 `true` jobs beside the single-node KV head, placements over 1,000 simulated " +
      "nodes and the store's load per heartbeat",
    run: (ctx) => benchCluster({ head: ctx.head, quick: ctx.quick, log }),
  },
  {
    name: "store",
    description: "Deno KV vs PostgreSQL (a throwaway local server): submit latency and 1,000 " +
      "`true` jobs' throughput, one head on each, in the same run",
    run: benchStore,
  },
  {
    name: "stalled_tails",
    description: "500 log tails that never read a byte: head RSS over idle, /-/healthz latency",
    // Stalled sockets are kept (no idle ping) so that the figure is the worst case.
    headArgs: ["--tail-idle-timeout-s", "0"],
    run: benchStalledTails,
  },
];

// ---------------------------------------------------------------------------------------------
// HTTP helpers

/** Submits a job and returns its submission id; throws on any non-200 answer. */
async function submitJob(head: Head, entrypoint: string): Promise<string> {
  const res = await head.fetch("/api/jobs/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ entrypoint }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST /api/jobs/ answered ${res.status}: ${text}`);
  const id = JSON.parse(text).submission_id;
  if (typeof id !== "string") throw new Error(`POST /api/jobs/ answered without an id: ${text}`);
  return id;
}

/** The status of one job; throws on any non-200 answer. */
async function jobStatus(head: Head, id: string): Promise<string> {
  const res = await head.fetch(`/api/jobs/${id}`, {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/jobs/${id} answered ${res.status}: ${text}`);
  return JSON.parse(text).status;
}

/** Stops a job; returns the `stopped` flag. */
async function stopJob(head: Head, id: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<boolean> {
  const res = await head.fetch(`/api/jobs/${id}/stop`, {
    method: "POST",
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (res.status !== 200) {
    throw new Error(`POST /api/jobs/${id}/stop answered ${res.status}: ${text}`);
  }
  return JSON.parse(text).stopped === true;
}

/** Statuses of listed jobs by id (`status` filters server-side, as API.md allows). */
async function listStatuses(head: Head, status?: string): Promise<Map<string, string>> {
  const query = status ? `?status=${status}&limit=1000` : "?limit=1000";
  const res = await head.fetch(`/api/jobs/${query}`, {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/jobs/${query} answered ${res.status}: ${text}`);
  const out = new Map<string, string>();
  for (const job of JSON.parse(text)) out.set(job.submission_id, job.status);
  return out;
}

/** Counts of each status among `ids`. */
async function countStatuses(head: Head, ids: string[]): Promise<Record<string, number>> {
  const all = await listStatuses(head);
  const counts: Record<string, number> = {};
  for (const id of ids) {
    const status = all.get(id) ?? "MISSING";
    counts[status] = (counts[status] ?? 0) + 1;
  }
  return counts;
}

/**
 * Waits until none of `ids` is PENDING or RUNNING, polling the filtered list (one request per
 * `intervalMs`, light on the head). Resolves with the time (performance.now()) it saw that.
 */
async function waitAllTerminal(
  head: Head,
  ids: string[],
  options: { intervalMs: number; timeoutMs: number },
): Promise<number> {
  const wanted = new Set(ids);
  let seenAt = 0;
  let pending = 0;
  await waitUntil("jobs to end", async () => {
    const active = await listStatuses(head, "PENDING,RUNNING");
    pending = 0;
    for (const [id, status] of active) if (wanted.has(id) && !TERMINAL.has(status)) pending++;
    seenAt = performance.now();
    return pending === 0;
  }, {
    ...options,
    describe: async () =>
      `${pending} of ${ids.length} not terminal; ${JSON.stringify(await countStatuses(head, ids))}`,
  });
  return seenAt;
}

/** Waits until none of `ids` is PENDING (RUNNING or already over). */
async function waitNonePending(head: Head, ids: string[], timeoutMs: number): Promise<void> {
  const wanted = new Set(ids);
  await waitUntil("jobs to leave PENDING", async () => {
    const pending = await listStatuses(head, "PENDING");
    for (const id of pending.keys()) if (wanted.has(id)) return false;
    return true;
  }, {
    intervalMs: 50,
    timeoutMs,
    describe: async () => JSON.stringify(await countStatuses(head, ids)),
  });
}

// ---------------------------------------------------------------------------------------------
// Log followers (`GET /api/jobs/{id}/logs/tail`, a WebSocket)

/** How a follower's socket closed; `atNs` is when (epoch ns, as `epochNs()`). */
interface FollowerClose {
  code: number;
  reason: string;
  atNs: bigint;
}

/** One WebSocket follower of a job's log, counting what it receives. */
interface Follower {
  ws: WebSocket;
  /** Characters received: bytes, for the ASCII logs the benchmark's jobs write. */
  chars: number;
  frames: number;
  /** When the first frame arrived (epoch ns); 0n before. */
  firstFrameNs: bigint;
  /** Resolves once the socket is open; rejects if it closes first. */
  opened: Promise<void>;
  /** Resolves on the first frame; rejects if the socket closes first. */
  firstFrame: Promise<void>;
  /** Resolves once the socket has closed. */
  closed: Promise<FollowerClose>;
}

/**
 * Opens a follower of job `id`'s log from byte 0. `onText` gets every frame with the time it
 * arrived (epoch ns, read first thing in the event handler).
 */
function followLog(
  head: Head,
  id: string,
  onText?: (text: string, receivedNs: bigint) => void,
): Follower {
  const ws = new WebSocket(`${head.url.replace(/^http/, "ws")}/api/jobs/${id}/logs/tail`);
  ws.binaryType = "arraybuffer";
  const opened = Promise.withResolvers<void>();
  const first = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<FollowerClose>();
  // Nobody need wait for these: a rejection nobody awaits must not end the benchmark.
  opened.promise.catch(() => {});
  first.promise.catch(() => {});
  const follower: Follower = {
    ws,
    chars: 0,
    frames: 0,
    firstFrameNs: 0n,
    opened: opened.promise,
    firstFrame: first.promise,
    closed: closed.promise,
  };
  ws.onopen = () => opened.resolve();
  ws.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    const at = epochNs();
    const text = typeof event.data === "string" ? event.data : "";
    follower.chars += typeof event.data === "string" ? text.length : event.data.byteLength;
    if (follower.frames++ === 0) {
      follower.firstFrameNs = at;
      first.resolve();
    }
    onText?.(text, at);
  };
  ws.onclose = (event) => {
    const at = epochNs();
    const why = new Error(
      `the tail of job "${id}" closed early: ${event.code} ${JSON.stringify(event.reason)}`,
    );
    opened.reject(why); // no-op once resolved
    first.reject(why);
    closed.resolve({ code: event.code, reason: event.reason, atNs: at });
  };
  return follower;
}

/** Closes a follower (if still open) and waits for its close, at most `timeoutMs`. */
async function closeFollower(follower: Follower, timeoutMs = 5_000): Promise<void> {
  const { ws } = follower;
  if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close(1000);
  await within("a follower to close", follower.closed, timeoutMs).catch(() => {
    // The head did not answer the close in time: nothing else holds the socket.
  });
}

/** `promise`, or an error naming `what` after `timeoutMs`. */
async function within<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  const guard = new AbortController();
  try {
    return await Promise.race([
      promise,
      delay(timeoutMs, undefined, { signal: guard.signal }).then(() => {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      }),
    ]);
  } finally {
    guard.abort();
  }
}

/**
 * Collects, per line, now − the epoch-ns timestamp the line holds (ms). Text arrives in chunks
 * that need not end at a line end; a line counts when its newline arrives.
 */
class LineLatencies {
  readonly ms: number[] = [];
  /** Lines that are not a timestamp (there should be none). */
  other = 0;
  #partial = "";

  push(text: string, receivedNs: bigint): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop()!;
    for (const line of lines) {
      if (/^\d{19}$/.test(line)) this.ms.push(Number(receivedNs - BigInt(line)) / 1e6);
      else this.other++;
    }
  }
}

/** MB/s (1 MB = 10^6 bytes) for `bytes` in `ns` nanoseconds. */
function mbPerS(bytes: number, ns: bigint): number {
  return bytes / 1e6 / (Number(ns) / 1e9);
}

function log(message: string): void {
  console.error(`[bench] ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Sections

async function benchSubmit(ctx: SectionContext): Promise<Record<string, unknown>> {
  const { head } = ctx;
  const samples = ctx.quick ? 60 : 300;
  const warmup = 10;
  const ids: string[] = [];
  for (let i = 0; i < warmup; i++) ids.push(await submitJob(head, "true"));
  log(`submit: ${samples} sequential submissions of \`true\``);
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    ids.push(await submitJob(head, "true"));
    latencies.push(performance.now() - t0);
  }
  await waitAllTerminal(head, ids, { intervalMs: 50, timeoutMs: 60_000 });

  // Each client submits one job after another; the head answers them all at once.
  const perClient = ctx.quick ? 4 : 20;
  log(`submit: ${SUBMIT_CONCURRENCY} clients × ${perClient} submissions of \`true\``);
  const concurrent: number[] = [];
  const concurrentIds: string[] = [];
  await Promise.all(Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
    for (let i = 0; i < perClient; i++) {
      const t0 = performance.now();
      concurrentIds.push(await submitJob(head, "true"));
      concurrent.push(performance.now() - t0);
    }
  }));
  await waitAllTerminal(head, concurrentIds, { intervalMs: 50, timeoutMs: 60_000 });
  const s = summarize(latencies);
  const c = summarize(concurrent);
  return {
    entrypoint: "true",
    warmup_submissions: warmup,
    samples,
    latency_ms: s,
    p50_ms: atMost(s.p50, TARGETS.submitP50Ms),
    p99_ms: s.p99,
    final_statuses: await countStatuses(head, ids),
    concurrent: {
      clients: SUBMIT_CONCURRENCY,
      samples: concurrent.length,
      latency_ms: c,
      p50_ms: atMost(c.p50, TARGETS.submitConcurrentP50Ms),
      p99_ms: c.p99,
      final_statuses: await countStatuses(head, concurrentIds),
    },
  };
}

/**
 * The baseline of `start`: submit → running for a bare process, the same way. The bench
 * spawns `sh -c 'date +%s%N'` itself and compares the time it prints with the epoch ns read
 * just before the spawn (fork, exec of sh, fork and exec of date).
 */
async function bareSpawnMs(samples: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples + 3; i++) {
    const t0ns = epochNs();
    const child = await new Deno.Command("sh", {
      args: ["-c", "date +%s%N"],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const printed = BigInt(new TextDecoder().decode(child.stdout).trim());
    if (i >= 3) out.push(Number(printed - t0ns) / 1e6);
  }
  return out;
}

async function benchStart(ctx: SectionContext): Promise<Record<string, unknown>> {
  const { head } = ctx;
  const samples = ctx.quick ? 20 : 100;
  const apiSamples = ctx.quick ? 10 : 50;
  const dir = await Deno.makeTempDir({ prefix: "jobhead-bench-start-" });
  try {
    // Each job writes the wall-clock time at which its shell ran `date` (ns). Compared with
    // the same clock read just before POST, this is submit → process running, as the process
    // sees it (it includes exec'ing `date`, ~1 ms).
    const entrypoint = `date +%s%N > '${dir}'/"$JOBHEAD_SUBMISSION_ID"`;
    log(`start: ${samples} jobs one at a time, each writing its start time`);
    const toProcess: number[] = [];
    const submitMs: number[] = [];
    for (let i = 0; i < samples + 3; i++) {
      const t0ns = epochNs();
      const t0 = performance.now();
      const id = await submitJob(head, entrypoint);
      const posted = performance.now() - t0;
      let startedNs = 0n;
      await waitUntil(`job "${id}" to write its start time`, async () => {
        const text = await Deno.readTextFile(`${dir}/${id}`).catch(() => "");
        if (!/^\d+\n$/.test(text)) return false;
        startedNs = BigInt(text.trim());
        return true;
      }, { intervalMs: 1, timeoutMs: 10_000, describe: () => jobStatus(head, id) });
      await waitUntil(`job "${id}" to end`, async () => TERMINAL.has(await jobStatus(head, id)), {
        intervalMs: 5,
        timeoutMs: 10_000,
      });
      if (i < 3) continue; // warm-up
      toProcess.push(Number(startedNs - t0ns) / 1e6);
      submitMs.push(posted);
    }

    // Separately, so that polling the API does not slow the starts measured above.
    log(`start: ${apiSamples} jobs one at a time, polling GET /api/jobs/{id} every ~1 ms`);
    const toApi: number[] = [];
    for (let i = 0; i < apiSamples; i++) {
      const t0 = performance.now();
      const id = await submitJob(head, "true");
      let seenAt = 0;
      await waitUntil(`job "${id}" to leave PENDING`, async () => {
        const status = await jobStatus(head, id);
        seenAt = performance.now();
        return status !== "PENDING";
      }, { intervalMs: 1, timeoutMs: 10_000 });
      toApi.push(seenAt - t0);
      await waitUntil(`job "${id}" to end`, async () => TERMINAL.has(await jobStatus(head, id)), {
        intervalMs: 5,
        timeoutMs: 10_000,
      });
    }
    log(`start: ${samples} bare spawns of \`sh -c 'date +%s%N'\` (the baseline)`);
    const bare = summarize(await bareSpawnMs(samples));
    const proc = summarize(toProcess);
    const api = summarize(toApi);
    return {
      method: "job runs `date +%s%N` into a file; minus epoch ns read before POST",
      samples,
      submit_to_process_ms: proc,
      bare_spawn_ms: {
        ...bare,
        note: "the bench spawning `sh -c 'date +%s%N'` itself, measured the same way",
      },
      target_ms: round(Math.max(TARGETS.startP50Ms, TARGETS.startRatioToSpawn * bare.p50)),
      ratio_to_bare_spawn: round(proc.p50 / bare.p50),
      p50_ms: atMost(
        proc.p50,
        round(Math.max(TARGETS.startP50Ms, TARGETS.startRatioToSpawn * bare.p50)),
      ),
      p99_ms: proc.p99,
      post_latency_ms: summarize(submitMs),
      submit_to_api_past_pending_ms: {
        ...api,
        note: "first GET (polled ~1 ms) showing RUNNING or later, for `true` jobs",
      },
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs `seq n | xargs -P parallel -I{} sh -c true`; jobs per second. */
async function runXargs(n: number, parallel: number): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command("sh", {
    args: ["-c", `seq ${n} | xargs -P ${parallel} -I{} sh -c true`],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  if (!out.success) throw new Error(`xargs baseline exited with ${out.code}`);
  return n / seconds;
}

/** Runs a few jobs first, so the measured ones do not pay for JIT and first spawns. */
async function warmUp(head: Head): Promise<void> {
  const warm = await mapPool(Array(10).fill("true"), 4, (e) => submitJob(head, e));
  await waitAllTerminal(head, warm, { intervalMs: 20, timeoutMs: 30_000 });
}

/**
 * Submits `jobs` `true` jobs, SUBMIT_CONCURRENCY at a time, and waits until all have
 * ended: when it began, when the last submit was answered, when the last job ended.
 */
async function runTrueJobs(head: Head, jobs: number, timeoutMs: number) {
  const t0 = performance.now();
  const ids = await mapPool(
    Array(jobs).fill("true"),
    SUBMIT_CONCURRENCY,
    (e) => submitJob(head, e),
  );
  const submitted = performance.now();
  const done = await waitAllTerminal(head, ids, { intervalMs: 10, timeoutMs });
  return { t0, submitted, done, ids };
}

async function benchThroughput(ctx: SectionContext): Promise<Record<string, unknown>> {
  const { head } = ctx;
  const jobs = ctx.quick ? 100 : 500;
  const nproc = navigator.hardwareConcurrency;
  const parallel = nproc * 2;
  log(`throughput: xargs baseline (${jobs} × sh -c true, -P ${parallel})`);
  const xargsBefore = await runXargs(jobs, parallel);

  await warmUp(head);
  log(`throughput: ${jobs} jobs, ${SUBMIT_CONCURRENCY} submissions in flight`);
  const { t0, submitted, done, ids } = await runTrueJobs(head, jobs, 120_000);
  const seconds = (done - t0) / 1000;
  const jobsPerS = jobs / seconds;

  log("throughput: xargs baseline again");
  const xargsAfter = await runXargs(jobs, parallel);
  // The faster baseline run is the one to beat: the ratio is not flattered by a slow baseline.
  const baseline = Math.max(xargsBefore, xargsAfter);
  return {
    jobs,
    submit_concurrency: SUBMIT_CONCURRENCY,
    submit_phase_s: round((submitted - t0) / 1000),
    all_terminal_s: round(seconds),
    jobs_per_s: round(jobsPerS),
    final_statuses: await countStatuses(head, ids),
    xargs: {
      command: `seq ${jobs} | xargs -P ${parallel} -I{} sh -c true`,
      jobs_per_s_before: round(xargsBefore),
      jobs_per_s_after: round(xargsAfter),
      baseline_jobs_per_s: round(baseline),
    },
    ratio_to_xargs: atLeast(jobsPerS / baseline, TARGETS.throughputRatio),
  };
}

/**
 * The same two measures on a head of each store: POST latency of sequential `true` jobs, and
 * the time for 1,000 `true` jobs (16 POSTs in flight) to end. The section's own head is the
 * KV one; the PostgreSQL one gets a fresh database of a throwaway local server
 * (tests/postgres.ts, fsync off: the figure is the head's cost, not the disk's).
 */
async function benchStore(ctx: SectionContext): Promise<Record<string, unknown>> {
  const samples = ctx.quick ? 60 : 300;
  const jobs = ctx.quick ? 200 : 1_000;
  const db = await createTestDatabase();
  await using postgres = await startHead({
    extraArgs: ["--store", db.url],
    env: { PGPASSWORD: db.password },
  });
  activeHeads.add(postgres);
  const measure = async (name: string, head: Head) => {
    await warmUp(head);
    log(`store: ${name}: ${samples} sequential submissions`);
    const latencies: number[] = [];
    const sequential: string[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      sequential.push(await submitJob(head, "true"));
      latencies.push(performance.now() - t0);
    }
    await waitAllTerminal(head, sequential, { intervalMs: 50, timeoutMs: 120_000 });
    log(`store: ${name}: ${jobs} jobs, ${SUBMIT_CONCURRENCY} submissions in flight`);
    const { t0, submitted, done, ids } = await runTrueJobs(head, jobs, 300_000);
    const failed = await listStatuses(head, "FAILED,STOPPED");
    return {
      submit_latency_ms: summarize(latencies),
      throughput: {
        jobs,
        submit_phase_s: round((submitted - t0) / 1000),
        all_terminal_s: round((done - t0) / 1000),
        jobs_per_s: round(jobs / ((done - t0) / 1000)),
        not_succeeded: ids.filter((id) => failed.has(id)).length,
      },
    };
  };
  try {
    const kv = await measure("kv", ctx.head);
    const pg = await measure("postgres", postgres);
    const ratio = (a: number, b: number) => round(a / b);
    return {
      samples,
      kv,
      postgres: pg,
      postgres_to_kv: {
        submit_p50: ratio(pg.submit_latency_ms.p50, kv.submit_latency_ms.p50),
        submit_p99: ratio(pg.submit_latency_ms.p99, kv.submit_latency_ms.p99),
        jobs_per_s: ratio(pg.throughput.jobs_per_s, kv.throughput.jobs_per_s),
      },
    };
  } finally {
    killRunProcs(postgres.runId, new Set([postgres.pid, resolveServerPid(postgres.pid)]));
    activeHeads.delete(postgres);
  }
}

/** Memory of a set of processes, summed, with counts and sums per command name. */
function sumMemory(pids: { pid: number; comm: string }[]) {
  let rssKb = 0;
  let pssKb = 0;
  const byComm: Record<string, { count: number; rss_kb: number; pss_kb: number }> = {};
  for (const p of pids) {
    const m: ProcMemory = readMemory(p.pid);
    rssKb += m.rssKb;
    pssKb += m.pssKb;
    const entry = byComm[p.comm] ??= { count: 0, rss_kb: 0, pss_kb: 0 };
    entry.count++;
    entry.rss_kb += m.rssKb;
    entry.pss_kb += m.pssKb;
  }
  return { count: pids.length, rssKb, pssKb, byComm };
}

async function benchMemory(ctx: SectionContext): Promise<Record<string, unknown>> {
  const { head, serverPid, headPids } = ctx;
  const jobs = ctx.quick ? 40 : 200;
  const runId = head.runId;

  const warm = await mapPool(Array(5).fill("true"), 5, (e) => submitJob(head, e));
  await waitAllTerminal(head, warm, { intervalMs: 20, timeoutMs: 30_000 });
  await delay(300);
  const before = readMemory(serverPid);

  log(`memory: starting ${jobs} \`sleep 600\` jobs`);
  const ids = await mapPool(
    Array(jobs).fill("sleep 600"),
    SUBMIT_CONCURRENCY,
    (e) => submitJob(head, e),
  );
  const wanted = new Set(ids);
  const sleepers = () =>
    findJobProcs(runId, headPids).filter((p) => p.comm === "sleep" && wanted.has(p.submissionId!));
  await waitNonePending(head, ids, 60_000);
  await waitUntil(`${jobs} sleep processes`, () => sleepers().length >= jobs, {
    intervalMs: 100,
    timeoutMs: 60_000,
    describe: () => `${sleepers().length} found`,
  });
  const running = await countStatuses(head, ids);
  await delay(1000); // let the head settle (GC, timers) before reading its RSS
  const withJobs = readMemory(serverPid);

  const procs = findJobProcs(runId, headPids).filter((p) => wanted.has(p.submissionId!));
  const overhead = procs.filter((p) => p.comm !== "sleep");
  const sleeps = procs.filter((p) => p.comm === "sleep");
  const perJob = new Map<string, number>();
  for (const p of overhead) perJob.set(p.submissionId!, (perJob.get(p.submissionId!) ?? 0) + 1);
  const overheadMem = sumMemory(overhead);
  const sleepMem = sumMemory(sleeps);
  const groups = new Set(procs.map((p) => p.pgid));
  const example = procs.filter((p) => p.submissionId === ids[0]).map((p) => ({
    pid: p.pid,
    ppid: p.ppid,
    pgid: p.pgid,
    comm: p.comm,
    args: readCmdline(p.pid).slice(0, 160),
    rss_kb: readMemory(p.pid).rssKb,
    pss_kb: readMemory(p.pid).pssKb,
  }));
  // The `sh -c 'sleep 600'` that runs the entrypoint is arguably the user's, not jobhead's:
  // the figure against the target counts it (as the issue asks); this one shows it apart.
  const entrypointShells = sumMemory(
    overhead.filter((p) => /^(\/bin\/)?sh -c sleep 600$/.test(readCmdline(p.pid))),
  );
  // Helpers the head runs that carry no job's id and sit outside every job's group.
  const jobPids = new Set(findJobProcs(runId, headPids).map((p) => p.pid));
  const unattributed = sumMemory(
    descendantsOf(serverPid).filter((p) => !jobPids.has(p.pid) && p.state !== "Z"),
  );

  log(`memory: stopping ${jobs} jobs`);
  const t0 = performance.now();
  await mapPool(ids, SUBMIT_CONCURRENCY, (id) => stopJob(head, id));
  await waitUntil("every job process to be gone", () => {
    return !findJobProcs(runId, headPids).some((p) => wanted.has(p.submissionId!));
  }, {
    intervalMs: 20,
    timeoutMs: 60_000,
    describe: () => `${findJobProcs(runId, headPids).length} processes left`,
  });
  const goneS = (performance.now() - t0) / 1000;
  await waitAllTerminal(head, ids, { intervalMs: 20, timeoutMs: 60_000 });
  const stoppedS = (performance.now() - t0) / 1000;
  await delay(500);
  const after = readMemory(serverPid);

  return {
    jobs,
    statuses_while_running: running,
    head_pid: serverPid,
    head_rss_kb_before: atMost(before.rssKb, TARGETS.headRssIdleKb),
    head_rss_kb_with_jobs: atMost(withJobs.rssKb, TARGETS.headRssWithJobsKb),
    head_pss_kb_with_jobs: withJobs.pssKb,
    head_rss_kb_after_stop: after.rssKb,
    job_processes: procs.length,
    process_groups: groups.size,
    overhead_processes: overheadMem.count,
    overhead_processes_per_job: summarize([...ids].map((id) => perJob.get(id) ?? 0)),
    overhead_processes_per_job_max: atMost(
      Math.max(...ids.map((id) => perJob.get(id) ?? 0)),
      TARGETS.overheadProcessesPerJob,
    ),
    overhead_by_command: overheadMem.byComm,
    example_job: { id: ids[0], processes: example },
    entrypoint_sleeps: { count: sleepMem.count, rss_kb: sleepMem.rssKb, pss_kb: sleepMem.pssKb },
    overhead_rss_kb_per_job: atMost(overheadMem.rssKb / jobs, TARGETS.overheadPerJobKb),
    overhead_pss_kb_per_job: atMost(round(overheadMem.pssKb / jobs), TARGETS.overheadPssPerJobKb),
    without_entrypoint_shell: {
      entrypoint_shells: entrypointShells.count,
      overhead_rss_kb_per_job: round((overheadMem.rssKb - entrypointShells.rssKb) / jobs),
      overhead_pss_kb_per_job: round((overheadMem.pssKb - entrypointShells.pssKb) / jobs),
    },
    other_head_descendants: {
      count: unattributed.count,
      rss_kb: unattributed.rssKb,
      pss_kb: unattributed.pssKb,
      by_command: unattributed.byComm,
    },
    stop_all: {
      processes_gone_s: round(goneS),
      all_terminal_s: round(stoppedS),
      final_statuses: await countStatuses(head, ids),
    },
  };
}

/**
 * Issue #15 at scale: head RSS idle, with `jobs` running `sleep 600` jobs, and with one
 * WebSocket follower of each; then half of them stopped at once (POSTs all in flight), timed
 * until every process they had is dead (their pids, polled).
 */
async function benchScale(ctx: SectionContext): Promise<Record<string, unknown>> {
  const { head, serverPid, headPids } = ctx;
  const jobs = ctx.quick ? 100 : 1000;
  const stopped = jobs / 2;
  const runId = head.runId;
  const entrypoint = "echo up; sleep 600";

  const warm = await mapPool(Array(5).fill("true"), 5, (e) => submitJob(head, e));
  await waitAllTerminal(head, warm, { intervalMs: 20, timeoutMs: 30_000 });
  await delay(500);
  const idle = readMemory(serverPid);

  log(`scale: starting ${jobs} \`${entrypoint}\` jobs`);
  const t0 = performance.now();
  const ids = await mapPool(
    Array(jobs).fill(entrypoint),
    SUBMIT_CONCURRENCY,
    (e) => submitJob(head, e),
  );
  const followers: Follower[] = [];
  try {
    await waitNonePending(head, ids, 120_000);
    const startedS = (performance.now() - t0) / 1000;
    await delay(1000);
    const withJobs = readMemory(serverPid);

    log(`scale: attaching ${jobs} followers (one per job)`);
    await mapPool(ids, 50, async (id) => {
      const follower = followLog(head, id);
      followers.push(follower);
      await within(`a tail of job "${id}" to open`, follower.firstFrame, 30_000);
    });
    await delay(1000);
    const withFollowers = readMemory(serverPid);
    const running = await countStatuses(head, ids);

    const victims = new Set(ids.slice(0, stopped));
    const pids = findJobProcs(runId, headPids)
      .filter((p) => victims.has(p.submissionId!))
      .map((p) => p.pid);
    log(`scale: stopping ${stopped} jobs at once (${pids.length} processes)`);
    const s0 = performance.now();
    // All in flight at once: a head that answers them one by one takes long on a slow day.
    const answers = Promise.all([...victims].map((id) => stopJob(head, id, 120_000)));
    answers.catch(() => {}); // awaited below, once the processes are gone or have timed out
    // The pids are looked at in turn, each until it is gone: the same end, without reading
    // every pid's stat every 5 ms, which took most of a core from the machine measured.
    let next = 0;
    for (;;) {
      while (next < pids.length && !isAlive(pids[next])) next++;
      if (next === pids.length) break;
      if (performance.now() - s0 > 120_000) {
        throw new Error(`${pids.length - next} processes of the stopped jobs left after 120 s`);
      }
      await delay(5);
    }
    const goneMs = performance.now() - s0;
    await answers;
    const answeredMs = performance.now() - s0;
    const survivors = findJobProcs(runId, headPids).filter((p) => victims.has(p.submissionId!));
    await waitAllTerminal(head, [...victims], { intervalMs: 20, timeoutMs: 60_000 });
    const terminalMs = performance.now() - s0;
    return {
      jobs,
      entrypoint,
      all_running_s: round(startedS),
      statuses_with_followers: running,
      followers: followers.length,
      head_pid: serverPid,
      head_rss_kb_idle: atMost(idle.rssKb, TARGETS.headRssIdleKb),
      head_rss_kb_with_jobs: withJobs.rssKb,
      head_rss_kb_with_jobs_and_followers: atMost(withFollowers.rssKb, TARGETS.headRssAtScaleKb),
      head_pss_kb_with_jobs_and_followers: withFollowers.pssKb,
      stop_at_once: {
        jobs: stopped,
        processes: pids.length,
        method: "their pids polled in turn every ~5 ms; a zombie counts as gone",
        all_gone_ms: atMost(goneMs, TARGETS.scaleStopAllGoneMs),
        all_answered_ms: round(answeredMs),
        all_terminal_ms: round(terminalMs),
        survivors: survivors.length,
      },
    };
  } finally {
    await Promise.all(followers.map((f) => closeFollower(f)));
    await mapPool(ids, SUBMIT_CONCURRENCY, (id) => stopJob(head, id).catch(() => false));
    await waitAllTerminal(head, ids, { intervalMs: 50, timeoutMs: 120_000 });
  }
}

async function benchStop(ctx: SectionContext): Promise<Record<string, unknown>> {
  const { head, headPids } = ctx;
  const samples = ctx.quick ? 5 : 20;
  const warmup = 2;
  const runId = head.runId;
  const toGone: number[] = [];
  const toResponse: number[] = [];
  const toStopped: number[] = [];
  const processCounts: number[] = [];
  let survivors = 0;
  log(`stop: ${samples} \`sleep 600\` jobs, one at a time, /proc polled every ~1 ms`);
  for (let i = 0; i < samples + warmup; i++) {
    const id = await submitJob(head, "sleep 600");
    const ofJob = () => findJobProcs(runId, headPids).filter((p) => p.submissionId === id);
    await waitUntil(`job "${id}" to be RUNNING`, async () => {
      const status = await jobStatus(head, id);
      if (TERMINAL.has(status)) throw new Error(`job "${id}" ended early: ${status}`);
      return status === "RUNNING";
    }, { intervalMs: 5, timeoutMs: 10_000 });
    await waitUntil(`the sleep of job "${id}"`, () => ofJob().some((p) => p.comm === "sleep"), {
      intervalMs: 5,
      timeoutMs: 10_000,
    });
    await delay(50); // let the supervisor finish starting up
    const pids = ofJob().map((p) => p.pid);

    const t0 = performance.now();
    let answeredAt = 0;
    const answer = stopJob(head, id).then((stopped) => {
      answeredAt = performance.now();
      if (!stopped) throw new Error(`stop of job "${id}" answered stopped: false`);
    });
    let alive = pids;
    while (alive.length > 0) {
      alive = alive.filter(isAlive);
      if (alive.length > 0) await delay(1);
    }
    const goneAt = performance.now();
    await answer;
    // Anything the job started after the snapshot, or that left the group, shows up here.
    const left = ofJob();
    if (left.length > 0) {
      survivors += left.length;
      log(`stop: job "${id}" left ${left.map((p) => `${p.pid}:${p.comm}`).join(", ")}`);
    }
    let stoppedAt = 0;
    await waitUntil(`job "${id}" to be STOPPED`, async () => {
      const status = await jobStatus(head, id);
      stoppedAt = performance.now();
      if (TERMINAL.has(status) && status !== "STOPPED") {
        throw new Error(`job "${id}" ended ${status} after a stop`);
      }
      return status === "STOPPED";
    }, { intervalMs: 2, timeoutMs: 10_000 });
    if (i < warmup) continue;
    processCounts.push(pids.length);
    toGone.push(goneAt - t0);
    toResponse.push(answeredAt - t0);
    toStopped.push(stoppedAt - t0);
  }
  const gone = summarize(toGone);
  return {
    entrypoint: "sleep 600",
    samples,
    method: "pids of the job (environ + process group) polled in /proc every ~1 ms; " +
      "a zombie counts as gone",
    processes_per_job: summarize(processCounts),
    stop_to_all_gone_ms: gone,
    p50_ms: atMost(gone.p50, TARGETS.stopP50Ms),
    p99_ms: gone.p99,
    stop_response_ms: summarize(toResponse),
    stop_to_api_stopped_ms: {
      ...summarize(toStopped),
      note: "polled every ~2 ms after the processes were gone",
    },
    survivors_after_stop: survivors,
  };
}

/** The log file of job `id` on the head's disk (`<dataDir>/logs/<id>.log`). */
function logPathOf(head: Head, id: string): string {
  return `${head.dataDir}/logs/${id}.log`;
}

/** A shell loop that holds a job until `gate` exists, so followers attach before its output. */
function waitForGate(gate: string): string {
  return `while [ ! -e '${gate}' ]; do sleep 0.01; done`;
}

/** Waits until job `id` has a log file (its supervisor is running). */
async function waitForLogFile(head: Head, id: string): Promise<void> {
  await waitUntil(
    `the log file of job "${id}"`,
    () => Deno.stat(logPathOf(head, id)).then(() => true, () => false),
    { intervalMs: 10, timeoutMs: 30_000, describe: () => jobStatus(head, id) },
  );
}

async function benchLogs(ctx: SectionContext): Promise<Record<string, unknown>> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-bench-logs-" });
  try {
    // Memory first, on the fresh head: the 200 MB log read later must not weigh on it.
    const memory = await benchFollowerMemory(ctx);
    const latency = await benchTailLatency(ctx, dir);
    const throughput = await benchFollowerThroughput(ctx, dir);
    return {
      tail_latency: latency,
      follower_throughput: throughput,
      followers_memory: memory,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * A job prints `date +%s%N` every ~20 ms; a WebSocket follower and `tail -f` on the log file,
 * both attached before the first line, note when each line arrives (same clock).
 */
async function benchTailLatency(ctx: SectionContext, dir: string) {
  const { head } = ctx;
  const lines = ctx.quick ? 50 : 200;
  const gate = `${dir}/latency.go`;
  const body = `for i in $(seq ${lines}); do date +%s%N; sleep 0.02; done`;
  log(`logs: tail latency, ${lines} timestamped lines ~20 ms apart (WebSocket and tail -f)`);
  const id = await submitJob(head, `${waitForGate(gate)}; ${body}`);
  const ws = new LineLatencies();
  const tailF = new LineLatencies();
  const follower = followLog(head, id, (text, at) => ws.push(text, at));
  let tail: Deno.ChildProcess | undefined;
  let tailRead: Promise<void> | undefined;
  try {
    await waitForLogFile(head, id);
    tail = new Deno.Command("tail", {
      args: ["-n", "+1", "-f", logPathOf(head, id)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const stdout = tail.stdout;
    tailRead = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stdout) {
        const at = epochNs();
        tailF.push(decoder.decode(chunk, { stream: true }), at);
      }
    })();
    await within(`the tail of job "${id}" to open`, follower.opened, 10_000);
    await delay(300); // let the head's hub and tail's inotify watch settle
    await Deno.writeTextFile(gate, "");
    const close = await within(`the tail of job "${id}" to close`, follower.closed, 60_000);
    await waitUntil("tail -f to print every line", () => tailF.ms.length >= lines, {
      intervalMs: 10,
      timeoutMs: 5_000,
      describe: () => `${tailF.ms.length} of ${lines} lines`,
    });
    const wsMs = summarize(ws.ms);
    const tailMs = summarize(tailF.ms);
    return {
      entrypoint: body,
      method: "the job prints `date +%s%N`; receipt time (epoch ns, same clock) minus it, per " +
        "line; both readers attached before the first line, in this one process",
      lines,
      websocket_ms: { ...wsMs, lines_received: ws.ms.length, other_lines: ws.other },
      p50_ms: atMost(wsMs.p50, TARGETS.tailP50Ms),
      p99_ms: atMost(wsMs.p99, TARGETS.tailP99Ms),
      close_code: close.code,
      job_status: await jobStatus(head, id),
      tail_f: {
        command: "tail -n +1 -f <dataDir>/logs/<id>.log (subprocess, stdout piped)",
        latency_ms: { ...tailMs, lines_received: tailF.ms.length, other_lines: tailF.other },
      },
      ratio_to_tail_f: {
        p50: round(wsMs.p50 / tailMs.p50),
        p99: round(wsMs.p99 / tailMs.p99),
      },
    };
  } finally {
    await closeFollower(follower);
    if (tail) {
      try {
        tail.kill("SIGKILL");
      } catch {
        // exited already
      }
      await tail.status;
      await tailRead;
    }
  }
}

/**
 * A job writes 200 MB of 100-character lines. One follower attached before the first byte
 * follows it live; once the job has ended, another reads the whole log from byte 0 (the figure
 * with the target: what the head's follower path delivers, not how fast the job writes);
 * `cat` of the same file to /dev/null is the baseline.
 */
async function benchFollowerThroughput(ctx: SectionContext, dir: string) {
  const { head } = ctx;
  const bytes = ctx.quick ? 50_000_000 : 200_000_000;
  const gate = `${dir}/throughput.go`;
  const t0File = `${dir}/throughput.t0`;
  const t1File = `${dir}/throughput.t1`;
  const body = `head -c ${bytes} /dev/zero | tr '\\0' 'x' | fold -w 100`;
  log(`logs: follower throughput, a job writing ${bytes / 1e6} MB (one live follower)`);
  const id = await submitJob(
    head,
    `${waitForGate(gate)}; date +%s%N >'${t0File}'; ${body}; date +%s%N >'${t1File}'`,
  );
  const live = followLog(head, id);
  let replay: Follower | undefined;
  const cpu = () => ({ head: readCpuSeconds(ctx.serverPid), bench: readCpuSeconds(Deno.pid) });
  try {
    await within(`the tail of job "${id}" to open`, live.opened, 10_000);
    await delay(300);
    const liveCpu0 = cpu();
    await Deno.writeTextFile(gate, "");
    const liveClose = await within(`the tail of job "${id}" to close`, live.closed, 120_000);
    const liveCpu1 = cpu();
    await waitAllTerminal(head, [id], { intervalMs: 20, timeoutMs: 30_000 });
    const size = (await Deno.stat(logPathOf(head, id))).size;
    const writeStart = BigInt((await Deno.readTextFile(t0File)).trim());
    const writeEnd = BigInt((await Deno.readTextFile(t1File)).trim());

    log(`logs: follower throughput, replaying the finished ${round(size / 1e6)} MB log`);
    const replayCpu0 = cpu();
    const replayStart = epochNs();
    replay = followLog(head, id);
    const replayClose = await within(`the replay of job "${id}" to close`, replay.closed, 120_000);
    const replayCpu1 = cpu();
    const replaySeconds = Number(replayClose.atNs - replayStart) / 1e9;
    const replayRate = mbPerS(replay.chars, replayClose.atNs - replayStart);

    log("logs: follower throughput, cat baseline (best of 3)");
    let catNs = 0n;
    for (let i = 0; i < 3; i++) {
      const start = epochNs();
      const out = await new Deno.Command("cat", {
        args: [logPathOf(head, id)],
        stdin: "null",
        stdout: "null",
        stderr: "inherit",
      }).output();
      const took = epochNs() - start;
      if (!out.success) throw new Error(`cat of the log exited with ${out.code}`);
      if (catNs === 0n || took < catNs) catNs = took;
    }
    const catRate = mbPerS(size, catNs);
    return {
      entrypoint: body,
      log_bytes: size,
      method: "MB = 10^6 bytes; a follower counts the characters of its frames (the log is " +
        "ASCII, so bytes) until close 1000; time from opening the socket to its close; " +
        "*_cpu_s: CPU time (user+sys, 10 ms ticks) of the head and of this process meanwhile",
      replay: {
        note: "follower from byte 0 opened after the job ended: the head's read → frame → " +
          "send path at full speed",
        bytes_received: replay.chars,
        frames: replay.frames,
        close_code: replayClose.code,
        seconds: round(replaySeconds),
        head_cpu_s: round(replayCpu1.head - replayCpu0.head),
        bench_cpu_s: round(replayCpu1.bench - replayCpu0.bench),
      },
      mb_per_s: atLeast(replayRate, TARGETS.followerMbPerS),
      byte_count_diff: atMost(Math.abs(replay.chars - size), 0),
      live: {
        note: "follower attached before the job's first byte; bounded by how fast the job writes",
        bytes_received: live.chars,
        frames: live.frames,
        close_code: liveClose.code,
        byte_count_diff: atMost(Math.abs(live.chars - size), 0),
        writer_mb_per_s: round(mbPerS(size, writeEnd - writeStart)),
        follower_mb_per_s: round(mbPerS(live.chars, liveClose.atNs - writeStart)),
        close_after_writer_end_ms: round(Number(liveClose.atNs - writeEnd) / 1e6),
        head_cpu_s: round(liveCpu1.head - liveCpu0.head),
        bench_cpu_s: round(liveCpu1.bench - liveCpu0.bench),
      },
      cat: {
        command: "cat <dataDir>/logs/<id>.log >/dev/null (subprocess, best of 3)",
        mb_per_s: round(catRate),
      },
      ratio_to_cat: round(replayRate / catRate),
      job_status: await jobStatus(head, id),
    };
  } finally {
    await closeFollower(live);
    if (replay) await closeFollower(replay);
  }
}

/**
 * Head RSS idle, with 100 jobs that print a line every 100 ms, and with 10 followers of each
 * attached (every socket open and past its first frame).
 */
async function benchFollowerMemory(ctx: SectionContext) {
  const { head, serverPid } = ctx;
  const jobs = ctx.quick ? 20 : 100;
  const perJob = 10;
  // Long enough to outlast attaching on a loaded machine; they are stopped after the measurement.
  const lines = ctx.quick ? 100 : 200;
  const entrypoint = `for i in $(seq ${lines}); do echo line $i; sleep 0.1; done`;

  const warm = await mapPool(Array(3).fill("true"), 3, (e) => submitJob(head, e));
  await waitAllTerminal(head, warm, { intervalMs: 20, timeoutMs: 30_000 });
  await delay(500);
  const idle = readMemory(serverPid);

  log(`logs: ${jobs} jobs printing a line every 100 ms for ~${lines / 10} s`);
  const ids = await mapPool(
    Array(jobs).fill(entrypoint),
    SUBMIT_CONCURRENCY,
    (e) => submitJob(head, e),
  );
  const followers: Follower[] = [];
  let peakKb = 0;
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, readMemory(serverPid).rssKb);
  }, 100);
  try {
    await waitNonePending(head, ids, 60_000);
    await delay(1000);
    const withJobs = readMemory(serverPid);
    const kindsWithJobs = readRssByKind(serverPid);
    const statusesWithJobs = await countStatuses(head, ids);

    log(`logs: attaching ${jobs * perJob} followers (${perJob} per job)`);
    peakKb = 0;
    const t0 = performance.now();
    const targets = ids.flatMap((id) => Array<string>(perJob).fill(id));
    await mapPool(targets, 50, async (id) => {
      const follower = followLog(head, id);
      followers.push(follower);
      await within(`a tail of job "${id}" to open`, follower.opened, 30_000);
    });
    const openedS = (performance.now() - t0) / 1000;
    await within(
      "every follower's first frame",
      Promise.all(followers.map((f) => f.firstFrame)),
      30_000,
    );
    const attachedS = (performance.now() - t0) / 1000;
    await delay(1000); // let the head settle (GC, timers) while lines keep flowing
    const withFollowers = readMemory(serverPid);
    const kindsWithFollowers = readRssByKind(serverPid);
    const open = followers.filter((f) => f.ws.readyState === WebSocket.OPEN).length;
    const statusesWithFollowers = await countStatuses(head, ids);
    const peakWithFollowers = peakKb;

    log(`logs: closing ${followers.length} followers, stopping ${jobs} jobs`);
    await Promise.all(followers.map((f) => closeFollower(f)));
    await delay(500);
    const afterClose = readMemory(serverPid);
    const framesPerFollower = summarize(followers.map((f) => f.frames));
    const n = followers.length;
    return {
      entrypoint,
      jobs,
      followers: n,
      followers_per_job: perJob,
      statuses_before_followers: statusesWithJobs,
      statuses_with_followers: statusesWithFollowers,
      sockets_open_at_measurement: open,
      open_all_s: round(openedS),
      open_and_first_frame_all_s: round(attachedS),
      head_pid: serverPid,
      head_rss_kb_idle: idle.rssKb,
      head_rss_kb_with_jobs: withJobs.rssKb,
      head_rss_kb_with_followers: atMost(withFollowers.rssKb, TARGETS.headRssWithFollowersKb),
      head_pss_kb_with_followers: withFollowers.pssKb,
      head_rss_kb_peak_while_attached: peakWithFollowers,
      head_rss_kb_after_closing_followers: afterClose.rssKb,
      per_follower_kb: round((withFollowers.rssKb - withJobs.rssKb) / n),
      rss_kb_by_mapping: {
        note: "heap: the C heap (brk, native mallocs); anon: other anonymous memory (JS heap, " +
          "large mallocs, stacks); file: mapped files",
        with_jobs: kindsWithJobs,
        with_followers: kindsWithFollowers,
      },
      budget: "head RSS ≤ 120 MB (122880 kB) with 1000 followers across 100 jobs",
      frames_per_follower: framesPerFollower,
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(followers.map((f) => closeFollower(f)));
    await mapPool(ids, SUBMIT_CONCURRENCY, (id) => stopJob(head, id).catch(() => false));
    await waitAllTerminal(head, ids, { intervalMs: 50, timeoutMs: 60_000 });
  }
}

// ---------------------------------------------------------------------------------------------
// Driver

function parseArgs(args: string[]) {
  const opts = { only: undefined as string[] | undefined, quick: false, list: false, out: "" };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => inline ?? args[++i];
    if (flag === "--only") opts.only = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (flag === "--quick") opts.quick = true;
    else if (flag === "--list") opts.list = true;
    else if (flag === "--out") opts.out = value();
    else throw new Error(`Unknown argument: ${arg} (flags: --only a,b --list --quick --out FILE)`);
  }
  return opts;
}

async function machineInfo(): Promise<Record<string, unknown>> {
  let git = "";
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    if (out.success) git = new TextDecoder().decode(out.stdout).trim();
  } catch {
    // no git: leave it empty
  }
  return {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    nproc: navigator.hardwareConcurrency,
    cpu_model: cpus()[0]?.model ?? "",
    memory_total_mb: Math.round(totalmem() / 2 ** 20),
    commit: git || null,
  };
}

/** `path → ok` for every figure that carries a target. */
function collectTargets(value: unknown, path = ""): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    if (typeof obj.ok === "boolean" && typeof obj.value === "number") {
      out[path] = obj.ok;
      return out;
    }
    for (const [key, child] of Object.entries(obj)) {
      Object.assign(out, collectTargets(child, path ? `${path}.${key}` : key));
    }
  }
  return out;
}

/** An error's message (or stack), unwrapping what `await using` suppressed during disposal. */
function describeError(err: unknown, stack: boolean): string {
  if (err instanceof SuppressedError) {
    return `${describeError(err.error, stack)} (then, while disposing of the head: ${
      describeError(err.suppressed, stack)
    })`;
  }
  if (err instanceof Error) return (stack ? err.stack : undefined) ?? err.message;
  return String(err);
}

/** Heads still running: killed on SIGINT/SIGTERM, when `finally` blocks do not get to run. */
const activeHeads = new Set<Head>();

function killEverything(): void {
  for (const head of activeHeads) {
    const pids = new Set([head.pid, resolveServerPid(head.pid)]);
    killRunProcs(head.runId, pids);
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    try {
      Deno.removeSync(head.dataDir, { recursive: true });
    } catch {
      // removed already
    }
  }
}

/**
 * 500 WebSocket tails (raw sockets that send the upgrade and never read) follow a job that
 * writes 200 MB. Head RSS idle, at its peak, with the tails stalled (2 s and `settleS` after
 * the job's last byte) and after they close; `/-/healthz` latency (sequential GETs) while
 * the job writes and at both times the tails are stalled.
 */
async function benchStalledTails(ctx: SectionContext): Promise<Record<string, unknown>> {
  const { head, serverPid } = ctx;
  const tails = ctx.quick ? 100 : 500;
  const bytes = ctx.quick ? 50_000_000 : 200_000_000;
  const settleS = ctx.quick ? 5 : 30;
  const gate = await Deno.makeTempFile({ prefix: "jobhead-bench-gate-" });
  await Deno.remove(gate);
  const sockets: Deno.TcpConn[] = [];
  let peakKb = 0;
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, readMemory(serverPid).rssKb);
  }, 100);
  try {
    const warm = await mapPool(Array(3).fill("true"), 3, (e) => submitJob(head, e));
    await waitAllTerminal(head, warm, { intervalMs: 20, timeoutMs: 30_000 });
    await healthzLatencies(head, 100); // warm-up
    const idleLatencies = await healthzLatencies(head, ctx.quick ? 100 : 500);
    await delay(500);
    const idle = readMemory(serverPid);

    const id = await submitJob(
      head,
      `${waitForGate(gate)}; head -c ${bytes} /dev/zero | tr '\\0' x | fold -w 100; ` +
        "echo end; exec sleep 600",
    );
    await waitForLogFile(head, id);
    log(`stalled_tails: opening ${tails} tails that never read`);
    const { hostname, port } = new URL(head.url);
    const upgrade = new TextEncoder().encode(
      `GET /api/jobs/${id}/logs/tail HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
        "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    for (let i = 0; i < tails; i++) {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      sockets.push(conn);
      await conn.write(upgrade);
    }
    const withTails = readMemory(serverPid);
    peakKb = withTails.rssKb;

    log(`stalled_tails: the job writes ${bytes / 1e6} MB; /-/healthz meanwhile`);
    await Deno.writeTextFile(gate, "");
    const logPath = logPathOf(head, id);
    const whileWriting: number[] = [];
    const writeStart = performance.now();
    for (;;) {
      whileWriting.push(...await healthzLatencies(head, 10));
      // Lines of 100 characters, the last one without its newline, then "end\n".
      if ((await Deno.stat(logPath)).size >= bytes + bytes / 100 + 3) break;
      if (performance.now() - writeStart > 300_000) throw new Error("the job did not finish");
    }
    const writeS = (performance.now() - writeStart) / 1000;
    await delay(2_000); // the tails' buffers fill, the head settles
    const stalledLatencies = await healthzLatencies(head, ctx.quick ? 100 : 500);
    const stalled = readMemory(serverPid);
    const kinds = readRssByKind(serverPid);
    const tcpKb = readTcpMemoryKb();
    const peak = peakKb;
    // What the head settles to: frames stopped, its allocators and garbage collector idle.
    log(`stalled_tails: keeping ${tails} tails stalled for ${settleS} s`);
    await delay(settleS * 1000);
    const settledLatencies = await healthzLatencies(head, ctx.quick ? 100 : 500);
    const settled = readMemory(serverPid);
    const settledKinds = readRssByKind(serverPid);

    log(`stalled_tails: closing ${tails} tails`);
    for (const conn of sockets.splice(0)) conn.close();
    await delay(2_000);
    const afterClose = readMemory(serverPid);
    const overIdle = stalled.rssKb - idle.rssKb;
    return {
      tails,
      log_bytes: bytes,
      write_s: round(writeS),
      head_rss_kb_idle: idle.rssKb,
      head_rss_kb_with_tails_attached: withTails.rssKb,
      head_rss_kb_peak: peak,
      head_rss_kb_stalled: stalled.rssKb,
      head_rss_kb_after_closing: afterClose.rssKb,
      rss_kb_over_idle: atMost(overIdle, TARGETS.stalledTailsRssOverIdleKb),
      per_tail_kb: round(overIdle / tails),
      rss_kb_by_mapping: kinds,
      settle_s: settleS,
      head_rss_kb_stalled_settled: settled.rssKb,
      rss_kb_over_idle_settled: atMost(
        settled.rssKb - idle.rssKb,
        TARGETS.stalledTailsRssOverIdleKb,
      ),
      rss_kb_by_mapping_settled: settledKinds,
      kernel_tcp_kb_stalled: tcpKb,
      healthz_ms_idle: summarize(idleLatencies),
      healthz_ms_while_writing: summarize(whileWriting),
      healthz_ms_stalled: summarize(stalledLatencies),
      healthz_p99_ms_while_writing: atMost(
        percentile(whileWriting, 99),
        TARGETS.stalledTailsHealthzP99Ms,
      ),
      healthz_p99_ms_stalled: atMost(
        percentile(stalledLatencies, 99),
        TARGETS.stalledTailsHealthzP99Ms,
      ),
      healthz_ms_stalled_settled: summarize(settledLatencies),
      healthz_p99_ms_stalled_settled: atMost(
        percentile(settledLatencies, 99),
        TARGETS.stalledTailsHealthzP99Ms,
      ),
    };
  } finally {
    clearInterval(sampler);
    for (const conn of sockets) conn.close();
    await Deno.remove(gate).catch(() => {});
  }
}

/** `n` sequential `GET /-/healthz` latencies (ms). */
async function healthzLatencies(head: Head, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await head.fetch("/-/healthz", { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await res.text();
    ms.push(performance.now() - t0);
    if (!res.ok) throw new Error(`/-/healthz answered ${res.status}`);
  }
  return ms;
}

/**
 * Runs one section against a head of its own. Whatever happens, every process the section
 * started is killed and the head's data dir is removed; failures become `error` fields.
 */
async function runSection(
  section: Section,
  quick: boolean,
  meta: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const started = performance.now();
  let head: Head;
  try {
    head = await startHead({ extraArgs: section.headArgs });
  } catch (err) {
    log(`${section.name}: the head did not start: ${describeError(err, true)}`);
    return { error: `the head did not start: ${describeError(err, false)}` };
  }
  activeHeads.add(head);
  const serverPid = resolveServerPid(head.pid);
  const headPids = new Set([head.pid, serverPid]);
  let out: Record<string, unknown>;
  try {
    if (!("jobhead_version" in meta)) {
      const version = await head.fetch("/api/version").then((r) => r.json()).catch(() => ({}));
      meta.jobhead_version = version.jobhead_version ?? null;
    }
    out = await section.run({ head, serverPid, headPids, quick });
    out.section_s = round((performance.now() - started) / 1000);
  } catch (err) {
    log(`${section.name} failed: ${describeError(err, true)}`);
    out = {
      error: describeError(err, false),
      head_stderr_tail: head.output().stderr.slice(-4000),
    };
  } finally {
    const left = killRunProcs(head.runId, headPids);
    if (left > 0) log(`${section.name}: killed ${left} job processes left behind`);
  }
  try {
    await head[Symbol.asyncDispose]();
  } catch (err) {
    log(`${section.name}: stopping the head failed: ${describeError(err, true)}`);
    out.dispose_error = describeError(err, false);
    killEverything(); // only this head is active here
  } finally {
    activeHeads.delete(head);
    await Deno.remove(head.dataDir, { recursive: true }).catch(() => {});
  }
  return out;
}

async function main(): Promise<number> {
  const opts = parseArgs(Deno.args);
  if (opts.list) {
    for (const s of SECTIONS) console.log(`${s.name.padEnd(12)} ${s.description}`);
    return 0;
  }
  const unknown = (opts.only ?? []).filter((name) => !SECTIONS.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`Unknown section(s): ${unknown.join(", ")}`);
  const selected = SECTIONS.filter((s) => !opts.only || opts.only.includes(s.name));

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      log(`${signal}: killing heads and jobs`);
      killEverything();
      Deno.exit(130);
    });
  }

  const result: Record<string, unknown> = {
    meta: {
      ...await machineInfo(),
      quick: opts.quick,
      sections: selected.map((s) => s.name),
      note: "each section runs against a fresh head; latencies in ms, memory in kB",
      targets: TARGETS,
    },
  };
  let failed = false;
  for (const section of selected) {
    log(`== ${section.name}: ${section.description}`);
    const out = await runSection(section, opts.quick, result.meta as Record<string, unknown>);
    if ("error" in out || "dispose_error" in out) failed = true;
    result[section.name] = out;
  }
  result.targets_met = collectTargets(result);
  const json = JSON.stringify(result, null, 2);
  console.log(json);
  if (opts.out) await Deno.writeTextFile(opts.out, json + "\n");
  return failed ? 1 : 0;
}

/** Set in the environment of the copy of the benchmark that `rerunWithAllowAll` starts. */
const RERUN_ENV = "JOBHEAD_BENCH_RERUN";

/** Whether this process may read `/proc` (Deno ≥ 1.43 allows it only under `--allow-all`). */
function canReadProc(): boolean {
  try {
    Deno.readTextFileSync("/proc/self/stat");
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) return false;
    throw err;
  }
}

/**
 * Runs this benchmark again under `--allow-all` (which `--allow-run` can grant anyway), passing
 * signals on; resolves with its exit code.
 */
async function rerunWithAllowAll(): Promise<number> {
  log("reading /proc needs --allow-all since Deno 1.43: running the benchmark again with -A");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, ...Deno.args],
    env: { [RERUN_ENV]: "1" },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      try {
        child.kill(signal);
      } catch {
        // it has exited already
      }
    });
  }
  return (await child.status).code;
}

if (import.meta.main) {
  try {
    if (canReadProc()) Deno.exitCode = await main();
    else if (Deno.env.get(RERUN_ENV)) throw new Error("Cannot read /proc even with --allow-all");
    else Deno.exitCode = await rerunWithAllowAll();
  } catch (err) {
    killEverything();
    console.error(err instanceof Error ? err.message : err);
    Deno.exitCode = 2;
  }
}
