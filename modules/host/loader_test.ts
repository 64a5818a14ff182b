import assert from "node:assert/strict";
import { Hono } from "hono";
import { RouteTable } from "./loader.ts";

Deno.test("RouteTable.claim() refuses a route another owner serves, naming both", () => {
  const table = new RouteTable();
  table.claim(
    'module "a"',
    new Hono().use("*", async (_c, next) => await next()).get("/api/x/:id", (c) => c.text("a")),
  );
  // Another method on the same path, and middleware everywhere, are fine.
  table.claim(
    'module "b"',
    new Hono().use("/api/*", async (_c, next) => await next()).post(
      "/api/x/:id",
      (c) => c.text("b"),
    ),
  );
  assert.throws(
    () =>
      table.claim(
        'module "c"',
        new Hono().get("/api/y", (c) => c.text("")).get("/api/x/:name", (c) => c.text("")),
      ),
    { message: 'its route GET /api/x/:name is already served by module "a"' },
  );
  assert.throws(
    () => table.claim('module "d"', new Hono().all("/api/x/:key", (c) => c.text(""))),
    /already served by module "a"/,
  );
  // A refused module claimed nothing: its other routes are still free.
  table.claim('module "e"', new Hono().get("/api/y", (c) => c.text("")));
});
