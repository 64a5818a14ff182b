import assert from "node:assert/strict";
import { Hono } from "hono";
import { createApp } from "../../host/app.ts";
import { httpMetrics, outcomeOf } from "./http.ts";
import { MetricsRegistry } from "../../kit/metrics.ts";

Deno.test("HTTP metrics label requests by route pattern, refused and unmatched ones too", async () => {
  const registry = new MetricsRegistry();
  const app = createApp({ token: "t", maxBodyBytes: 1024, observe: httpMetrics(registry) });
  app.route("/", new Hono().get("/api/jobs/:id", (c) => c.json({ id: c.req.param("id") })));
  const auth = { authorization: "Bearer t" };
  for (const id of ["a1", "b2"]) {
    assert.equal((await app.request(`/api/jobs/${id}`, { headers: auth })).status, 200);
  }
  assert.equal((await app.request("/api/jobs/c3")).status, 401);
  assert.equal((await app.request("/nowhere/d4", { headers: auth })).status, 404);
  assert.equal((await app.request("/api/jobs/e5", { method: "BREW", headers: auth })).status, 404);
  const text = await registry.expose();
  const requests = text.split("\n").filter((l) => l.startsWith("jobhead_http_requests_total{"));
  assert.deepEqual(requests, [
    'jobhead_http_requests_total{method="GET",route="/api/jobs/:id",code="200"} 2',
    'jobhead_http_requests_total{method="GET",route="/api/jobs/:id",code="401"} 1',
    'jobhead_http_requests_total{method="GET",route="unmatched",code="404"} 1',
    'jobhead_http_requests_total{method="OTHER",route="unmatched",code="404"} 1',
  ]);
});

Deno.test("outcomeOf() names a status's outcome", () => {
  assert.deepEqual(
    [200, 400, 401, 403, 404, 409, 413, 500, 302].map(outcomeOf),
    ["ok", "invalid", "denied", "denied", "not_found", "conflict", "too_large", "error", "other"],
  );
});
