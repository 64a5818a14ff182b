/**
 * `GET /api/openapi.json` against a real head (in process, so that Hono's own list of
 * routes can be read): it lists every route served and nothing else, it is valid
 * OpenAPI 3.1, and every JSON example in the docs validates against it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { Validator } from "@seriousme/openapi-schema-validator";
import { parseConfig } from "../host/config.ts";
import { type Head, startHead } from "../host/head.ts";
import { BUILT_IN_MODULES } from "../modules/mod.ts";
import { OpenApiDocument } from "../host/schemas.ts";

const REPO = new URL("../", import.meta.url);
const HELLO_MODULE = fileURLToPath(new URL("examples/hello_module.ts", REPO));
const BUILT_INS = ["jobs", "packages", "actors", "serve", "ui"];

/** Runs `fn` with a head of every built-in module and the example operator's module. */
async function withHead(fn: (head: Head, doc: OpenApiDocument) => Promise<void> | void) {
  const dataDir = await Deno.makeTempDir({ prefix: "jobhead-openapi-" });
  const head = await startHead(
    parseConfig(["--port", "0", "--data-dir", dataDir, "--module", HELLO_MODULE], {}),
    BUILT_IN_MODULES,
  );
  try {
    const res = await fetch(`${head.info.address}/api/openapi.json`);
    const doc = await res.json();
    assert.equal(res.status, 200, JSON.stringify(doc));
    await fn(head, doc);
  } finally {
    await head.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** `GET /api/jobs/{id}` for each route Hono serves (middleware left out). */
function servedRoutes(head: Head): Set<string> {
  return new Set(
    head.routes()
      .filter((route) => !(route.method === "ALL" && route.path.endsWith("*")))
      .map((route) => {
        const path = route.path.replace(/:(\w+)/g, "{$1}").replace(/\/\*$/, "/{path}");
        return `${route.method} ${path}`;
      }),
  );
}

function documentedRoutes(doc: OpenApiDocument): Set<string> {
  return new Set(
    Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`)
    ),
  );
}

Deno.test("the OpenAPI document lists every route the head serves, each described", async () => {
  await withHead(async (head, doc) => {
    const loaded = head.modules.map((m) => m.name);
    for (const name of [...BUILT_INS, "hello"]) assert.ok(loaded.includes(name), name);
    const served = servedRoutes(head);
    const documented = documentedRoutes(doc);
    assert.deepEqual([...served].filter((r) => !documented.has(r)), [], "served, not documented");
    assert.deepEqual([...documented].filter((r) => !served.has(r)), [], "documented, not served");
    for (const route of ["POST /api/jobs/", "GET /api/openapi.json", "GET /api/hello/primes"]) {
      assert.ok(served.has(route), route);
    }
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        assert.ok(op.summary, `${method} ${path}: no describeRoute() beside its handler`);
        const ok = op.responses["200"] ?? op.responses["101"];
        assert.ok(ok, `${method} ${path}: no 200 or 101 answer`);
        assert.ok(op.responses["4XX"]?.content?.["application/json"], `${method} ${path}: errors`);
      }
    }
    const tail = doc.paths["/api/jobs/{id}/logs/tail"].get;
    assert.ok(tail.responses["101"] && !tail.responses["200"], "the tail is a WebSocket");
    assert.ok(doc.paths["/api/events"].get.responses["200"].content?.["text/event-stream"]);
    assert.deepEqual(doc.paths["/api/jobs/{id}"].get.security, [{ bearer: [] }]);
    assert.deepEqual(doc.paths["/-/healthz"].get.security, []);
    const job = doc.paths["/api/jobs/{id}"].get.responses["200"].content?.["application/json"];
    assert.deepEqual(job?.schema, { $ref: "#/components/schemas/JobDetails" });
    assert.ok(doc.components.schemas?.JobDetails && doc.components.schemas.ErrorResponse);
    assert.ok(doc.paths["/api/jobs/"].get.responses["200"].headers?.["X-Next-Cursor"]);
    const page = await (await fetch(`${head.info.address}/`)).text();
    assert.match(
      page,
      /<a href="\/api\/openapi.json">API \(OpenAPI\)<\/a>/,
      "the dashboard links it",
    );
  });
});

Deno.test("the OpenAPI document is valid OpenAPI 3.1, and a broken one is not", async () => {
  await withHead(async (_head, doc) => {
    OpenApiDocument.parse(doc);
    const validator = new Validator();
    const result = await validator.validate(doc);
    assert.deepEqual(result, { valid: true });
    assert.equal(doc.openapi, "3.1.0");
    const { info: _, ...withoutInfo } = doc;
    assert.equal((await new Validator().validate(withoutInfo)).valid, false);
    const badPath = { ...doc, paths: { "api/jobs": doc.paths["/api/jobs"] } };
    assert.equal((await new Validator().validate(badPath)).valid, false);
  });
});

// Examples in the docs --------------------------------------------------------------------

/** A JSON example in the docs, and the route whose schema it must meet. */
interface Example {
  /** `README.md:42`. */
  where: string;
  method: string;
  /** As in the document: `/api/jobs/{id}`, or a real path (`/api/jobs/a1`) for curl's. */
  path: string;
  /** The request body, or the 200 answer's body. */
  kind: "request" | "response";
  text: string;
}

/** A line that marks the next code block as an example: `<!-- example: … -->`. */
const MARKER = /^<!-- example: (.*) -->$/;
/** What a marker says of an example of the API: `POST /api/jobs/ request`. */
const API_EXAMPLE = /^([A-Z]+) (\/\S*) (request|response)$/;

/**
 * The examples of a Markdown text: each ```json block, and the body of each
 * `curl … -d '…'` in ```sh blocks. A JSON block must follow a marker line: one naming a
 * route (`<!-- example: POST /api/jobs/ request -->`) makes it an example of that route's
 * body; another (`<!-- example: runs from a fresh directory … -->`) says another test
 * checks it. Unmarked JSON blocks, and route markers not followed by a JSON block, are
 * problems.
 */
function findExamples(markdown: string, file: string) {
  const examples: Example[] = [];
  const problems: string[] = [];
  const lines = markdown.split("\n");
  let marker: { api?: RegExpExecArray; line: number } | undefined;
  const noBlock = () => {
    if (marker?.api) {
      problems.push(`${file}:${marker.line}: an example marker without a JSON block`);
    }
    marker = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const fence = /^```(\w*)/.exec(line);
    const match = MARKER.exec(line);
    if (match) {
      noBlock();
      marker = { api: API_EXAMPLE.exec(match[1]) ?? undefined, line: i + 1 };
      continue;
    }
    if (!fence) {
      if (line !== "") noBlock();
      continue;
    }
    const end = lines.findIndex((l, j) => j > i && l.trim() === "```");
    const block = lines.slice(i + 1, end).join("\n");
    const where = `${file}:${i + 1}`;
    if (fence[1] === "json" && !marker) {
      problems.push(`${where}: a JSON block without an example marker`);
    } else if (fence[1] === "json" && marker?.api) {
      const [, method, path, kind] = marker.api;
      examples.push({ where, method, path, kind: kind as Example["kind"], text: block });
    } else if (fence[1] !== "json") {
      noBlock();
    }
    if (fence[1] === "sh") examples.push(...curlBodies(block, where));
    marker = undefined;
    i = end;
  }
  noBlock();
  return { examples, problems };
}

/** The JSON bodies `curl … -d '…'` commands of a shell block send. */
function curlBodies(block: string, where: string): Example[] {
  const commands = block.replace(/\\\n\s*/g, " ").split("\n");
  return commands.flatMap((command) => {
    const body = /\s-d\s+'([^']*)'/.exec(command)?.[1];
    const url = /https?:\/\/[^/\s'"]+(\/[^\s'"?]*)/.exec(command)?.[1];
    if (!command.includes("curl") || body === undefined || url === undefined) return [];
    const method = /\s-X\s+([A-Z]+)/.exec(command)?.[1] ?? "POST";
    return [{ where, method, path: url, kind: "request" as const, text: body }];
  });
}

const ajv = new Ajv2020({ allErrors: true, strictTypes: false, formats: { starts_with: true } });
// Schemas refer to `#/components/schemas/…`: each is compiled with the document's components.
ajv.addKeyword({ keyword: "components" });

/** Why `example` does not meet its route's schema in `doc`; empty when it does. */
function exampleErrors(doc: OpenApiDocument, example: Example): string[] {
  const what = `${example.where}: ${example.method} ${example.path} ${example.kind}`;
  const path = doc.paths[example.path] ? example.path : templateOf(doc, example.path);
  const op = path && doc.paths[path][example.method.toLowerCase()];
  if (!op) return [`${what}: no such route in the document`];
  const content = example.kind === "request"
    ? op.requestBody?.content
    : op.responses["200"]?.content;
  const schema = content?.["application/json"]?.schema;
  if (!schema) return [`${what}: the route has no JSON ${example.kind} body`];
  let value: unknown;
  try {
    value = JSON.parse(example.text);
  } catch (err) {
    return [`${what}: not JSON: ${(err as Error).message}`];
  }
  const validate = ajv.compile({ ...schema, components: doc.components });
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) =>
    `${what}: ${e.instancePath || "the body"} ${e.message} ${JSON.stringify(e.params)}`
  );
}

