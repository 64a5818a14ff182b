/**
 * The jobhead client: submits, inspects, follows, stops and deletes jobs, uploads
 * working directories, and reads the cluster's capacity and use. It needs only `fetch` and `WebSocket`, so it runs in Deno, Node 20+
 * and browsers (uploading a local directory needs Deno or Node), and it parses every
 * answer with the schemas the server answers with.
 *
 * @example Submit a job with a local working directory and follow its output
 * ```ts
 * import { JobClient } from "./mod.ts";
 *
 * const client = new JobClient({ address: "http://127.0.0.1:8265" });
 * const { submission_id } = await client.submitJob({ entrypoint: "sh run.sh", workingDir: "." });
 * for await (const text of client.tailJobLogs(submission_id)) console.log(text);
 * console.log((await client.getJob(submission_id)).status);
 * ```
 * @module
 */
import type { z } from "zod";
import {
  DeleteJobResponse,
  ErrorResponse,
  isTerminal,
  JobDetails,
  JobLogsResponse,
  type JobStatus,
  StopJobResponse,
  type SubmitJobRequest,
  SubmitJobResponse,
  VersionResponse,
} from "../modules/jobs/schemas.ts";
import { PackageInfo } from "../modules/packages/schemas.ts";
import { ClusterResponse } from "../host/schemas.ts";
import { parsePackageUri } from "../storage/package_uri.ts";
import { ConnectionError, JobheadError, TailClosedError } from "./errors.ts";
import type { PackWorkingDirOptions } from "./working_dir.ts";

/** Where a head listens unless told otherwise. */
export const DEFAULT_ADDRESS = "http://127.0.0.1:8265";

/** A WebSocket constructor; Deno's and Node's take `{ headers }` as their second argument. */
export type WebSocketConstructor = new (
  url: string,
  options?: { headers?: Record<string, string> },
) => WebSocket;

/** Options of `new JobClient()`. */
export interface JobClientOptions {
  /** The head's URL; `host:port` means `http://host:port`. Default http://127.0.0.1:8265. */
  address?: string;
  /** Bearer token, when the head requires one. */
  token?: string;
  /** The `fetch` to use; the global one by default. */
  fetch?: typeof fetch;
  /** The WebSocket class to use (Node 20 has none built in); the global one by default. */
  WebSocket?: WebSocketConstructor;
}

/** What `submitJob()` takes: the API's request, and optionally a local directory to upload. */
export type SubmitJobOptions = z.input<typeof SubmitJobRequest> & {
  /**
   * A local directory to use as the working_dir: zipped, uploaded unless the head has that
   * content already, and sent as `runtime_env.working_dir`. Deno and Node only.
   */
  workingDir?: string;
  /** `.gitignore`-style patterns left out of `workingDir`, after its own .gitignore files. */
  excludes?: string[];
  /** Most bytes of file content `workingDir` may hold (default 100 MiB). */
  maxWorkingDirBytes?: number;
};

/** What `uploadWorkingDir()` did. */
export interface WorkingDirUpload {
  /** `pkg://<content hash>.zip`, for `runtime_env.working_dir`. */
  uri: string;
  /** False when the head had this content already. */
  uploaded: boolean;
  /** Files, directories and symlinks in the package. */
  entries: number;
  /** Bytes of file content. */
  bytes: number;
  /** Paths left out: symlinks to nothing in the package, and special files. */
  skipped: string[];
}

/** One page of `listJobs()`. */
export interface JobList {
  /** Newest first. */
  jobs: JobDetails[];
  /** Pass as `cursor` for the next page; absent on the last one. */
  nextCursor?: string;
}

/** A client of one jobhead head. */
export class JobClient {
  /** The head's URL, without a trailing slash. */
  readonly address: string;
  #token?: string;
  #fetch: typeof fetch;
  #WebSocket?: WebSocketConstructor;

  constructor(options: JobClientOptions = {}) {
    this.address = normalizeAddress(options.address ?? DEFAULT_ADDRESS);
    this.#token = options.token;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#WebSocket = options.WebSocket;
  }

  /** `GET /api/version`. */
  async version(): Promise<VersionResponse> {
    return await this.#call("GET", "/api/version", VersionResponse);
  }

