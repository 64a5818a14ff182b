/**
 * Route descriptions for the head's OpenAPI document (`GET /api/openapi.json`). A route
 * is described where it is defined: `describeRoute()` is a middleware that does nothing
 * but carry the route's schemas, registered with the handler, so the route's method and
 * path are written once, and its schemas are the very ones its handler parses with.
 * (`@hono/zod-openapi` would have every route rewritten as `createRoute()` on an
 * `OpenAPIHono`, operators' modules included; here a route keeps its handler and gains
 * one argument, and a module's Hono app carries its own descriptions to the host.)
 *
 * @example
 * ```ts
 * app.get(
 *   "/api/hello/:name",
 *   describeRoute({ summary: "Greets", params: z.object({ name: z.string() }), response: Hello }),
 *   (c) => c.json({ hello: c.req.param("name") } satisfies Hello),
 * );
 * ```
 */
import type { MiddlewareHandler } from "hono";
import type { z } from "zod";

/** A body that is not JSON: its media type, and a schema of it when one says anything. */
export interface MediaBody {
  mediaType: string;
  schema?: z.ZodType;
}

/** What the OpenAPI document says about one route. */
export interface RouteDoc {
  /** One line: what the route does. */
  summary: string;
  /** More, in Markdown, when one line is not enough. */
  description?: string;
  /** Path parameters (`:name` in the path), each with the schema the handler parses it with. */
  params?: z.ZodObject;
  /** Query parameters, as the handler parses them. */
  query?: z.ZodObject;
  /** The request body: a zod schema for JSON, or another media type. */
  body?: z.ZodType | MediaBody;
  /** The body of a 200 answer: a zod schema for JSON, or another media type. */
  response?: z.ZodType | MediaBody;
  /** Headers of a 200 answer that say something: name → what it holds. */
  responseHeaders?: Record<string, string>;
  /** The route upgrades to a WebSocket (101); `description` says what it sends. */
  websocket?: boolean;
  /** The body of 4xx and 5xx answers, when it is not ErrorResponse (Ray's envelope routes). */
  errorBody?: z.ZodType;
}

// Global, so that an operator's module importing another copy of this file is still read.
const ROUTE_DOC = Symbol.for("jobhead.routeDoc");

/**
 * A middleware that only passes the request on, carrying `doc`: register it with the
 * route's handler, `app.get(path, describeRoute(doc), handler)`.
 */
export function describeRoute(doc: RouteDoc): MiddlewareHandler {
  const middleware: MiddlewareHandler = async (_c, next) => {
    await next();
  };
  return Object.assign(middleware, { [ROUTE_DOC]: doc });
}

/** The description `describeRoute()` attached to `handler`, if any. */
export function routeDocOf(handler: unknown): RouteDoc | undefined {
  if (typeof handler !== "function") return undefined;
  return (handler as { [ROUTE_DOC]?: RouteDoc })[ROUTE_DOC];
}
