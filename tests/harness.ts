/**
 * End-to-end test harness: starts a real jobhead head as a subprocess on a free port
 * and a temp data dir, and tears it down with every process it started.
 *
 * Every head gets `JOBHEAD_TEST_RUN=<runId>` in its environment; jobs inherit the
 * head's environment, so a scan of `/proc/*\/environ` finds every job process of a
 * run, from any head incarnation that shared the run id.
 *
 * With `JOBHEAD_TEST_STORE=postgres` (`deno task test:postgres`) every head keeps its state
 * in a fresh database of the test PostgreSQL server (tests/postgres.ts), one per data
 * directory: a head restarted on the same data directory finds its store again.
 *
 * @example
 * ```ts
 * await using head = await startHead();
 * const { body } = await head.json("/api/jobs/", { method: "POST", body: { entrypoint: "true" } });
 * await waitForStatus(head, body.submission_id, ["SUCCEEDED"]);
 * ```
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import { cgroupsOfHead, removeCgroupTree } from "./cgroups.ts";
import { waitForEvent } from "./events.ts";
import { HANG_GUARD_MS, withTimeout } from "./fifos.ts";
import { createTestDatabase, dropTestDatabase, type TestDatabase } from "./postgres.ts";
import type { KvStore } from "../storage/kv.ts";
import { openPostgresStore } from "../storage/postgres/mod.ts";
import { CHUNK_BYTES } from "../storage/postgres/packages.ts";
import { headRunFlags } from "../tools/run_flags.ts";

/** The store the heads of this test run use: `kv`, or `postgres` when JOBHEAD_TEST_STORE says so. */
export const TEST_STORE: "kv" | "postgres" = Deno.env.get("JOBHEAD_TEST_STORE") === "postgres"
  ? "postgres"
  : "kv";
/** The database of each data directory, on PostgreSQL. */
const databases = new Map<string, TestDatabase>();

/** How to start a head. */
export interface HeadOptions {
  /** Data dir to use (kept on dispose); a fresh temp dir (removed on dispose) when absent. */
  dataDir?: string;
  /** `--host`; the head's default (127.0.0.1) when absent. */
  host?: string;
  /** `--token`; also sent as `Authorization: Bearer` by `fetch` and `json`. */
  token?: string;
  /** More command-line arguments after the ones the harness sets. */
  extraArgs?: string[];
  /** Extra environment for the head (and so for its jobs). */
  env?: Record<string, string>;
  /** Marker put into the environment; reuse it to restart a head on the same data dir. */
  runId?: string;
  /** `start` (a head, the default) or `node` (a worker node of a cluster). */
  command?: "start" | "node";
}

