import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import { openApiDocument, openApiPath } from "./openapi.ts";
import { describeRoute, routeDocOf } from "../kit/route_doc.ts";

Deno.test("describeRoute() passes requests on to the handler and carries its description", async () => {
  const doc = describeRoute({ summary: "Greets", response: z.object({ hello: z.string() }) });
  const app = new Hono().get("/api/hello", doc, (c) => c.json({ hello: "world" }));
  const res = await app.request("/api/hello");
  assert.deepEqual(await res.json(), { hello: "world" });
  assert.equal(routeDocOf(app.routes[0].handler)?.summary, "Greets");
  assert.equal(routeDocOf(app.routes[1].handler), undefined);
});

Deno.test("openApiPath() writes Hono's parameters and final wildcard as OpenAPI's", () => {
  assert.equal(openApiPath("/api/jobs/:id/logs"), "/api/jobs/{id}/logs");
  assert.equal(openApiPath("/a/:name{[0-9]+}/:opt?"), "/a/{name}/{opt}");
  assert.equal(openApiPath("/ui/*"), "/ui/{path}");
});

Deno.test("openApiDocument() lists undescribed routes too, and leaves middleware out", () => {
  const app = new Hono()
    .use("*", async (_c, next) => await next())
    .get("/api/things/:id", (c) => c.text(""))
    .all("/api/any", (c) => c.text(""));
  const doc = openApiDocument([{ name: "things", routes: app.routes }], { version: "1.2.3" });
  assert.deepEqual(Object.keys(doc.paths), ["/api/things/{id}", "/api/any"]);
  assert.deepEqual(Object.keys(doc.paths["/api/any"]), ["get", "put", "post", "delete", "patch"]);
  const op = doc.paths["/api/things/{id}"].get;
  assert.equal(op.summary, undefined);
  assert.equal(op.description, "Its module does not describe this route.");
  assert.deepEqual(op.tags, ["things"]);
  assert.deepEqual(op.parameters, [
    { name: "id", in: "path", required: true, schema: { type: "string" } },
  ]);
  assert.equal(doc.info.version, "1.2.3");
});

Deno.test("openApiDocument() turns a route's schemas into parameters, bodies and answers", () => {
  const Body = z.strictObject({ name: z.string(), size: z.number().int().default(1) });
  const app = new Hono().post(
    "/api/things/:id",
    describeRoute({
      summary: "Makes a thing",
      params: z.object({ id: z.string().regex(/^[a-z]+$/) }),
      query: z.object({ dry: z.enum(["true", "false"]).optional(), n: z.coerce.number() }),
      body: Body,
      response: Body,
    }),
    (c) => c.text(""),
  );
  const op = openApiDocument([{ name: "things", routes: app.routes }], { version: "1" })
    .paths["/api/things/{id}"].post;
  assert.deepEqual(op.parameters?.map((p) => [p.name, p.in, p.required, p.schema]), [
    ["id", "path", true, { type: "string", pattern: "^[a-z]+$" }],
    ["dry", "query", false, { type: "string", enum: ["true", "false"] }],
    ["n", "query", true, { type: "number" }],
  ]);
  const request = op.requestBody?.content["application/json"].schema;
  assert.deepEqual(request?.required, ["name"]); // the default makes `size` optional to send
  const answer = op.responses["200"].content?.["application/json"].schema;
  assert.deepEqual(answer?.required, ["name", "size"]); // and present in what is answered
  assert.ok(op.responses["4XX"].content?.["application/json"].schema);
  assert.deepEqual(op.security, [{ bearer: [] }]);
});

Deno.test("openApiDocument() moves named and recursive schemas to components, references intact", () => {
  const Tag = z.object({ label: z.string() }).meta({ id: "Tag" });
  const Tree: z.ZodType = z.lazy(() => z.object({ tag: Tag, kids: z.array(Tree) }));
  const Other: z.ZodType = z.lazy(() => z.object({ others: z.array(Other) }));
  const app = new Hono()
    .get(
      "/a",
      describeRoute({ summary: "A", response: z.object({ tree: Tree }) }),
      (c) => c.text(""),
    )
    .get(
      "/b",
      describeRoute({ summary: "B", response: z.object({ other: Other }) }),
      (c) => c.text(""),
    );
  const doc = openApiDocument([{ name: "x", routes: app.routes }], { version: "1" });
  const schemas = doc.components.schemas ?? {};
  assert.deepEqual(Object.keys(schemas).sort(), [
    "ErrorResponse",
    "Tag",
    "__schema0",
    "__schema0_2",
  ]);
  const text = JSON.stringify(doc);
  assert.doesNotMatch(text, /\$defs/);
  for (const [, ref] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
    assert.ok(schemas[ref], ref);
  }
  const a = doc.paths["/a"].get.responses["200"].content?.["application/json"].schema;
  assert.deepEqual(a?.properties, { tree: { $ref: "#/components/schemas/__schema0" } });
  const b = doc.paths["/b"].get.responses["200"].content?.["application/json"].schema;
  assert.deepEqual(b?.properties, { other: { $ref: "#/components/schemas/__schema0_2" } });
});

Deno.test("openApiDocument() lists a route whose schema zod cannot write, saying so", () => {
  // Two schemas with one id: zod refuses to write them.
  const A = z.object({ a: z.string() }).meta({ id: "Same" });
  const B = z.object({ b: z.number() }).meta({ id: "Same" });
  const doc = describeRoute({ summary: "Bad", response: z.object({ a: A, b: B }) });
  const app = new Hono().get("/bad", doc, (c) => c.text("")).get("/fine/:id", (c) => c.text(""));
  const paths = openApiDocument([{ name: "x", routes: app.routes }], { version: "1" }).paths;
  assert.match(
    paths["/bad"].get.description ?? "",
    /^Its description could not be written: .*Same/,
  );
  assert.equal(paths["/fine/{id}"].get.description, "Its module does not describe this route.");
});