/** The document's path template a real path falls under (`/api/jobs/a1` → `/api/jobs/{id}`). */
function templateOf(doc: OpenApiDocument, path: string): string | undefined {
  return Object.keys(doc.paths).find((template) =>
    new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path)
  );
}

async function docsExamples() {
  const files = ["README.md"];
  for await (const entry of Deno.readDir(new URL("docs/", REPO))) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  const found = await Promise.all(
    files.sort().map(async (file) =>
      findExamples(await Deno.readTextFile(new URL(file, REPO)), file)
    ),
  );
  return {
    examples: found.flatMap((f) => f.examples),
    problems: found.flatMap((f) => f.problems),
  };
}

Deno.test("every JSON example in the docs validates against the OpenAPI document", async () => {
  await withHead(async (_head, doc) => {
    const { examples, problems } = await docsExamples();
    assert.deepEqual(problems, []);
    const routes = new Set(examples.map((e) => `${e.method} ${e.path} ${e.kind}`));
    for (
      const expected of [
        "POST /api/jobs/ request", // the README's JSON block, and its curl command
        "POST /api/serve/deployments request",
        "POST /api/session response",
      ]
    ) {
      assert.ok(routes.has(expected), `no example of ${expected}`);
    }
    assert.deepEqual(examples.flatMap((example) => exampleErrors(doc, example)), []);
  });
});