/** A head started by `startHead`. */
export interface RunningHead {
  /** Base URL the head printed, e.g. `http://127.0.0.1:40123`. */
  url: string;
  dataDir: string;
  token?: string;
  /** Unique marker in the environment of the head and of every job it starts. */
  runId: string;
  pid: number;
  /** fetch(url + path) adding `Authorization: Bearer <token>` when a token was given */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** JSON helper: fetch + parse, returns {status, body} */
  json(
    path: string,
    init?: Omit<RequestInit, "body"> & { body?: unknown },
    // deno-lint-ignore no-explicit-any
  ): Promise<{ status: number; headers: Headers; body: any }>;
  /** stop the head process with the given signal (default SIGTERM) and await its exit; jobs keep running */
  kill(signal?: Deno.Signal): Promise<void>;
  /** Everything the head wrote to stdout and stderr so far (the last 1 MiB of each). */
  output(): { stdout: string; stderr: string };
  /** Resolves with all of `stream` once what the head wrote there matches `pattern`. */
  waitForOutput(pattern: RegExp, stream?: "stdout" | "stderr"): Promise<string>;
  /** stop the head, kill every process whose environment carries JOBHEAD_TEST_RUN=<runId> (i.e. all jobs it started, from any incarnation), remove the data dir unless it was passed in */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The environment variable that marks every process of one test run. */
export const RUN_ENV = "JOBHEAD_TEST_RUN";
/** How long a head may take to print its listening line (the first run also fetches npm packages). */
export const START_TIMEOUT_MS = 120_000;
/** How long a head may take to exit after a signal before the harness escalates to SIGKILL. */
export const EXIT_TIMEOUT_MS = 30_000;

const REPO_DIR = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const MAIN_TS = `${REPO_DIR}/main.ts`;
/** As `deno task start` runs the head. */
const HEAD_RUN_FLAGS = headRunFlags();
const LISTENING = /jobhead (?:node \S+ )?listening on (https?:\/\/\S+)/;
const MAX_OUTPUT_CHARS = 1 << 20;
/** The kernel's task flag for a process that has begun exiting (linux/sched.h). */
const PF_EXITING = 0x4;

/**
 * Starts a head (or a node) on port 0 and resolves once it printed `jobhead listening on …`
 * (`jobhead node NAME listening on …`).
 */
export async function startHead(opts: HeadOptions = {}): Promise<RunningHead> {
  const runId = opts.runId ?? crypto.randomUUID();
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "jobhead-test-" });
  const store: { args: string[]; env: Record<string, string> } = { args: [], env: {} };
  const ownStore = !opts.extraArgs?.some((arg) => arg.startsWith("--store")) &&
    opts.env?.JOBHEAD_STORE === undefined;
  if (TEST_STORE === "postgres" && ownStore) {
    let db = databases.get(dataDir);
    if (!db) databases.set(dataDir, db = await createTestDatabase());
    store.args = ["--store", db.url];
    store.env = { PGPASSWORD: db.password };
  }
  const args = [
    "run",
    ...HEAD_RUN_FLAGS,
    MAIN_TS,
    opts.command ?? "start",
    "--port",
    "0",
    "--data-dir",
    dataDir,
    ...(opts.host !== undefined ? ["--host", opts.host] : []),
    ...(opts.token !== undefined ? ["--token", opts.token] : []),
    ...store.args,
    ...(opts.extraArgs ?? []),
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_DIR,
    clearEnv: true,
    env: { ...inheritedEnv(), NO_COLOR: "1", ...store.env, ...opts.env, [RUN_ENV]: runId },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  const out = { stdout: "", stderr: "" };
  /** Called after each piece of output. */
  const onOutput = new Set<() => void>();
  let onUrl: (url: string) => void = () => {};
  const urlSeen = new Promise<string>((resolve) => onUrl = resolve);
  let pendingLine = "";
  const stdout = drain(child.stdout, (text) => {
    out.stdout = keepTail(out.stdout + text);
    for (const listener of onOutput) listener();
    pendingLine += text;
    const lines = pendingLine.split("\n");
    pendingLine = lines.pop() ?? "";
    for (const line of lines) {
      const m = LISTENING.exec(line);
      if (m) onUrl(m[1].replace(/\/+$/, ""));
    }
  });
  const stderr = drain(child.stderr, (text) => {
    out.stderr = keepTail(out.stderr + text);
    for (const listener of onOutput) listener();
  });
  // Job processes might inherit the head's pipes; once they are killed too, stop reading.
  const drained = async (): Promise<void> => {
    const guard = new AbortController();
    const done = Promise.all([stdout.done, stderr.done]);
    const late = await Promise.race([
      done.then(() => false),
      delay(2_000, undefined, { signal: guard.signal }).then(() => true, () => false),
    ]);
    guard.abort();
    if (late) await Promise.all([stdout.cancel(), stderr.cancel()]);
    await done;
  };
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const timer = new AbortController();
  const started = await Promise.race([
    urlSeen.then((url) => ({ url })),
    status.then((s) => ({ exit: s })),
    delay(START_TIMEOUT_MS, undefined, { signal: timer.signal }).then(
      () => ({ timeout: true }),
      () => ({ timeout: true }),
    ),
  ]);
  timer.abort();

  const stop = async (signal: Deno.Signal): Promise<void> => {
    if (!exited) {
      try {
        child.kill(signal);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // already exited
      }
      const guard = new AbortController();
      const timedOut = await Promise.race([
        status.then(() => false),
        delay(EXIT_TIMEOUT_MS, undefined, { signal: guard.signal }).then(() => true, () => false),
      ]);
      guard.abort();
      if (timedOut) {
        child.kill("SIGKILL");
        await status;
        throw new Error(
          `head ${child.pid} did not exit within ${EXIT_TIMEOUT_MS} ms of ${signal}\n${out.stderr}`,
        );
      }
    }
    await status;
  };

  const dispose = async (): Promise<void> => {
    try {
      await stop("SIGTERM");
    } catch {
      // escalated to SIGKILL already; cleanup goes on
    }
    await killProcessesWithEnv(RUN_ENV, runId);
    for (const cgroup of cgroupsOfHead(out.stderr)) await removeCgroupTree(cgroup);
    await drained();
    if (ownDir) {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      const db = databases.get(dataDir);
      databases.delete(dataDir);
      if (db) await dropTestDatabase(db).catch(() => {});
    }
  };

  if (!("url" in started)) {
    try {
      if (!exited) child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
    await dispose();
    const why = "exit" in started
      ? `head exited with code ${started.exit.code} before listening`
      : `head did not print its listening line within ${START_TIMEOUT_MS} ms`;
    throw new Error(`${why}:\n${out.stderr}${out.stdout}`);
  }

  const url = started.url;
  const token = opts.token;
  const headFetch = (path: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (token !== undefined && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${token}`);
    }
    return fetch(url + path, { ...init, headers });
  };

  return {
    url,
    dataDir,
    token,
    runId,
    pid: child.pid,
    fetch: headFetch,
    async json(path, init = {}) {
      const { body, ...rest } = init;
      const headers = new Headers(rest.headers);
      let sent: BodyInit | undefined;
      if (body !== undefined) {
        sent = isBodyInit(body) ? body : JSON.stringify(body);
        if (!headers.has("content-type")) headers.set("content-type", "application/json");
      }
      const res = await headFetch(path, { ...rest, headers, body: sent });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text === "" ? null : JSON.parse(text);
      } catch { /* not JSON: keep the text so a failing assertion shows it */ }
      return { status: res.status, headers: res.headers, body: parsed };
    },
    kill: (signal: Deno.Signal = "SIGTERM") => stop(signal),
    output: () => ({ ...out }),
    async waitForOutput(pattern, stream = "stderr") {
      let listener = () => {};
      const seen = new Promise<string>((resolve) => {
        listener = () => {
          if (pattern.test(out[stream])) resolve(out[stream]);
        };
        onOutput.add(listener);
        listener();
      });
      try {
        return await withTimeout(seen, HANG_GUARD_MS, `${pattern} on the head's ${stream}`)
          .catch((err) => Promise.reject(new Error(`${err.message}:\n${out[stream]}`)));
      } finally {
        onOutput.delete(listener);
      }
    },
    [Symbol.asyncDispose]: dispose,
  };
}