  /**
   * Submits a job (`POST /api/jobs/`); with `workingDir`, uploads that directory first.
   * The job is PENDING when this resolves. Throws JobheadError (`CONFLICT` for a
   * duplicate id), and WorkingDirError when the directory cannot be packed.
   */
  async submitJob(options: SubmitJobOptions): Promise<SubmitJobResponse> {
    const { workingDir, excludes, maxWorkingDirBytes, ...request } = options;
    if (workingDir !== undefined) {
      if (request.runtime_env?.working_dir !== undefined) {
        throw new TypeError("Give workingDir or runtime_env.working_dir, not both");
      }
      const { uri } = await this.uploadWorkingDir(workingDir, {
        excludes,
        maxBytes: maxWorkingDirBytes,
      });
      request.runtime_env = { ...request.runtime_env, working_dir: uri };
    }
    return await this.#call("POST", "/api/jobs/", SubmitJobResponse, { json: request });
  }

  /**
   * The nodes' capacity and use, and the queue's length (`GET /api/cluster`, jobhead's
   * addition). Throws JobheadError `NOT_FOUND` from a head older than the scheduler.
   */
  async getCluster(): Promise<ClusterResponse> {
    return await this.#call("GET", "/api/cluster", ClusterResponse);
  }

  /** `GET /api/jobs/{id}`; throws JobheadError `NOT_FOUND` for an unknown job. */
  async getJob(id: string): Promise<JobDetails> {
    return await this.#call("GET", jobPath(id), JobDetails);
  }

