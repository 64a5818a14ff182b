/** HTTP and WebSocket routes of the jobs API (API.md, "Jobs"): parse, call the service, respond. */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { parseInput, readJson } from "../host/app.ts";
import { ValidationError } from "../host/errors.ts";
import type { HeadInfo } from "../host/module.ts";
import { decodeCursor, type Job } from "../../storage/jobs.ts";
import { jsonArrayStream } from "../host/json_stream.ts";
import type { LogFollowers } from "./log_follower.ts";
import { LogLines } from "./log_lines.ts";
import { rawLogResponse } from "./raw_log.ts";
import { wholeLogJson } from "./whole_log.ts";
import {
  type DeleteJobResponse,
  type JobDetails,
  JobId,
  type JobLogsResponse,
  JobStatus,
  type LogLineResponse,
  type LogSearchResponse,
  type StopJobResponse,
  SubmitJobRequest,
  type SubmitJobResponse,
  type VersionResponse,
} from "./schemas.ts";
import { actorIdOf, type JobService } from "./service.ts";

/** Ray's job API level, and the Ray version whose clients we answer as. */
const RAY_API_VERSION = "4";
const RAY_VERSION = "2.50.0";

/** What the routes need besides the service. */
export interface JobRoutesOptions {
  info: HeadInfo;
  followers: LogFollowers;
  /** Seconds of silence after which a tail socket is pinged, and dropped if it does not answer. */
  idleTimeoutS: number;
  /** Aborted at shutdown: live tails close with 1001. */
  signal: AbortSignal;
}

/** Jobs read from the store at a time when a list is streamed whole. */
const LIST_PAGE_SIZE = 500;

const Integer = z.coerce.number().int();
const ListQuery = z.object({
  status: z.string().optional(),
  limit: Integer.min(1).max(100_000).optional(),
  cursor: z.string().optional(),
});
const LogsQuery = z.object({
  offset: Integer.optional(),
  limit: Integer.min(0).optional(),
});
const LogLineQuery = z.union([
  z.object({ offset: Integer }).strict(),
  z.object({ line: Integer.min(0) }).strict(),
]);
const LogSearchQuery = z.object({
  q: z.string().min(1).max(1000),
  from: Integer.min(0).default(0),
  direction: z.enum(["forward", "backward"]).default("forward"),
});

