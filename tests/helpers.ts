/** Small helpers the end-to-end tests share: submitting, process checks, WebSocket tails. */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { processesInGroup, processesWithEnv, RUN_ENV, type RunningHead } from "./harness.ts";
import { HANG_GUARD_MS, withTimeout } from "./fifos.ts";

/** Whether `path` exists (files a head removes or makes again in its own time). */
export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Submits a job, asserts a 200, and returns its submission id. */
export async function submitJob(
  head: RunningHead,
  request: Record<string, unknown>,
): Promise<string> {
  const { status, body } = await head.json("/api/jobs/", { method: "POST", body: request });
  assert.equal(status, 200, `submit answered ${status}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.submission_id, "string");
  return body.submission_id;
}

/** Asks the head to stop a job and returns the `stopped` flag. */
export async function stopJob(head: RunningHead, id: string): Promise<boolean> {
  const { status, body } = await head.json(`/api/jobs/${id}/stop`, { method: "POST" });
  assert.equal(status, 200, `stop answered ${status}: ${JSON.stringify(body)}`);
  return body.stopped;
}

/** The whole log of a job, through `GET /api/jobs/{id}/logs`. */
export async function jobLogs(head: RunningHead, id: string): Promise<string> {
  const { status, body } = await head.json(`/api/jobs/${id}/logs`);
  assert.equal(status, 200, `logs answered ${status}: ${JSON.stringify(body)}`);
  return body.logs;
}

/**
 * Pids of the live processes of job `id` of `head`'s run: every one carries
 * JOBHEAD_SUBMISSION_ID, and the run's marker (other tests may run jobs of the same id).
 */
export async function jobProcesses(head: RunningHead, id: string): Promise<number[]> {
  const ofRun = new Set(await processesWithEnv(RUN_ENV, head.runId));
  return (await processesWithEnv("JOBHEAD_SUBMISSION_ID", id)).filter((pid) => ofRun.has(pid));
}

/**
 * Asserts that no process of job `id` is alive. Call it once the job's own processes
 * are known gone (a FIFO's EOF) and its status is terminal: only the supervisor's
 * watchdog may still be on its way out then, for a few milliseconds, and no event
 * announces that, so this alone re-scans, for at most `graceMs`.
 */
export async function assertNoJobProcesses(
  head: RunningHead,
  id: string,
  { graceMs = 5_000 } = {},
): Promise<void> {
  const deadline = Date.now() + graceMs;
  let pids = await jobProcesses(head, id);
  while (pids.length > 0 && Date.now() < deadline) {
    await delay(5);
    pids = await jobProcesses(head, id);
  }
  assert.deepEqual(pids, [], `job "${id}" left processes behind: ${await describe(pids)}`);
}

/** Asserts that process group `pgid` is empty, allowing the same grace as `assertNoJobProcesses`. */
export async function assertGroupGone(pgid: number, { graceMs = 5_000 } = {}): Promise<void> {
  const deadline = Date.now() + graceMs;
  let pids = await processesInGroup(pgid);
  while (pids.length > 0 && Date.now() < deadline) {
    await delay(5);
    pids = await processesInGroup(pgid);
  }
  assert.deepEqual(
    pids,
    [],
    `process group ${pgid} outlived its supervisor: ${await describe(pids)}`,
  );
}

/** Asserts an error response: status, JSON error code, and optionally text in the message. */
export function assertError(
  // deno-lint-ignore no-explicit-any
  res: { status: number; body: any },
  status: number,
  code: string,
  messageIncludes?: string | RegExp,
): void {
  const shown = JSON.stringify(res.body);
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${shown}`);
  assert.equal(typeof res.body?.error?.message, "string", `not a JSON error: ${shown}`);
  assert.equal(res.body.error.code, code, `expected code ${code}: ${shown}`);
  if (typeof messageIncludes === "string") {
    assert.ok(
      res.body.error.message.includes(messageIncludes),
      `message lacks "${messageIncludes}": ${shown}`,
    );
  } else if (messageIncludes) {
    assert.match(res.body.error.message, messageIncludes);
  }
}

/** A string quoted for /bin/sh. */
export function q(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** What a WebSocket tail delivered before it closed. */
export interface TailResult {
  text: string;
  frames: string[];
  code: number;
  reason: string;
  wasClean: boolean;
}

/**
 * Follows `/api/jobs/{id}/logs/tail` until the server closes it. `onText` sees the text
 * received so far after every frame. Rejects when the socket errors before opening.
 */
export function tailLog(
  head: RunningHead,
  id: string,
  opts: {
    offset?: number;
    headers?: Record<string, string>;
    onText?: (text: string) => void | Promise<void>;
    timeoutMs?: number;
  } = {},
): Promise<TailResult> {
  const query = opts.offset === undefined ? "" : `?offset=${opts.offset}`;
  const url = `${head.url.replace(/^http/, "ws")}/api/jobs/${id}/logs/tail${query}`;
  const headers = opts.headers ??
    (head.token === undefined ? {} : { authorization: `Bearer ${head.token}` });
  const ws = new WebSocket(url, { headers });
  const frames: string[] = [];
  let text = "";
  let failure: Error | undefined;
  const closed = new Promise<TailResult>((resolve, reject) => {
    ws.onmessage = async (e) => {
      if (typeof e.data !== "string") {
        failure ??= new Error(`binary frame on the log tail of "${id}"`);
        return;
      }
      frames.push(e.data);
      text += e.data;
      try {
        await opts.onText?.(text);
      } catch (err) {
        failure ??= err as Error;
        ws.close();
      }
    };
    ws.onerror = () => {};
    ws.onclose = (e) => {
      if (failure) reject(failure);
      else resolve({ text, frames, code: e.code, reason: e.reason, wasClean: e.wasClean });
    };
  });
  return withTimeout(closed, opts.timeoutMs ?? HANG_GUARD_MS, `the log tail of "${id}" to close`)
    .catch((err) => {
      if (ws.readyState !== WebSocket.CLOSED) ws.close();
      return closed.catch(() => {}).then(() => Promise.reject(err));
    });
}

/**
 * Opens a raw connection to `head` and sends a WebSocket upgrade request for `path`, and
 * nothing else: the caller reads (or never reads) what comes back.
 */
export async function sendUpgrade(
  head: RunningHead,
  path: string,
  headers: Record<string, string> = {},
): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(head.url);
  const conn = await Deno.connect({
    hostname: hostname.replace(/^\[|\]$/g, ""),
    port: Number(port),
  });
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ];
  await conn.write(new TextEncoder().encode(lines.join("\r\n")));
  return conn;
}

/**
 * Sends a WebSocket upgrade request over a raw socket and returns the HTTP status
 * line's code and the body the server answered with instead of upgrading.
 */
export async function rawUpgrade(
  head: RunningHead,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; response: string }> {
  using conn = await sendUpgrade(head, path, headers);
  const buf = new Uint8Array(16 * 1024);
  let response = "";
  // The status line and headers arrive first; that is all we need.
  while (!response.includes("\r\n\r\n")) {
    const n = await withTimeout(
      conn.read(buf),
      HANG_GUARD_MS,
      `an answer to the upgrade of ${path}`,
    );
    if (n === null) break;
    response += new TextDecoder().decode(buf.subarray(0, n));
  }
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(response);
  assert.ok(m, `no HTTP status line in ${JSON.stringify(response)}`);
  return { status: Number(m[1]), response };
}

async function describe(pids: number[]): Promise<string> {
  const lines = await Promise.all(pids.map(async (pid) => {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    return `${pid}: ${cmd.replaceAll("\0", " ").trim()}`;
  }));
  return lines.join("; ");
}
