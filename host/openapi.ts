/**
 * `GET /api/openapi.json`: an OpenAPI 3.1 document of every route the head serves,
 * generated from the descriptions `describeRoute()` attaches to the routes, whose
 * schemas are the zod schemas the handlers parse with (`z.toJSONSchema`).
 */
import { Hono } from "hono";
import { z } from "zod";
import { describeRoute, type MediaBody, type RouteDoc, routeDocOf } from "../kit/route_doc.ts";
import { ErrorResponse } from "../kit/schemas.ts";
import { errorMessage } from "../storage/errors.ts";
import { OpenApiDocument, type OpenApiOperation } from "./schemas.ts";
import { SESSION_PATH } from "./session.ts";

/** The path of the document. */
const OPENAPI_PATH = "/api/openapi.json";

/** A route as Hono lists it in `app.routes`. */
export interface ServedRoute {
  method: string;
  path: string;
  handler: unknown;
}

/** Routes served by one owner: the head's own (`head`) or a module's, named by it. */
export interface RouteSource {
  name: string;
  routes: readonly ServedRoute[];
}

/** Methods a route registered with `app.all()` stands for in the document. */
const ALL_METHODS = ["get", "put", "post", "delete", "patch"];

/** What the document says of a route whose module does not describe it. */
const UNDESCRIBED = "Its module does not describe this route.";

/**
 * The OpenAPI document of the routes of `sources`. Middleware entries (`app.use()`:
 * method ALL on a path ending in `*`) are not routes. A route without a description, or
 * whose description cannot be written, is listed all the same, with a note saying so.
 */
export function openApiDocument(
  sources: readonly RouteSource[],
  info: { version: string },
): OpenApiDocument {
  const writer = new SchemaWriter();
  const paths: OpenApiDocument["paths"] = {};
  for (const source of sources) {
    for (const route of describedRoutes(source.routes)) {
      const path = openApiPath(route.path);
      const methods = route.method === "ALL" ? ALL_METHODS : [route.method.toLowerCase()];
      for (const method of methods) {
        paths[path] ??= {};
        paths[path][method] ??= safeOperation(route.path, source.name, route.doc, writer);
      }
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "jobhead",
      version: info.version,
      description: "The jobhead head's HTTP API: Ray's job submission REST API (API level 4) " +
        "and jobhead's own routes. Generated from the zod schemas the routes parse with.",
    },
    paths,
    components: {
      ...(Object.keys(writer.components).length ? { schemas: writer.components } : {}),
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "Needed when the head was started with a token. " +
            "`X-Ray-Authorization: Bearer <token>` and the dashboard's session cookie " +
            "(`POST /api/session`) are accepted too.",
        },
      },
    },
  };
}

/** The document's route: it lists the routes of `sources()` at request time. */
export function openApiRoutes(
  sources: () => readonly RouteSource[],
  info: { version: string },
): Hono {
  let cached: { key: readonly unknown[]; body: OpenApiDocument } | undefined;
  return new Hono().get(
    OPENAPI_PATH,
    describeRoute({
      summary: "This document: every route the head serves, generated from their schemas",
      response: OpenApiDocument,
    }),
    (c) => {
      const current = sources();
      const key = current.flatMap((source) => [source.name, source.routes]);
      if (!cached || !sameItems(cached.key, key)) {
        cached = { key, body: openApiDocument(current, info) };
      }
      return c.json(cached.body satisfies OpenApiDocument);
    },
  );
}

/** `/api/jobs/:id` → `/api/jobs/{id}`; a final `*` becomes `{path}`. */
export function openApiPath(path: string): string {
  return path
    .replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?\??/g, "{$1}")
    .replace(/\/\*$/, "/{path}");
}

/** Each route of `routes` (method and path) once, with the description of any handler. */
function describedRoutes(routes: readonly ServedRoute[]) {
  const described = new Map<string, { method: string; path: string; doc?: RouteDoc }>();
  for (const route of routes) {
    if (route.method === "ALL" && route.path.endsWith("*")) continue; // middleware
    const key = `${route.method} ${route.path}`;
    const entry = described.get(key) ?? { method: route.method, path: route.path };
    entry.doc ??= routeDocOf(route.handler);
    described.set(key, entry);
  }
  return described.values();
}

/** The route's operation; one whose schemas zod cannot write never fails the document. */
function safeOperation(
  honoPath: string,
  tag: string,
  doc: RouteDoc | undefined,
  writer: SchemaWriter,
): OpenApiOperation {
  try {
    return operation(honoPath, tag, doc, writer);
  } catch (err) {
    const op = operation(honoPath, tag, undefined, writer);
    return {
      ...op,
      description: `Its description could not be written: ${errorMessage(err)}`,
    };
  }
}

