/** The head's Hono app: authentication, body limits, and errors answered as JSON. */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ForbiddenError, TooLargeError, UnauthorizedError } from "../kit/errors.ts";
import { errorAnswer, errorBody } from "../kit/http.ts";
import {
  checkLoopbackHost,
  checkOrigin,
  type Credential,
  hasBearer,
  hasCredentials,
  hasSession,
  SESSION_PATH,
} from "./session.ts";

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

/** A Hono app with the head's middleware; modules' apps are mounted on it. */
export function createApp(options: AppOptions): Hono {
  const app = new Hono();
  app.onError((err, c) => {
    const { status, message } = errorAnswer(err);
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
