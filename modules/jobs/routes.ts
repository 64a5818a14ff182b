/** HTTP and WebSocket routes of the jobs API (API.md, "Jobs"): parse, call the service, respond. */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { heldForClient, parseInput, parseListInput, readJson } from "../../kit/http.ts";
import { UnavailableError, ValidationError } from "../../kit/errors.ts";
import type { Gauge, HeadInfo } from "../../kit/module.ts";
import type { Job } from "../../kit/job_record.ts";
import { JobCursor, type JobPage } from "../../storage/jobs.ts";
import { jsonArrayStream } from "../../kit/json_stream.ts";
import { describeRoute } from "../../kit/route_doc.ts";
import type { LogFollowers } from "./log_follower.ts";
import { LogLines } from "./log_lines.ts";
import { rawLogResponse } from "./raw_log.ts";
import { proxyToNode, relayTail } from "./node_proxy.ts";
import { wholeLogJson } from "./whole_log.ts";
import {
  DeleteJobResponse,
  JobDetails,
  JobId,
  JobLogsResponse,
  JobStatus,
  LogLineResponse,
  LogSearchResponse,
  StopJobResponse,
  SubmitJobRequest,
  SubmitJobResponse,
  VersionResponse,
} from "./schemas.ts";
import { actorIdOf, type JobService } from "./service.ts";
import { createLogger } from "../../kit/log.ts";
import { errorMessage } from "../../storage/errors.ts";

const log = createLogger("jobs");

/** Ray's job API level, and the Ray version whose clients we answer as. */
const RAY_API_VERSION = "4";
const RAY_VERSION = "2.50.0";

/** What the routes need besides the service. */
export interface JobRoutesOptions {
  info: HeadInfo;
  followers: LogFollowers;
  /** Seconds of silence after which a tail socket is pinged, and dropped if it does not answer. */
  idleTimeoutS: number;
  /** Open tails at most: past it an upgrade is answered 503. */
  maxTails: number;
  /** Aborted at shutdown: live tails close with 1001. */
  signal: AbortSignal;
  /** Counts the tail sockets open. */
  tailsOpen?: Gauge;
}

/** Jobs read from the store at a time when a list is streamed whole. */
const LIST_PAGE_SIZE = 500;

const Integer = z.coerce.number().int();
const ListQuery = z.object({
  status: z.string().optional(),
  limit: Integer.min(1).max(100_000).optional(),
  cursor: JobCursor.optional(),
});
const LogsQuery = z.object({
  offset: Integer.optional(),
  limit: Integer.min(0).optional(),
});
const IdParams = z.object({ id: JobId });
const LogLineQuery = z.object({
  offset: Integer.optional(),
  line: Integer.min(0).optional(),
}).strict();
const LogSearchQuery = z.object({
  q: z.string().min(1).max(1000),
  from: Integer.min(0).default(0),
  direction: z.enum(["forward", "backward"]).default("forward"),
});