Deno.test("a broken example in the docs fails the check", async () => {
  await withHead((_head, doc) => {
    const markdown = [
      "<!-- example: POST /api/jobs/ request -->",
      "",
      "```json",
      '{ "entrypoint": "true", "priorty": 1, "entrypoint_num_cpus": -1 }',
      "```",
      "",
      "<!-- example: GET /api/jobs/{id} response -->",
      "```json",
      '{ "job_id": "a" }',
      "```",
      "<!-- example: POST /api/nowhere request -->",
      "```json",
      "{}",
      "```",
      "```json",
      '{ "unmarked": true }',
      "```",
      "<!-- example: checked by another test -->",
      "```json",
      '{ "checked": "elsewhere" }',
      "```",
      "<!-- example: GET /api/version response -->",
      "```ts",
      "await fetch('/api/version');",
      "```",
      "```sh",
      "curl -s -X POST http://127.0.0.1:8265/api/jobs/a1/stop \\",
      `  -d '{"entrypoint": ""}'`,
      `curl -s http://127.0.0.1:8265/api/serve/deployments -d '{"name": "web"}'`,
      "```",
    ].join("\n");
    const { examples, problems } = findExamples(markdown, "broken.md");
    assert.deepEqual(problems, [
      "broken.md:15: a JSON block without an example marker",
      "broken.md:22: an example marker without a JSON block",
    ]);
    assert.equal(examples.length, 5);
    const errors = examples.map((example) => exampleErrors(doc, example).join("\n"));
    assert.match(errors[0], /additional properties.*priorty/);
    assert.match(errors[0], /entrypoint_num_cpus must be >= 0/);
    assert.match(errors[1], /must have required property 'status'/);
    assert.match(errors[2], /no such route in the document/);
    assert.match(errors[3], /POST \/api\/jobs\/a1\/stop request: the route has no JSON request/);
    assert.match(errors[4], /must have required property 'entrypoint'/);
  });
});
