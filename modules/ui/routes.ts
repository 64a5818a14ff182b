/** Routes of the dashboard: the page and its files, job rows with search, and the event stream. */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { parseInput, parseListInput } from "../../kit/http.ts";
import type { EventBus } from "../../kit/events.ts";
import type { ContributedView } from "../../kit/module.ts";
import { describeRoute } from "../../kit/route_doc.ts";
import { NotFoundError } from "../../storage/errors.ts";
import { encodeCursor, JobStatus, type JobStore } from "../../storage/jobs.ts";
import { Assets } from "./assets.ts";
import { streamEvents, toRow } from "./event_stream.ts";
import {
  EventsQuery,
  EventType,
  FindJobsQuery,
  FindJobsResponse,
  type JobRow,
  ModuleViewsResponse,
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
  /** The dashboard views modules contribute. */
  moduleViews?: () => ContributedView[];
}

/** The dashboard as a Hono app. */
export function uiRoutes(options: UiRoutesOptions): Hono {
  const app = new Hono();

  const pageDoc = describeRoute({
    summary: "The dashboard",
    response: { mediaType: "text/html" },
  });
  app.get("/", pageDoc, (c) => options.assets.serve(c, "index.html"));
  const moduleViews = () => options.moduleViews?.() ?? [];
  const viewFileDoc = describeRoute({
    summary: "The script of a dashboard view a module contributes",
    description: "Only the files modules declared in `views`, by module name and view id " +
      "(`<id>.js`); no other file of a module is served.",
    params: z.object({ module: z.string(), file: z.string() }),
    response: { mediaType: "text/javascript" },
  });
  app.get("/ui/modules/:module/:file", viewFileDoc, (c) => {
    const { module, file } = c.req.param();
    const found = moduleViews().find((v) => v.module === module && `${v.view.id}.js` === file);
    if (!found) throw new NotFoundError(`No view "${file}" of module "${module}"`);
    return Assets.serveScript(c, found.view.file);
  });
  const fileDoc = describeRoute({
    summary: "The dashboard's files: scripts, style sheet, icon",
    response: { mediaType: "application/octet-stream" },
  });
  app.get("/ui/*", fileDoc, (c) => options.assets.serve(c, c.req.path.slice("/ui/".length)));

  const findDoc = describeRoute({
    summary: "The dashboard's job rows: a page matching a status filter and a search",
    query: FindJobsQuery,
    response: FindJobsResponse,
  });
  app.get("/api/ui/jobs", findDoc, async (c) => {
    const query = parseInput(FindJobsQuery, c.req.query(), "query");
    return c.json(await findJobs(options.jobs, query) satisfies FindJobsResponse);
  });

  const viewsDoc = describeRoute({
    summary: "The dashboard views modules contribute: a nav entry and a script each",
    response: ModuleViewsResponse,
  });
  app.get("/api/ui/views", viewsDoc, (c) => {
    return c.json(
      moduleViews().map(({ module, view }) => ({
        module,
        id: view.id,
        title: view.title,
        url: `/ui/modules/${module}/${view.id}.js`,
      })) satisfies ModuleViewsResponse,
    );
  });

  const eventsDoc = describeRoute({
    summary: "Server-sent events: job, actor and deployment changes, live",
    description: "`text/event-stream`: `ready` first, then `job` events (data: a job row, " +
      "as `GET /api/ui/jobs` has them), `actor` events (data: the actor, as " +
      "`GET /api/actors/{id}` has it) and `deployment` events (data: `name`, `status`, " +
      "`message`, `updated_at`; `status` null once deleted); `reset` when changes were " +
      "dropped for a slow reader. `types` picks kinds (comma-separated `job`, `actor`, " +
      "`deployment`).",
    query: EventsQuery,
    response: { mediaType: "text/event-stream" },
  });
  app.get("/api/events", eventsDoc, (c: Context) => {
    const query = parseInput(EventsQuery, c.req.query(), "query");
    const types = new Set(
      parseListInput(EventType, query.types, "types") ?? EventType.options,
    );
    return streamEvents(c, options.events, { types, signal: options.signal });
  });

  return app;
}

/** One page of rows matching `query`, newest first; see FindJobsResponse. */
async function findJobs(store: JobStore, query: FindJobsQuery): Promise<FindJobsResponse> {
  const statuses = parseListInput(JobStatus, query.status?.toUpperCase(), "status");
  let cursor = query.cursor;
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