function operation(
  honoPath: string,
  tag: string,
  doc: RouteDoc | undefined,
  writer: SchemaWriter,
): OpenApiOperation {
  const path = openApiPath(honoPath);
  const needsToken = (path === "/api" || path.startsWith("/api/")) && path !== SESSION_PATH;
  const parameters = [
    ...pathParameters(honoPath, doc?.params, writer),
    ...queryParameters(doc?.query, writer),
  ];
  const description = doc ? doc.description : UNDESCRIBED;
  const op: OpenApiOperation = {
    tags: [tag],
    ...(doc ? { summary: doc.summary } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(parameters.length ? { parameters } : {}),
    responses: {},
    security: needsToken ? [{ bearer: [] }] : [],
  };
  if (doc?.body) op.requestBody = { required: true, content: content(doc.body, "input", writer) };
  if (doc?.websocket) {
    op.responses["101"] = { description: "Switching Protocols: the connection is a WebSocket" };
  } else {
    op.responses["200"] = {
      description: "OK",
      ...(doc?.responseHeaders ? { headers: headers(doc.responseHeaders) } : {}),
      ...(doc?.response ? { content: content(doc.response, "output", writer) } : {}),
    };
  }
  if (doc) {
    const error = content(doc.errorBody ?? ErrorResponse, "output", writer);
    op.responses["4XX"] = { description: "Bad request, or refused: see `error`", content: error };
    op.responses["5XX"] = { description: "The head failed, or is unavailable", content: error };
  }
  return op;
}

/** A path parameter per `:name` of `honoPath`, and `path` for a final `*`. */
function pathParameters(honoPath: string, params: z.ZodObject | undefined, writer: SchemaWriter) {
  const schemas = params ? writer.write(params, "input").properties : undefined;
  return [...openApiPath(honoPath).matchAll(/\{([^}]+)\}/g)].map(([, name]) => ({
    name,
    in: "path" as const,
    required: true,
    ...(name === "path" && honoPath.endsWith("/*")
      ? { description: "The rest of the path; it may contain `/`" }
      : {}),
    schema: (schemas?.[name] as JsonSchema | undefined) ?? { type: "string" },
  }));
}

function queryParameters(query: z.ZodObject | undefined, writer: SchemaWriter) {
  if (!query) return [];
  const schema = writer.write(query, "input");
  const required = new Set(schema.required as string[] | undefined);
  return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    in: "query" as const,
    required: required.has(name),
    schema: property as JsonSchema,
  }));
}

function content(body: z.ZodType | MediaBody, io: "input" | "output", writer: SchemaWriter) {
  if ("mediaType" in body) {
    return { [body.mediaType]: body.schema ? { schema: writer.write(body.schema, io) } : {} };
  }
  return { "application/json": { schema: writer.write(body, io) } };
}

function headers(described: Record<string, string>) {
  return Object.fromEntries(
    Object.entries(described).map(([name, description]) => [
      name,
      { description, schema: { type: "string" } },
    ]),
  );
}

type JsonSchema = Record<string, unknown> & {
  properties?: Record<string, unknown>;
  required?: unknown;
  $defs?: Record<string, JsonSchema>;
};

/**
 * Writes zod schemas as JSON Schema: what a request may be (`input`: defaults make
 * fields optional) or what an answer is (`output`). What JSON Schema cannot say (a
 * transform) is left open rather than failing the document. Definitions zod makes
 * (schemas with a `.meta({ id })`, recursive ones) move to `components.schemas`, so
 * that their references resolve in the document.
 */
class SchemaWriter {
  /** `components.schemas`. */
  readonly components: Record<string, JsonSchema> = {};
  /** Each component as zod wrote it, before its references were relinked. */
  #written = new Map<string, string>();

  write(schema: z.ZodType, io: "input" | "output"): JsonSchema {
    const { $schema: _, $defs, ...rest } = z.toJSONSchema(schema, {
      io,
      unrepresentable: "any",
    }) as JsonSchema;
    if (!$defs) return rest;
    // Two definitions of one name (zod numbers unnamed ones from 0 in each schema) differ.
    const names = new Map<string, string>();
    for (const [name, def] of Object.entries($defs)) {
      const text = JSON.stringify(def);
      let unique = name;
      for (let n = 2; (this.#written.get(unique) ?? text) !== text; n++) unique = `${name}_${n}`;
      this.#written.set(unique, text);
      names.set(name, unique);
    }
    const relink = <T>(value: T): T =>
      JSON.parse(
        JSON.stringify(value).replace(
          /"#\/\$defs\/([^"]+)"/g,
          (_, name) => JSON.stringify(`#/components/schemas/${names.get(name) ?? name}`),
        ),
      );
    for (const [name, def] of Object.entries($defs)) {
      this.components[names.get(name)!] = relink(def);
    }
    return relink(rest);
  }
}

function sameItems(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