  /** One page of jobs, newest first (`GET /api/jobs/`), optionally of some statuses only. */
  async listJobs(
    options: { status?: JobStatus[]; limit?: number; cursor?: string } = {},
  ): Promise<JobList> {
    const query = new URLSearchParams();
    if (options.status?.length) query.set("status", options.status.join(","));
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor !== undefined) query.set("cursor", options.cursor);
    const path = `/api/jobs/${query.size ? `?${query}` : ""}`;
    const response = await this.#request("GET", path);
    const jobs = await parseBody(response, JobDetails.array(), `GET ${path}`);
    return { jobs, nextCursor: response.headers.get("x-next-cursor") ?? undefined };
  }

  /**
   * A job's log (`GET /api/jobs/{id}/logs`): all of it, or the byte range `offset`
   * (negative: from the end) and `limit` (at most 16 MiB), with `offset` and `size` then.
   */
  async getJobLogs(
    id: string,
    range: { offset?: number; limit?: number } = {},
  ): Promise<JobLogsResponse> {
    const query = new URLSearchParams();
    if (range.offset !== undefined) query.set("offset", String(range.offset));
    if (range.limit !== undefined) query.set("limit", String(range.limit));
    const path = `${jobPath(id)}/logs${query.size ? `?${query}` : ""}`;
    return await this.#call("GET", path, JobLogsResponse);
  }

  /**
   * A job's log as its exact bytes (`GET /api/jobs/{id}/logs/raw`), streamed: no
   * transcoding, so binary output arrives as written. Throws JobheadError `NOT_FOUND`.
   */
  async getJobLogsRaw(id: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#request("GET", `${jobPath(id)}/logs/raw`);
    return response.body ?? new Blob([]).stream();
  }

  /**
   * Follows a job's log live (`GET /api/jobs/{id}/logs/tail`, a WebSocket), from byte
   * `offset` (default 0), yielding text as it is written. It ends when the job has ended and
   * all its output has been yielded. Throws TailClosedError if the socket closes before
   * that, so a finished loop always means the whole log; throws the signal's reason when
   * `signal` aborts. Before connecting it checks the job exists (JobheadError `NOT_FOUND`).
   */
  async *tailJobLogs(
    id: string,
    options: { offset?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<string, void, undefined> {
    const { signal } = options;
    signal?.throwIfAborted();
    await this.getJob(id);
    const from = options.offset ?? 0;
    const url = `${this.address.replace(/^http/, "ws")}${jobPath(id)}/logs/tail?offset=${from}`;
    const WebSocketClass = this.#WebSocket ?? (globalThis.WebSocket as WebSocketConstructor);
    if (typeof WebSocketClass !== "function") {
      throw new TypeError(
        "This runtime has no WebSocket (Node 20): pass one, e.g. from the ws package, " +
          "as new JobClient({ WebSocket })",
      );
    }
    // Browsers cannot send headers on a WebSocket; Deno and Node can.
    const socket = this.#token === undefined
      ? new WebSocketClass(url)
      : new WebSocketClass(url, { headers: { authorization: `Bearer ${this.#token}` } });
    socket.binaryType = "arraybuffer";
    const decoder = new TextDecoder();
    const received: string[] = [];
    let closed: CloseEvent | undefined;
    let opened = false;
    let wake = () => {};
    socket.onopen = () => opened = true;
    socket.onmessage = (event) => {
      received.push(
        typeof event.data === "string" ? event.data : decoder.decode(event.data, { stream: true }),
      );
      wake();
    };
    socket.onerror = () => {}; // a close event follows, with the code
    socket.onclose = (event) => {
      closed = event;
      wake();
    };
    const onAbort = () => wake();
    signal?.addEventListener("abort", onAbort);
    let offset = from;
    const encoder = new TextEncoder();
    try {
      for (;;) {
        signal?.throwIfAborted();
        const text = received.shift();
        if (text !== undefined) {
          offset += encoder.encode(text).length;
          yield text;
          continue;
        }
        if (closed) break;
        await new Promise<void>((resolve) => wake = resolve);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (socket.readyState <= 1) socket.close(1000); // CONNECTING or OPEN
    }
    const { code, reason } = closed!;
    if (code === 1000 && await this.#hasEnded(id)) return;
    const why = !opened
      ? "it could not be opened"
      : code === 1001
      ? "the head is shutting down"
      : code === 1000
      ? "the head closed it, yet the job has not ended"
      : `it closed with code ${code}${reason ? ` (${reason})` : ""}`;
    throw new TailClosedError(
      `The log tail of job ${id} ended before the job did: ${why}; resume from byte ${offset}`,
      { closeCode: code, offset },
    );
  }

  /**
   * Waits, without polling, until a job has ended, and returns it: follows the end of
   * its log until the head closes the tail. Throws as `tailJobLogs()` does.
   */
  async waitForJob(id: string, options: { signal?: AbortSignal } = {}): Promise<JobDetails> {
    const job = await this.getJob(id);
    if (isTerminal(job.status)) return job;
    const { size } = await this.getJobLogs(id, { offset: 0, limit: 0 });
    for await (const _ of this.tailJobLogs(id, { offset: size ?? 0, signal: options.signal })) {
      // Only the end of the tail matters here; new output is skipped.
    }
    return await this.getJob(id);
  }

  /**
   * Stops a job (`POST /api/jobs/{id}/stop`): true if it was PENDING or RUNNING (it will
   * end STOPPED), false if it had ended already.
   */
  async stopJob(id: string): Promise<boolean> {
    return (await this.#call("POST", `${jobPath(id)}/stop`, StopJobResponse)).stopped;
  }

  /** Deletes an ended job and its log (`DELETE /api/jobs/{id}`); `CONFLICT` if it is running. */
  async deleteJob(id: string): Promise<boolean> {
    return (await this.#call("DELETE", jobPath(id), DeleteJobResponse)).deleted;
  }

  /** Whether the head has package `uri` (`pkg://name` or `gcs://name`). */
  async hasPackage(uri: string): Promise<boolean> {
    try {
      await this.#call("GET", packagePath(uri), PackageInfo);
      return true;
    } catch (err) {
      if (err instanceof JobheadError && err.status === 404) return false;
      throw err;
    }
  }

  /** Uploads a zip as package `uri` (`PUT /api/packages/…`); `BAD_REQUEST` for an unsafe zip. */
  async uploadPackage(uri: string, zip: Uint8Array | Blob): Promise<PackageInfo> {
    const body = zip instanceof Blob ? zip : new Blob([zip as Uint8Array<ArrayBuffer>]);
    return await this.#call("PUT", packagePath(uri), PackageInfo, {
      body,
      headers: { "content-type": "application/zip" },
    });
  }

  /**
   * Packs a local directory (see `packWorkingDir()`) and uploads it as
   * `pkg://<content hash>.zip` unless the head has that content already.
   */
  async uploadWorkingDir(
    dir: string,
    options: PackWorkingDirOptions = {},
  ): Promise<WorkingDirUpload> {
    // Loaded here so that browsers, which cannot read directories, never load node:fs.
    const { packWorkingDir } = await import("./working_dir.ts");
    const pkg = await packWorkingDir(dir, options);
    const uri = `pkg://${pkg.name}`;
    const uploaded = !(await this.hasPackage(uri));
    if (uploaded) await this.uploadPackage(uri, await pkg.zip());
    return { uri, uploaded, entries: pkg.entries, bytes: pkg.bytes, skipped: pkg.skipped };
  }

  /** Whether a job has ended, counting a deleted job (only ended ones can be) as ended. */
  async #hasEnded(id: string): Promise<boolean> {
    try {
      return isTerminal((await this.getJob(id)).status);
    } catch (err) {
      if (err instanceof JobheadError && err.status === 404) return true;
      throw err;
    }
  }

  async #call<T extends z.ZodType>(
    method: string,
    path: string,
    schema: T,
    init: RequestOptions = {},
  ): Promise<z.infer<T>> {
    return await parseBody(await this.#request(method, path, init), schema, `${method} ${path}`);
  }

  /** Sends a request; throws ConnectionError, or JobheadError for an error answer. */
  async #request(method: string, path: string, init: RequestOptions = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.#token !== undefined) headers.set("authorization", `Bearer ${this.#token}`);
    let body = init.body;
    if (init.json !== undefined) {
      body = JSON.stringify(init.json);
      headers.set("content-type", "application/json");
    }
    let response: Response;
    try {
      response = await this.#fetch(`${this.address}${path}`, { method, headers, body });
    } catch (err) {
      throw new ConnectionError(
        `Cannot reach the head at ${this.address}: ${describeNetworkError(err)}`,
        err,
      );
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => "");
    const error = ErrorResponse.safeParse(parseJson(text));
    if (error.success) {
      throw new JobheadError(error.data.error.message, {
        code: error.data.error.code,
        status: response.status,
      });
    }
    throw new JobheadError(
      `${method} ${path} answered ${response.status}: ${text.slice(0, 200) || response.statusText}`,
      { code: `HTTP_${response.status}`, status: response.status },
    );
  }
}

/** What `#request()` sends besides method and path. */
interface RequestOptions {
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
}

/** `http://host:port` without a trailing slash; `host:port` alone means http. */
function normalizeAddress(address: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`;
  const url = new URL(withScheme);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`Not an http(s) address: ${address}`);
  }
  return url.href.replace(/\/+$/, "");
}

function jobPath(id: string): string {
  return `/api/jobs/${encodeURIComponent(id)}`;
}

function packagePath(uri: string): string {
  const ref = parsePackageUri(uri);
  if (!ref) {
    throw new TypeError(`Not a package URI (pkg://NAME or gcs://NAME, a safe NAME): ${uri}`);
  }
  return `/api/packages/${ref.protocol}/${encodeURIComponent(ref.name)}`;
}

async function parseBody<T extends z.ZodType>(
  response: Response,
  schema: T,
  what: string,
): Promise<z.infer<T>> {
  const text = await response.text();
  const result = schema.safeParse(parseJson(text));
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new JobheadError(
    `Unexpected answer to ${what}: ${issue?.path.join(".") || "body"}: ${issue?.message}`,
    { code: "BAD_RESPONSE", status: response.status },
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A short reason for a failed fetch, from Deno's or Node's error. */
function describeNetworkError(err: unknown): string {
  const texts: string[] = [];
  for (let e = err; e instanceof Error && texts.length < 4; e = e.cause) {
    texts.push(`${(e as { code?: string }).code ?? ""} ${e.message}`);
  }
  const all = texts.join(" ");
  if (/ECONNREFUSED|connection refused/i.test(all)) return "connection refused";
  if (/ENOTFOUND|EAI_AGAIN|dns error|failed to lookup|name or service not known/i.test(all)) {
    return "unknown host";
  }
  if (/ETIMEDOUT|timed out/i.test(all)) return "timed out";
  if (/ECONNRESET|connection reset|connection closed/i.test(all)) return "connection reset";
  return texts[texts.length - 1]?.trim() || String(err);
}