/** The jobs API as a Hono app. */
export function jobRoutes(jobs: JobService, options: JobRoutesOptions): Hono {
  const { info } = options;
  const app = new Hono();

  const versionDoc = describeRoute({
    summary: "The Ray API level spoken, and jobhead's version",
    response: VersionResponse,
  });
  app.get("/api/version", versionDoc, (c) => {
    return c.json(
      {
        version: RAY_API_VERSION,
        ray_version: RAY_VERSION,
        ray_commit: "jobhead",
        session_name: info.sessionName,
        jobhead_version: info.version,
      } satisfies VersionResponse,
    );
  });

  const submit = async (c: Context) => {
    const request = await readJson(c, SubmitJobRequest);
    const job = await jobs.submit(request);
    return c.json({ job_id: job.id, submission_id: job.id } satisfies SubmitJobResponse);
  };
  const submitDoc = describeRoute({
    summary: "Submits a job: answers at once, the job PENDING; it starts asynchronously",
    description: "Unknown fields are a 400 naming the field; `null` stands for an absent field.",
    body: SubmitJobRequest,
    response: SubmitJobResponse,
  });
  app.post("/api/jobs/", submitDoc, submit);
  app.post("/api/jobs", submitDoc, submit);

  const list = async (c: Context) => {
    const query = parseInput(ListQuery, c.req.query(), "query");
    // An empty `status` filters nothing.
    const statuses = parseListInput(JobStatus, query.status?.toUpperCase() || undefined, "status");
    if (query.limit === undefined) {
      // Ray's list_jobs() pages nothing: every job, streamed page by page from the store.
      // The first page is read before the answer starts, so that a store that is away is
      // a 503 rather than a 200 cut short.
      const first = await jobs.list({ statuses, limit: LIST_PAGE_SIZE, cursor: query.cursor });
      const all = allJobs(jobs, statuses, first);
      return c.body(jsonArrayStream(all), 200, { "content-type": "application/json" });
    }
    const page = await jobs.list({ statuses, limit: query.limit, cursor: query.cursor });
    if (page.cursor) c.header("X-Next-Cursor", page.cursor);
    return c.json(page.jobs.map((job) => toDetails(job, info)));
  };

  async function* allJobs(
    service: JobService,
    statuses: JobStatus[] | undefined,
    page: JobPage<Job>,
  ) {
    for (;;) {
      for (const job of page.jobs) yield toDetails(job, info);
      if (!page.cursor) return;
      page = await service.list({ statuses, limit: LIST_PAGE_SIZE, cursor: page.cursor });
    }
  }
  const listDoc = describeRoute({
    summary: "Jobs, newest first",
    description: "`status` is a comma-separated list. Without `limit`, every job (streamed); " +
      "with `limit`, a page, and the next page's cursor in the `X-Next-Cursor` header.",
    query: ListQuery,
    response: z.array(JobDetails),
    responseHeaders: {
      "X-Next-Cursor": "With `limit`: `cursor` of the next page; absent at the end",
    },
  });
  app.get("/api/jobs/", listDoc, list);
  app.get("/api/jobs", listDoc, list);

  const getDoc = describeRoute({ summary: "One job", params: IdParams, response: JobDetails });
  app.get("/api/jobs/:id", getDoc, async (c) => {
    const job = await jobs.get(jobIdParam(c));
    return c.json(toDetails(job, info));
  });

  const stopDoc = describeRoute({
    summary: "Stops a job: `stopped` is true if it was PENDING or RUNNING",
    params: IdParams,
    response: StopJobResponse,
  });
  app.post("/api/jobs/:id/stop", stopDoc, async (c) => {
    const stopped = await jobs.stop(jobIdParam(c));
    return c.json({ stopped } satisfies StopJobResponse);
  });

  const deleteDoc = describeRoute({
    summary: "Deletes an ended job and its log (409 while it runs)",
    params: IdParams,
    response: DeleteJobResponse,
  });
  app.delete("/api/jobs/:id", deleteDoc, async (c) => {
    await jobs.delete(jobIdParam(c));
    return c.json({ deleted: true } satisfies DeleteJobResponse);
  });

  const logsDoc = describeRoute({
    summary: "A job's log: the whole of it, or a byte range",
    description: 'Without `offset` and `limit`: `{"logs"}` alone, the whole log. ' +
      "With either (`offset` < 0 counts from the end; `limit` at most 16 MiB): " +
      "the range, with `offset` and `size`.",
    params: IdParams,
    query: LogsQuery,
    response: JobLogsResponse,
  });
  app.get("/api/jobs/:id/logs", logsDoc, async (c) => {
    const query = parseInput(LogsQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    const node = jobs.nodeElsewhere(await jobs.get(id)); // 404 before the answer starts
    if (node) return await proxyToNode(node, c.req.raw, jobs.clusterToken);
    if (query.offset === undefined && query.limit === undefined) {
      const body = wholeLogJson(jobs.logStore, id);
      return c.body(body, 200, { "content-type": "application/json" });
    }
    const range = await jobs.readLogs(id, query);
    return c.json(range satisfies JobLogsResponse);
  });

  // The log view's reads (docs/ui.md): exact bytes, line numbers, and search over the file.
  const lines = new LogLines();
  const rawDoc = describeRoute({
    summary: "A job's log as its exact bytes, with HTTP ranges",
    description: "`text/plain`, never transcoded. One `Range: bytes=…` range answers 206 with " +
      "`Content-Range`; a range past the end 416; several ranges or none, the whole log. " +
      "A capped log's dropped range reads as zeros.",
    params: IdParams,
    response: { mediaType: "text/plain" },
    responseHeaders: {
      "accept-ranges": "bytes",
      "x-jobhead-log-gap": "`A-B`: the dropped range of a capped log, when it has one",
    },
  });
  app.get("/api/jobs/:id/logs/raw", rawDoc, async (c) => {
    const id = jobIdParam(c);
    const node = jobs.nodeElsewhere(await jobs.get(id));
    if (node) return await proxyToNode(node, c.req.raw, jobs.clusterToken);
    const gap = jobs.logStore.gapOf(id);
    const headers: Record<string, string> = gap
      ? { "x-jobhead-log-gap": `${gap.start}-${gap.end}` }
      : {};
    return await rawLogResponse(jobs.logPath(id), c.req.header("range"), headers);
  });

  const linesDoc = describeRoute({
    summary: "The line a byte of a job's log is on, or where a line starts",
    description: "Exactly one of `offset` (bytes; < 0 counts from the end) or `line` " +
      "(from 0; past the last line: the last). Lines are counted from 0.",
    params: IdParams,
    query: LogLineQuery,
    response: LogLineResponse,
  });
  app.get("/api/jobs/:id/logs/lines", linesDoc, async (c) => {
    const query = parseInput(LogLineQuery, c.req.query(), "query");
    if ((query.offset === undefined) === (query.line === undefined)) {
      throw new ValidationError("Invalid request: query: give either offset or line");
    }
    const id = jobIdParam(c);
    const node = jobs.nodeElsewhere(await jobs.get(id));
    if (node) return await proxyToNode(node, c.req.raw, jobs.clusterToken);
    const path = jobs.logPath(id);
    const gapEnd = jobs.logStore.gapOf(id)?.end;
    const size = await jobs.logStore.size(id);
    if (query.line !== undefined) {
      const offset = await lines.offsetOf(id, path, query.line, gapEnd);
      const line = await lines.lineAt(id, path, offset, gapEnd);
      return c.json({ line, offset, size } satisfies LogLineResponse);
    }
    const asked = query.offset!;
    const offset = Math.max(0, Math.min(size, asked < 0 ? size + asked : asked));
    const line = await lines.lineAt(id, path, offset, gapEnd);
    return c.json({ line, offset, size } satisfies LogLineResponse);
  });

  const searchDoc = describeRoute({
    summary: "Lines of a job's log holding a text, 16 MiB of the file per request",
    description: "ASCII letters match either case. `forward` (the default): occurrences " +
      "from byte `from` on; `backward`: before it, nearest first. Each line once. `next` is " +
      "the `from` of the following request, null at the log's edge.",
    params: IdParams,
    query: LogSearchQuery,
    response: LogSearchResponse,
  });
  app.get("/api/jobs/:id/logs/search", searchDoc, async (c) => {
    const query = parseInput(LogSearchQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    const node = jobs.nodeElsewhere(await jobs.get(id));
    if (node) return await proxyToNode(node, c.req.raw, jobs.clusterToken);
    const result = await lines.search(id, jobs.logPath(id), query.q, {
      from: query.from,
      backward: query.direction === "backward",
      gapEnd: jobs.logStore.gapOf(id)?.end,
    });
    return c.json(result satisfies LogSearchResponse);
  });

  const tailDoc = describeRoute({
    summary: "WebSocket: a job's log, live",
    description: "Text frames of the log from byte `offset` (0 by default), every byte once " +
      "and in order. Closes with 1000 once the job has ended and its log is drained, " +
      "1001 when the head shuts down, 1011 if reading the log fails. Past --max-log-tails " +
      "open tails the upgrade is answered 503.",
    params: IdParams,
    query: LogsQuery.pick({ offset: true }),
    websocket: true,
  });
  let openTails = 0;
  app.get("/api/jobs/:id/logs/tail", tailDoc, async (c) => {
    const { offset } = parseInput(LogsQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    const node = jobs.nodeElsewhere(await jobs.get(id)); // 404 before the upgrade
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ValidationError("This endpoint is a WebSocket: send an Upgrade: websocket request");
    }
    if (node) {
      return await relayTail(node, c.req.raw, jobs.clusterToken, options.idleTimeoutS);
    }
    if (openTails >= options.maxTails) {
      throw new UnavailableError(
        `Cannot open a log tail of job "${id}": ${openTails} tails are open, the most this ` +
          `head allows (--max-log-tails); try again later`,
      );
    }
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
      idleTimeout: options.idleTimeoutS,
    });
    openTails++;
    socket.addEventListener("close", () => openTails--, { once: true });
    socket.onopen = () => {
      options.tailsOpen?.inc();
      socket.addEventListener("close", () => options.tailsOpen?.dec(), { once: true });
      streamLog(socket, heldForClient(c), id, offset ?? 0);
    };
    return response;
  });

  /** Streams a log into an open socket, then closes it with the code API.md gives. */
  async function streamLog(
    socket: WebSocket,
    heldAtDoor: () => number,
    id: string,
    fromByte: number,
  ) {
    // One controller per follower, aborted by the peer's close or the head's shutdown.
    const stop = new AbortController();
    let closedByPeer = false;
    const onShutdown = () => stop.abort();
    options.signal.addEventListener("abort", onShutdown, { once: true });
    socket.addEventListener("close", () => {
      closedByPeer = true;
      stop.abort();
    }, { once: true });
    const sink = {
      send: (frame: string) => socket.send(frame),
      // What the front door still holds counts too: a client that stopped reading stops
      // the frames there, not once the socket between the door and the server is full.
      bufferedAmount: () => socket.bufferedAmount + heldAtDoor(),
    };
    try {
      const finished = await options.followers.follow(id, sink, { fromByte, signal: stop.signal });
      if (closedByPeer) return;
      if (finished) socket.close(1000, "job finished");
      else socket.close(1001, "jobhead is shutting down");
    } catch (err) {
      if (closedByPeer) return; // what failed was sending to a peer that left: no news
      log.error(`log tail of job "${id}" failed: ${errorMessage(err)}`);
      socket.close(1011, "log tail failed");
    } finally {
      options.signal.removeEventListener("abort", onShutdown);
    }
  }

  return app;
}

