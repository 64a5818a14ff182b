/** HTTP and WebSocket routes of the jobs API (API.md, "Jobs"): parse, call the service, respond. */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { parseInput, readJson } from "../host/app.ts";
import { UnavailableError, ValidationError } from "../host/errors.ts";
import type { HeadInfo } from "../host/module.ts";
import { decodeCursor, type Job } from "../../storage/jobs.ts";
import { type LogFollowers, messageOf } from "./log_follower.ts";
import {
  type DeleteJobResponse,
  type JobDetails,
  JobId,
  type JobLogsResponse,
  JobStatus,
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
  /** Open tails at most: past it an upgrade is answered 503. */
  maxTails: number;
  /** Aborted at shutdown: live tails close with 1001. */
  signal: AbortSignal;
}

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
    const page = await jobs.list({ statuses, limit: query.limit, cursor: query.cursor });
    if (page.cursor) c.header("X-Next-Cursor", page.cursor);
    return c.json(page.jobs.map((job) => toDetails(job, info)));
  };
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
    const range = await jobs.readLogs(jobIdParam(c), query);
    return c.json(range satisfies JobLogsResponse);
  });

  let openTails = 0;
  app.get("/api/jobs/:id/logs/tail", async (c) => {
    const { offset } = parseInput(LogsQuery, c.req.query(), "query");
    const id = jobIdParam(c);
    await jobs.get(id); // 404 before the upgrade
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ValidationError("This endpoint is a WebSocket: send an Upgrade: websocket request");
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
      if (closedByPeer) return; // what failed was sending to a peer that left: no news
      console.error(`jobhead: log tail of job "${id}" failed: ${messageOf(err)}`);
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
