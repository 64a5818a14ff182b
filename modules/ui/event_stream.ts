/**
 * `GET /api/events`: the bus's job, actor and deployment changes (deletions included) as
 * server-sent events. Each stream keeps only the latest change per job, actor or deployment
 * until its reader takes it, so a slow reader costs at most one entry per changed object, and
 * never slows the head.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Context } from "hono";
import { type SSEMessage, streamSSE } from "hono/streaming";
import type { EventBus, HeadEvent } from "../../kit/events.ts";
import type { Deployment } from "../../kit/deployment_record.ts";
import type { Job } from "../../kit/job_record.ts";
import type {
  ActorDeletedEvent,
  DeploymentEvent,
  EventType,
  JobDeletedEvent,
  JobRow,
} from "./schemas.ts";

/** A comment line sent after this much silence: keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 25_000;
/** Changes a stream holds for a reader that does not read; past this it sends `reset`. */
const MAX_PENDING = 10_000;
/** What a browser waits before it reconnects a dropped stream. */
const RETRY_MS = 2_000;

/** The row of the jobs table for a stored job. */
export function toRow(job: Job): JobRow {
  return {
    submission_id: job.id,
    status: job.status,
    entrypoint: job.entrypoint,
    error_type: job.error_type,
    start_time: job.start_time,
    end_time: job.end_time,
    driver_exit_code: job.driver_exit_code,
    metadata: job.metadata,
    entrypoint_num_cpus: job.entrypoint_num_cpus,
    entrypoint_num_gpus: job.entrypoint_num_gpus,
    entrypoint_memory: job.entrypoint_memory,
    entrypoint_resources: job.entrypoint_resources,
    node: job.node?.name ?? null,
  };
}

/** The `data:` of a `deployment` event for a deployment (null once deleted). */
export function toDeploymentEvent(name: string, deployment: Deployment | null): DeploymentEvent {
  return {
    name,
    status: deployment?.status ?? null,
    message: deployment?.message ?? "",
    updated_at: deployment?.updated_at ?? Date.now(),
  };
}

/**
/**
 * The SSE message of a bus event: which object it changes (`<type>:<id>`: a later change
 * of the same object replaces it), the kind of change that picks it, and the message.
 */
export function sseMessage(
  event: HeadEvent,
): { key: string; type: EventType; message: SSEMessage } {
  const message = (name: string, data: unknown): SSEMessage => ({
    event: name,
    data: JSON.stringify(data),
  });
  switch (event.type) {
    case "job":
      return { key: `job:${event.job.id}`, type: "job", message: message("job", toRow(event.job)) };
    case "job-deleted": {
      const data: JobDeletedEvent = { submission_id: event.jobId };
      return { key: `job:${event.jobId}`, type: "job", message: message("job-deleted", data) };
    }
    case "actor": {
      const { actor } = event;
      return { key: `actor:${actor.actor_id}`, type: "actor", message: message("actor", actor) };
    }
    case "actor-deleted": {
      const data: ActorDeletedEvent = { actor_id: event.actorId };
      return {
        key: `actor:${event.actorId}`,
        type: "actor",
        message: message("actor-deleted", data),
      };
    }
    case "deployment": {
      const data = toDeploymentEvent(event.name, event.deployment);
      return {
        key: `deployment:${event.name}`,
        type: "deployment",
        message: message("deployment", data),
      };
    }
  }
}

/**
 * Answers with an SSE stream (hono's `streamSSE` frames it) that follows `events` until
 * `signal` aborts or the reader goes away. It opens with a `ready` event: what the reader
 * missed before then, it reads from the API. A `reset` event means changes were dropped
 * for a reader that fell far behind.
 */
export function streamEvents(
  c: Context,
  events: EventBus,
  options: { types: ReadonlySet<EventType>; signal: AbortSignal },
): Response {
  const res = streamSSE(c, async (stream) => {
    if (options.signal.aborted) return;
    /** `<type>:<id>` → the message of its latest change. */
    const pending = new Map<string, SSEMessage>();
    let overflowed = false;
    let wake = () => {};
    const readerGone = new AbortController();
    stream.onAbort(() => readerGone.abort());
    const done = AbortSignal.any([options.signal, readerGone.signal]);
    done.addEventListener("abort", () => wake(), { once: true });
    const unsubscribe = events.on((event: HeadEvent) => {
      const { key, type, message } = sseMessage(event);
      if (!options.types.has(type)) return;
      pending.delete(key); // re-inserted last: changes go out in the order they were made
      pending.set(key, message);
      if (pending.size > MAX_PENDING) {
        pending.clear();
        overflowed = true;
      }
      wake();
    });
    try {
      await stream.writeSSE({ event: "ready", data: "{}", retry: RETRY_MS });
      // A write waits while the reader does not read; changes meanwhile wait in `pending`.
      while (!done.aborted) {
        if (pending.size === 0 && !overflowed) {
          const woken = new Promise<void>((resolve) => wake = resolve);
          const timer = new AbortController();
          await Promise.race([
            woken,
            delay(KEEPALIVE_MS, undefined, { signal: timer.signal }).catch(() => {}),
          ]);
          timer.abort();
          wake = () => {};
          if (done.aborted) break;
          if (pending.size === 0 && !overflowed) {
            await stream.write(": keepalive\n\n"); // a comment: SSE framing has no other
            continue;
          }
        }
        if (overflowed) {
          overflowed = false;
          await stream.writeSSE({ event: "reset", data: "{}" });
        }
        const messages = [...pending.values()];
        pending.clear();
        for (const message of messages) await stream.writeSSE(message);
      }
    } finally {
      unsubscribe();
    }
  });
  res.headers.set("content-type", "text/event-stream; charset=utf-8");
  res.headers.set("cache-control", "no-store");
  res.headers.set("x-accel-buffering", "no"); // nginx: pass events through at once
  return res;
}