/**
 * The store of a head, opened as the head opens it (the data directory's KV file, or its
 * PostgreSQL database): for tests that look at, or change, what it keeps.
 */
export async function openStoreOf(
  head: Pick<RunningHead, "dataDir" | "token">,
): Promise<{ kv: KvStore } & AsyncDisposable> {
  const db = databases.get(head.dataDir);
  if (!db) {
    const kv = await Deno.openKv(`${head.dataDir}/jobhead.kv`);
    return { kv, [Symbol.asyncDispose]: () => Promise.resolve(kv.close()) };
  }
  const store = await openPostgresStore(db.url, { password: db.password, token: head.token });
  return { kv: store.kv, [Symbol.asyncDispose]: () => store.close() };
}

/**
 * Puts a package into a head's store as it is, unchecked: one that reached the store
 * some other way than an upload (the data directory's `packages/`, or PostgreSQL's rows).
 */
export async function plantPackage(
  head: Pick<RunningHead, "dataDir" | "token">,
  ref: { protocol: string; name: string },
  zip: Uint8Array,
): Promise<void> {
  const db = databases.get(head.dataDir);
  if (!db) {
    await Deno.mkdir(`${head.dataDir}/packages/${ref.protocol}`, { recursive: true });
    await Deno.writeFile(`${head.dataDir}/packages/${ref.protocol}/${ref.name}`, zip);
    return;
  }
  const store = await openPostgresStore(db.url, { password: db.password, token: head.token });
  try {
    const content = crypto.randomUUID();
    await store.sql.begin(async (tx) => {
      for (let seq = 0; seq * CHUNK_BYTES < Math.max(zip.length, 1); seq++) {
        const data = zip.subarray(seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES);
        await tx`INSERT INTO jobhead_package_chunks (content, seq, data)
          VALUES (${content}, ${seq}, ${data})`;
      }
      await tx`INSERT INTO jobhead_packages (protocol, name, content, size, uploaded_at, last_used)
        VALUES (${ref.protocol}, ${ref.name}, ${content}, ${zip.length}, ${Date.now()}, ${Date.now()})`;
    });
  } finally {
    await store.close();
  }
}

/** Statuses no job leaves. */
export const TERMINAL = ["STOPPED", "SUCCEEDED", "FAILED"];

