/**
 * `GET /api/events`: the bus's job, actor and deployment changes as server-sent events. Each stream
 * keeps only the latest change per job, actor or deployment until its reader takes it, so a slow
 * reader costs at most one entry per changed object, and never slows the head.
 */
import { setTimeout as delay } from "node:timers/promises";
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

/**
 * Why each of the given PENDING jobs waits, from the scheduler (the message of a PENDING
 * job is worked out when it is read); a job it does not name keeps its stored message.
 */
export type PendingReasons = (ids: ReadonlySet<string>) => ReadonlyMap<string, string>;

/**
 * The row of the jobs table for a stored job. A PENDING job's `pending_reason` is its
 * stored message until `withReasons()` puts in why it waits now.
 */
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
    pending_reason: job.status === "PENDING" ? job.message : null,
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
 * Rows with `pending_reason` filled in for the PENDING ones, in one call of `reasons`
 * (one walk of the scheduler's queue).
 */
export function withReasons(rows: JobRow[], reasons: PendingReasons | undefined): JobRow[] {
  const ids = new Set(rows.filter((row) => row.status === "PENDING").map((r) => r.submission_id));
  if (!reasons || ids.size === 0) return rows;
  const found = reasons(ids);
  return rows.map((row) => {
    const reason = found.get(row.submission_id);
    return reason === undefined ? row : { ...row, pending_reason: reason };
  });
}

/**
 * An SSE body that follows `events` until `signal` aborts or the reader goes away.
 * It opens with a `ready` event: what the reader missed before then, it reads from the
 * API. A `reset` event means changes were dropped for a reader that fell far behind.
 * A PENDING job's row says why it waits as of when it is sent (`pendingReasons`).
 */
export function eventStream(
  events: EventBus,
  options: {
    types: ReadonlySet<EventType>;
    signal: AbortSignal;
    pendingReasons?: PendingReasons;
  },
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  /** `<type>:<id>` → its latest change: the event's name and data. */
  const pending = new Map<string, [EventType, unknown]>();
  let overflowed = false;
  let wake = () => {};
  let unsubscribe = () => {};
  const stop = () => {
    unsubscribe();
    wake();
  };

  const onEvent = (event: HeadEvent) => {
    if (event.type === "job-deleted" || !options.types.has(event.type)) return;
    const [key, data] = event.type === "job"
      ? [`job:${event.job.id}`, toRow(event.job)]
      : event.type === "actor"
      ? [`actor:${event.actor.actor_id}`, event.actor]
      : [`deployment:${event.name}`, toDeploymentEvent(event.name, event.deployment)];
    pending.delete(key); // re-inserted last: changes go out in the order they were made
    pending.set(key, [event.type, data]);
    if (pending.size > MAX_PENDING) {
      pending.clear();
      overflowed = true;
    }
    wake();
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (options.signal.aborted) return controller.close();
      unsubscribe = events.on(onEvent);
      options.signal.addEventListener("abort", stop, { once: true });
      controller.enqueue(encoder.encode(`retry: ${RETRY_MS}\nevent: ready\ndata: {}\n\n`));
    },
    async pull(controller) {
      if (pending.size === 0 && !overflowed && !options.signal.aborted) {
        const woken = new Promise<void>((resolve) => wake = resolve);
        const timer = new AbortController();
        await Promise.race([
          woken,
          delay(KEEPALIVE_MS, undefined, { signal: timer.signal }).catch(() => {}),
        ]);
        timer.abort();
        wake = () => {};
      }
      if (options.signal.aborted) {
        controller.close();
        return;
      }
      let text = overflowed ? "event: reset\ndata: {}\n\n" : "";
      overflowed = false;
      const changes = [...pending.values()];
      pending.clear();
      // Reasons are worked out now, for every waiting job of the batch at once.
      const rows = withReasons(
        changes.filter(([type]) => type === "job").map(([, row]) => row as JobRow),
        options.pendingReasons,
      );
      let nextRow = 0;
      for (const [type, data] of changes) {
        const sent = type === "job" ? rows[nextRow++] : data;
        text += `event: ${type}\ndata: ${JSON.stringify(sent)}\n\n`;
      }
      controller.enqueue(encoder.encode(text || ": keepalive\n\n"));
    },
    cancel() {
      options.signal.removeEventListener("abort", stop);
      stop();
    },
  }, { highWaterMark: 0 });
}