/** The jobs API as a Hono app. */
export function jobRoutes(jobs: JobService, options: JobRoutesOptions): Hono {
  const { info } = options;
  const app = new Hono();

  app.get("/api/version", (c) => {
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
  app.post("/api/jobs/", submit);
  app.post("/api/jobs", submit);

  const list = async (c: Context) => {
    const query = parseInput(ListQuery, c.req.query(), "query");
    const statuses = query.status
      ? query.status.split(",").map((s) => parseInput(JobStatus, s.trim().toUpperCase(), "status"))
      : undefined;
    if (query.cursor !== undefined) {
      try {
        decodeCursor(query.cursor);
      } catch {
        throw new ValidationError("Invalid request: cursor: not a cursor this server issued");
      }
    }
    if (query.limit === undefined) {
      // Ray's list_jobs() pages nothing: every job, streamed page by page from the store.
      const all = allJobs(jobs, statuses, query.cursor);
      return c.body(jsonArrayStream(all), 200, { "content-type": "application/json" });
    }
    const page = await jobs.list({ statuses, limit: query.limit, cursor: query.cursor });
    if (page.cursor) c.header("X-Next-Cursor", page.cursor);
    return c.json(page.jobs.map((job) => toDetails(job, info)));
  };

  async function* allJobs(service: JobService, statuses?: JobStatus[], cursor?: string) {
    do {
      const page = await service.list({ statuses, limit: LIST_PAGE_SIZE, cursor });
      for (const job of page.jobs) yield toDetails(job, info);
      cursor = page.cursor;
    } while (cursor);
  }
  app.get("/api/jobs/", list);
  app.get("/api/jobs", list);

  app.get("/api/jobs/:id", async (c) => {
    const job = await jobs.get(jobIdParam(c));
    return c.json(toDetails(job, info));
  });

  app.post("/api/jobs/:id/stop", async (c) => {
    const stopped = await jobs.stop(jobIdParam(c));
    return c.json({ stopped } satisfies StopJobResponse);
  });

  app.delete("/api/jobs/:id", async (c) => {
    await jobs.delete(jobIdParam(c));
    return c.json({ deleted: true } satisfies DeleteJobResponse);
  });

  app.get("/api/jobs/:id/logs", async (c) => {
    const query = parseInput(LogsQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    if (query.offset === undefined && query.limit === undefined) {
      await jobs.get(id); // 404 before the answer starts
      const body = wholeLogJson(jobs.logStore, id);
      return c.body(body, 200, { "content-type": "application/json" });
    }
    const range = await jobs.readLogs(id, query);
    return c.json(range satisfies JobLogsResponse);
  });

  // The log view's reads (docs/ui.md): exact bytes, line numbers, and search over the file.
  const lines = new LogLines();
  app.get("/api/jobs/:id/logs/raw", async (c) => {
    const id = jobIdParam(c);
    await jobs.get(id);
    const gap = jobs.logStore.gapOf(id);
    const headers: Record<string, string> = gap
      ? { "x-jobhead-log-gap": `${gap.start}-${gap.end}` }
      : {};
    return await rawLogResponse(jobs.logPath(id), c.req.header("range"), headers);
  });

  app.get("/api/jobs/:id/logs/lines", async (c) => {
    const query = parseInput(LogLineQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    await jobs.get(id);
    const path = jobs.logPath(id);
    const gapEnd = jobs.logStore.gapOf(id)?.end;
    const size = await jobs.logStore.size(id);
    if ("line" in query) {
      const offset = await lines.offsetOf(id, path, query.line, gapEnd);
      const line = await lines.lineAt(id, path, offset, gapEnd);
      return c.json({ line, offset, size } satisfies LogLineResponse);
    }
    const offset = Math.max(
      0,
      Math.min(size, query.offset < 0 ? size + query.offset : query.offset),
    );
    const line = await lines.lineAt(id, path, offset, gapEnd);
    return c.json({ line, offset, size } satisfies LogLineResponse);
  });

  app.get("/api/jobs/:id/logs/search", async (c) => {
    const query = parseInput(LogSearchQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    await jobs.get(id);
    const result = await lines.search(id, jobs.logPath(id), query.q, {
      from: query.from,
      backward: query.direction === "backward",
      gapEnd: jobs.logStore.gapOf(id)?.end,
    });
    return c.json(result satisfies LogSearchResponse);
  });

  app.get("/api/jobs/:id/logs/tail", async (c) => {
    const { offset } = parseInput(LogsQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    await jobs.get(id); // 404 before the upgrade
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ValidationError("This endpoint is a WebSocket: send an Upgrade: websocket request");
    }
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
      idleTimeout: options.idleTimeoutS,
    });
    socket.onopen = () => streamLog(socket, id, offset ?? 0);
    return response;
  });

  /** Streams a log into an open socket, then closes it with the code API.md gives. */
  async function streamLog(socket: WebSocket, id: string, fromByte: number) {
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
      bufferedAmount: () => socket.bufferedAmount,
    };
    try {
      const finished = await options.followers.follow(id, sink, { fromByte, signal: stop.signal });
      if (closedByPeer) return;
      if (finished) socket.close(1000, "job finished");
      else socket.close(1001, "jobhead is shutting down");
    } catch (err) {
      console.error(`jobhead: log tail of job "${id}" failed:`, err);
      if (!closedByPeer) socket.close(1011, "log tail failed");
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
        node_ip_address: new URL(info.address).hostname,
        pid: String(job.supervisor.pid),
      }
      : null,
    driver_node_id: info.nodeId,
    driver_agent_http_address: info.address,
    driver_exit_code: job.driver_exit_code,
    entrypoint_num_cpus: job.entrypoint_num_cpus,
    entrypoint_num_gpus: job.entrypoint_num_gpus,
    entrypoint_memory: job.entrypoint_memory,
    entrypoint_resources: job.entrypoint_resources,
  };
}
