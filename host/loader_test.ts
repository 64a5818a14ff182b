import assert from "node:assert/strict";
import { Hono } from "hono";
import { checkViews, RouteTable } from "./loader.ts";

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

Deno.test("checkViews() accepts ids, titles and file: URLs, and names the first bad view", () => {
  const file = new URL("file:///srv/view.js");
  checkViews([{ id: "greeter", title: "Hello", file }, { id: "stats-2", title: "Stats", file }]);
  const bad: [unknown, RegExp][] = [
    [{ id: "greeter" }, /^views must be an array$/],
    [[{ id: "../x", title: "x", file }], /^views\[0\]\.id/],
    [[{ id: "a", title: "A", file }, { id: "a", title: "B", file }], /^views\[1\]\.id/],
    [[{ id: "a", title: " ", file }], /^views\[0\]\.title/],
    [[{ id: "a", title: "A", file: new URL("https://example.com/v.js") }], /^views\[0\]\.file/],
    [[{ id: "a", title: "A", file: "/srv/view.js" }], /^views\[0\]\.file/],
  ];
  for (const [views, message] of bad) assert.throws(() => checkViews(views), { message });
});
