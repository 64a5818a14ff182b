/** HTTP metrics: requests by route pattern and status, their latency, and job actions' outcomes. */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { MetricsScope } from "../../kit/metrics.ts";

/** Methods kept as they are in the `method` label; any other is counted as "OTHER". */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The job actions counted by outcome, by `METHOD route` (API.md). */
const JOB_ACTIONS: Record<string, "submits" | "stops" | "deletes"> = {
  "POST /api/jobs/": "submits",
  "POST /api/jobs": "submits",
  "POST /api/jobs/:id/stop": "stops",
  "DELETE /api/jobs/:id": "deletes",
};

/** The outcome label of a response status. */
export function outcomeOf(status: number): string {
  if (status >= 200 && status < 300) return "ok";
  if (status === 400) return "invalid";
  if (status === 401 || status === 403) return "denied";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 413) return "too_large";
  if (status >= 500) return "error";
  return "other";
}

/**
 * The middleware that counts and times every request. It runs first, so requests the
 * head refuses (401, 413) are counted too. The route label is the pattern that matched
 * (`/api/jobs/:id`), or `unmatched` when none did, so ids never become label values.
 * The latency runs until the response's headers are ready, not to the end of a streamed body.
 */
export function httpMetrics(metrics: MetricsScope): MiddlewareHandler {
  const requests = metrics.counter({
    name: "jobhead_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status code.",
    labelNames: ["method", "route", "code"],
  });
  const duration = metrics.histogram({
    name: "jobhead_http_request_duration_seconds",
    help: "Time to answer an HTTP request (to its headers), by method, route pattern and status.",
    labelNames: ["method", "route", "code"],
  });
  const actions = {
    submits: metrics.counter({
      name: "jobhead_job_submits_total",
      help: "Job submissions (POST /api/jobs/), by outcome.",
      labelNames: ["outcome"],
    }),
    stops: metrics.counter({
      name: "jobhead_job_stops_total",
      help: "Job stop requests (POST /api/jobs/{id}/stop), by outcome.",
      labelNames: ["outcome"],
    }),
    deletes: metrics.counter({
      name: "jobhead_job_deletes_total",
      help: "Job deletions (DELETE /api/jobs/{id}), by outcome.",
      labelNames: ["outcome"],
    }),
  };
  // Present from the start, so a rate of successes is 0 rather than absent.
  for (const counter of Object.values(actions)) counter.inc({ outcome: "ok" }, 0);
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const method = KNOWN_METHODS.has(c.req.method) ? c.req.method : "OTHER";
      const route = routeOf(c);
      const code = String(c.res.status);
      const labels = { method, route, code };
      requests.inc(labels);
      duration.observe((performance.now() - started) / 1000, labels);
      const action = JOB_ACTIONS[`${method} ${route}`];
      if (action) actions[action].inc({ outcome: outcomeOf(c.res.status) });
    }
  };
}

/** The pattern of the route that matched the request, past the catch-all middleware. */
function routeOf(c: Context): string {
  const last = matchedRoutes(c).at(-1);
  const isMiddleware = last?.method === "ALL" && last.path.endsWith("*");
  return last && !isMiddleware ? last.path : "unmatched";
}
