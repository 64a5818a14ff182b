/** Routes of the dashboard: the page and its files, job rows with search, and the event stream. */
import { type Context, Hono } from "hono";
import { parseInput } from "../host/app.ts";
import { ValidationError } from "../host/errors.ts";
import type { EventBus } from "../host/events.ts";
import { decodeCursor, encodeCursor, JobStatus, type JobStore } from "../../storage/jobs.ts";
import type { Assets } from "./assets.ts";
import { eventStream, toRow } from "./event_stream.ts";
import {
  EventsQuery,
  EventType,
  FindJobsQuery,
  type FindJobsResponse,
  type JobRow,
} from "./schemas.ts";
import { matchesSearch } from "./static/js/match.js";

/** Jobs one search request reads at most; past it, it answers with what it found and a cursor. */
const MAX_SCANNED_JOBS = 5_000;
/** Jobs read from the store at a time while searching. */
const SCAN_PAGE = 500;

/** What the dashboard's routes need. */
export interface UiRoutesOptions {
  jobs: JobStore;
  events: EventBus;
  assets: Assets;
  /** Aborted at shutdown: event streams end. */
  signal: AbortSignal;
}

/** The dashboard as a Hono app. */
export function uiRoutes(options: UiRoutesOptions): Hono {
  const app = new Hono();

  app.get("/", (c) => options.assets.serve(c, "index.html"));
  app.get("/ui/*", (c) => options.assets.serve(c, c.req.path.slice("/ui/".length)));

  app.get("/api/ui/jobs", async (c) => {
    const query = parseInput(FindJobsQuery, c.req.query(), "query");
    return c.json(await findJobs(options.jobs, query) satisfies FindJobsResponse);
  });

  app.get("/api/events", (c: Context) => {
    const query = parseInput(EventsQuery, c.req.query(), "query");
    const types = new Set(
      query.types?.split(",").map((t) => parseInput(EventType, t.trim(), "types")) ??
        EventType.options,
    );
    // A reader that goes away cancels the stream; request.signal is not needed (and warns).
    return new Response(eventStream(options.events, { types, signal: options.signal }), {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no", // nginx: pass events through at once
      },
    });
  });

  return app;
}

/** One page of rows matching `query`, newest first; see FindJobsResponse. */
async function findJobs(store: JobStore, query: FindJobsQuery): Promise<FindJobsResponse> {
  const statuses = query.status?.split(",").map((s) =>
    parseInput(JobStatus, s.trim().toUpperCase(), "status")
  );
  let cursor = query.cursor;
  if (cursor !== undefined) {
    try {
      decodeCursor(cursor);
    } catch {
      throw new ValidationError("Invalid request: cursor: not a cursor this server issued");
    }
  }
  const search = query.q ?? "";
  const rows: JobRow[] = [];
  for (let scanned = 0; scanned < MAX_SCANNED_JOBS;) {
    const page = await store.list({
      statuses,
      cursor,
      limit: search ? SCAN_PAGE : query.limit - rows.length,
    });
    for (const [i, job] of page.jobs.entries()) {
      const row = toRow(job);
      if (!matchesSearch(row, search)) continue;
      rows.push(row);
      if (rows.length === query.limit) {
        const more = i < page.jobs.length - 1 || page.cursor !== undefined;
        return { jobs: rows, next_cursor: more ? encodeCursor(job) : null };
      }
    }
    if (page.cursor === undefined) return { jobs: rows, next_cursor: null };
    cursor = page.cursor;
    scanned += page.jobs.length;
  }
  return { jobs: rows, next_cursor: cursor ?? null };
}