/**
 * Waits until job `id` has one of `statuses` and returns its details, reading
 * `GET /api/jobs/{id}` as the head announces changes of the job. Throws on an error
 * response, or when the job reached a terminal status that is not among `statuses`.
 */
export async function waitForStatus(
  head: RunningHead,
  id: string,
  statuses: string[],
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  let last: unknown;
  const what = `job "${id}" to be ${statuses.join("|")}`;
  try {
    return await waitForEvent(head, what, async () => {
      const { status, body } = await head.json(`/api/jobs/${encodeURIComponent(id)}`);
      if (status !== 200) {
        throw new Error(`GET /api/jobs/${id} answered ${status}: ${JSON.stringify(body)}`);
      }
      last = body;
      if (statuses.includes(body.status)) return body;
      if (TERMINAL.includes(body.status)) {
        throw new Error(
          `job "${id}" ended ${body.status}, expected ${statuses.join("|")}: ${
            JSON.stringify(body)
          }`,
        );
      }
    }, { types: ["job"], concerns: (_, row) => row.submission_id === id });
  } catch (err) {
    if (err instanceof Error && err.message.endsWith(what)) {
      err.message += `; last seen: ${JSON.stringify(last)}`;
    }
    throw err;
  }
}

/** Pids of the live processes whose environment holds `name=value` (zombies have none). */
export async function processesWithEnv(name: string, value: string): Promise<number[]> {
  const needle = `${name}=${value}`;
  const pids: number[] = [];
  const reads: Promise<void>[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (pid === Deno.pid) continue;
    reads.push(
      Deno.readFile(`/proc/${pid}/environ`).then((bytes) => {
        const vars = new TextDecoder().decode(bytes).split("\0");
        if (vars.includes(needle)) pids.push(pid);
      }, () => {}), // gone meanwhile, or not ours to read
    );
  }
  await Promise.all(reads);
  return pids.sort((a, b) => a - b);
}

/** What `/proc/<pid>/stat` says about a process. */
export interface ProcessInfo {
  pid: number;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** A zombie, or on its way out (it may already have closed its files). */
  exiting: boolean;
}

/** `/proc/<pid>/stat` of a process, or undefined when there is no such process. */
export async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  let stat: string;
  try {
    stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  return {
    pid,
    state,
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    sid: Number(fields[3]),
    exiting: state === "Z" || state === "X" || (Number(fields[6]) & PF_EXITING) !== 0,
  };
}

/** Whether `pid` is a live process (a zombie, or one already exiting, counts as dead). */
export async function isAlive(pid: number): Promise<boolean> {
  const info = await processInfo(pid);
  return info !== undefined && !info.exiting;
}

/** Pids of the live processes in process group `pgid`. */
export async function processesInGroup(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const info = await processInfo(Number(entry.name));
    if (info?.pgid === pgid && !info.exiting) pids.push(info.pid);
  }
  return pids.sort((a, b) => a - b);
}

/**
 * SIGKILLs every process whose environment holds `name=value`, again until none is
 * left (a process may fork between a scan and its kill). Safe to repeat.
 */
export async function killProcessesWithEnv(name: string, value: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const pids = await processesWithEnv(name, value);
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone already */ }
    }
    // A killed process lingers for a moment before it becomes a zombie.
    await delay(5);
  }
}

function inheritedEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  // The head reads JOBHEAD_* as configuration; the caller's shell must not leak in.
  for (const key of Object.keys(env)) if (key.startsWith("JOBHEAD_")) delete env[key];
  return env;
}

/** Reads a pipe to its end in the background; `cancel()` gives up early. */
function drain(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): { done: Promise<void>; cancel(): Promise<void> } {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    try {
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        onText(decoder.decode(r.value, { stream: true }));
      }
      onText(decoder.decode());
    } catch {
      // cancelled
    } finally {
      reader.releaseLock();
    }
  })();
  return { done, cancel: () => reader.cancel().catch(() => {}) };
}

function keepTail(text: string): string {
  return text.length > MAX_OUTPUT_CHARS ? text.slice(-MAX_OUTPUT_CHARS) : text;
}

function isBodyInit(body: unknown): body is BodyInit {
  return typeof body === "string" || body instanceof Uint8Array ||
    body instanceof ArrayBuffer || body instanceof ReadableStream || body instanceof Blob ||
    body instanceof FormData || body instanceof URLSearchParams;
}