function jobIdParam(c: Context): string {
  return parseInput(JobId, c.req.param("id"), "job id");
}

/** A stored job as API.md's JobDetails. */
export function toDetails(job: Job, info: HeadInfo): JobDetails {
  return {
    type: "SUBMISSION",
    job_id: job.id,
    submission_id: job.id,
    status: job.status,
    entrypoint: job.entrypoint,
    message: job.message,
    error_type: job.error_type,
    start_time: job.start_time,
    end_time: job.end_time,
    metadata: job.metadata,
    runtime_env: job.runtime_env,
    driver_info: job.supervisor
      ? {
        id: actorIdOf(job.id),
        node_ip_address: new URL(job.node?.address ?? info.address).hostname,
        pid: String(job.supervisor.pid),
      }
      : null,
    // In a cluster, the node it is placed on.
    driver_node_id: job.node?.id ?? info.nodeId,
    driver_agent_http_address: job.node?.address ?? info.address,
    driver_exit_code: job.driver_exit_code,
    entrypoint_num_cpus: job.entrypoint_num_cpus,
    entrypoint_num_gpus: job.entrypoint_num_gpus,
    entrypoint_memory: job.entrypoint_memory,
    entrypoint_resources: job.entrypoint_resources,
    priority: job.priority ?? 0,
  };
}
