/**
 * `GET /api/events`: the bus's job, actor and deployment changes as server-sent events. Each stream
 * keeps only the latest change per job, actor or deployment until its reader takes it, so a slow
 * reader costs at most one entry per changed object, and never slows the head.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Context } from "hono";
import { type SSEMessage, streamSSE } from "hono/streaming";
import type { EventBus, HeadEvent } from "../../kit/events.ts";
import type { Job } from "../../storage/jobs.ts";
import type { Deployment } from "../../storage/serve.ts";
import type { DeploymentEvent, EventType, JobRow } from "./schemas.ts";

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
      if (event.type === "job-deleted" || !options.types.has(event.type)) return;
      const [key, data] = event.type === "job"
        ? [`job:${event.job.id}`, toRow(event.job)]
        : event.type === "actor"
        ? [`actor:${event.actor.actor_id}`, event.actor]
        : [`deployment:${event.name}`, toDeploymentEvent(event.name, event.deployment)];
      pending.delete(key); // re-inserted last: changes go out in the order they were made
      pending.set(key, { event: event.type, data: JSON.stringify(data) });
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
