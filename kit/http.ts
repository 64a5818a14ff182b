/** Requests and errors in HTTP terms: parsing input, and the one map from errors to statuses. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import {
  ConflictError,
  errorMessage,
  InsufficientStorageError,
  InvalidPackageError,
  InvalidStateError,
  NotFoundError,
  StoreUnavailableError,
} from "../storage/errors.ts";
import {
  ForbiddenError,
  TooLargeError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "./errors.ts";
import type { ErrorResponse } from "./schemas.ts";
import { createLogger } from "./log.ts";

const log = createLogger("head");

/**
 * What the head's front door (host/gate.ts) tells a request's handler beside Deno's
 * connection info; it is the request's `env` in Hono.
 */
export interface FrontDoorInfo {
  /** Bytes of this connection's answers that the front door holds: read, not yet taken by the client. */
  heldForClient(): number;
}

/**
 * Bytes of `c`'s connection that its client has not taken at the front door, for a socket's
 * `bufferedAmount` to add: 0 where the request did not come through it.
 */
export function heldForClient(c: Context): () => number {
  const held = (c.env as Partial<FrontDoorInfo> | undefined)?.heldForClient;
  return typeof held === "function" ? held : () => 0;
}

/** The one place where an error becomes an HTTP status. */
export function statusOf(err: unknown): ContentfulStatusCode {
  if (err instanceof ValidationError) return 400;
  if (err instanceof InvalidPackageError) return 400;
  if (err instanceof UnauthorizedError) return 401;
  if (err instanceof ForbiddenError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof InvalidStateError) return 409;
  if (err instanceof TooLargeError) return 413;
  if (err instanceof UnavailableError) return 503;
  if (err instanceof StoreUnavailableError) return 503;
  if (err instanceof InsufficientStorageError) return 507;
  if (err instanceof HTTPException) return err.status as ContentfulStatusCode;
  return 500;
}

const CODES: Record<number, string> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  409: "CONFLICT",
  413: "TOO_LARGE",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  507: "INSUFFICIENT_STORAGE",
};

/**
 * How a route answers an error: its status (`statusOf()`), and the message a client may
 * see. A bug's (500) is withheld, and the error logged; a 503 says which limit is reached.
 */
export function errorAnswer(err: unknown): { status: ContentfulStatusCode; message: string } {
  const status = statusOf(err);
  if (status === 500) log.error("internal error:", err);
  return { status, message: status === 500 ? "Internal server error" : errorMessage(err) };
}

/** The JSON body of an error response with `status`. */
export function errorBody(status: number, message: string): ErrorResponse {
  return { error: { code: CODES[status] ?? `HTTP_${status}`, message } };
}

/**
 * Parses the JSON body with `schema`. Throws ValidationError naming the field for
 * malformed JSON, wrong types and unknown fields.
 */
export async function readJson<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch (err) {
    if (err instanceof TooLargeError) throw err;
    throw new ValidationError(`Request body is not valid JSON: ${errorMessage(err)}`);
  }
  return parseInput(schema, body, "body");
}

/**
 * Parses a comma-separated query value (`status=RUNNING,PENDING`), each item trimmed and
 * parsed with `schema`; undefined stays undefined. Throws ValidationError naming `what`.
 */
export function parseListInput<T extends z.ZodType>(
  schema: T,
  text: string | undefined,
  what: string,
): z.infer<T>[] | undefined {
  return text?.split(",").map((item) => parseInput(schema, item.trim(), what));
}

/** Parses `value` with `schema`; throws ValidationError naming the offending field. */
export function parseInput<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      const fields = issue.keys.map((key) => `"${path ? `${path}.` : ""}${key}"`).join(", ");
      return `unknown field ${fields}`;
    }
    return `${path || what}: ${issue.message}`;
  });
  throw new ValidationError(`Invalid request: ${messages.join("; ")}`);
}
