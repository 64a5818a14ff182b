/** The head's Hono app: authentication, body limits, and the one place errors become statuses. */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import {
  ConflictError,
  InsufficientStorageError,
  InvalidPackageError,
  InvalidStateError,
  NotFoundError,
} from "../../storage/errors.ts";
import {
  ForbiddenError,
  TooLargeError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from "./errors.ts";
import type { ErrorResponse } from "./schemas.ts";
import {
  checkLoopbackHost,
  checkOrigin,
  type Credential,
  hasBearer,
  hasCredentials,
  hasSession,
  SESSION_PATH,
} from "./session.ts";
import { createLogger } from "./log.ts";

const log = createLogger("head");

/** Options of `createApp()`. */
export interface AppOptions {
  /** When set, every `/api/*` request must carry it as a bearer token, or a session cookie. */
  token?: string;
  /** Largest accepted request body, except for routes under `rawBodyPrefixes`. */
  maxBodyBytes: number;
  /** Path prefixes whose routes take bodies of their own size (uploads). */
  rawBodyPrefixes?: string[];
  /** Serves `/metrics` without the token; otherwise it needs the token as `/api/*` does. */
  metricsPublic?: boolean;
  /** Runs first, around every request (the HTTP metrics). */
  observe?: MiddlewareHandler;
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

/** The JSON body of an error response with `status`. */
export function errorBody(status: number, message: string): ErrorResponse {
  return { error: { code: CODES[status] ?? `HTTP_${status}`, message } };
}

/** A Hono app with the head's middleware; modules' apps are mounted on it. */
export function createApp(options: AppOptions): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    const status = statusOf(err);
    if (status === 500) log.error("internal error:", err);
    // A 503 says which limit is reached; only a bug's message is withheld.
    const message = status === 500 ? "Internal server error" : err.message;
    return c.json(errorBody(status, message), status);
  });
  app.notFound((c) => {
    return c.json(errorBody(404, `No route for ${c.req.method} ${c.req.path}`), 404);
  });
  if (options.observe) app.use("*", options.observe);
  app.use("*", async (c, next) => {
    if (options.token === undefined) checkLoopbackHost(c);
    checkOrigin(c, await authenticate(c, options.token, options.metricsPublic ?? false));
    await next();
  });
  const limit = bodyLimit({
    maxSize: options.maxBodyBytes,
    onError: () => {
      throw new TooLargeError(`Request body is over the limit of ${options.maxBodyBytes} bytes`);
    },
  });
  const rawPrefixes = options.rawBodyPrefixes ?? [];
  app.use("*", async (c, next) => {
    if (rawPrefixes.some((prefix) => c.req.path.startsWith(prefix))) return await next();
    return await limit(c, next);
  });
  return app;
}

/**
 * How the request is let in. With a token, `/api/*` (but the login) and `/metrics` (unless
 * public) need the bearer token or a session cookie: throws ForbiddenError when the
 * request carries a wrong token, UnauthorizedError when it carries none.
 */
async function authenticate(
  c: Context,
  token: string | undefined,
  metricsPublic: boolean,
): Promise<Credential> {
  if (token === undefined) return "none";
  if (hasBearer(c, token)) return "bearer";
  if (await hasSession(c, token)) return "cookie";
  const path = c.req.path;
  const guarded = path === "/api" || path.startsWith("/api/") ||
    (path === "/metrics" && !metricsPublic);
  if (!guarded || path === SESSION_PATH) return "none";
  if (hasCredentials(c)) {
    throw new ForbiddenError("Wrong token: give the token the head was started with");
  }
  throw new UnauthorizedError(
    "A valid token is required: send the header 'Authorization: Bearer <token>'",
  );
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
    throw new ValidationError(`Request body is not valid JSON: ${(err as Error).message}`);
  }
  return parseInput(schema, body, "body");
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
