/**
 * Browser sessions and the Origin check. Browsers cannot put a bearer token on a
 * WebSocket or an EventSource, so a page trades the token once for an HttpOnly,
 * SameSite=Strict session cookie (`POST /api/session`). A cookie goes with every request
 * to this host, whichever page makes it, so requests that change state, and WebSocket
 * upgrades, are refused when another origin's page made them.
 */
import { type Context, Hono } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { z } from "zod";
import { isLoopbackName } from "./config.ts";
import { ForbiddenError, ValidationError } from "../kit/errors.ts";
import { describeRoute } from "../kit/route_doc.ts";

/** How long a session cookie is good for. */
export const SESSION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
/** The login route: reached without a token, it checks the token itself. */
export const SESSION_PATH = "/api/session";
/** GET routes that change state (Ray's actor kill is a GET): checked like a POST. */
const STATE_CHANGING_GETS = new Set(["/api/actors/kill"]);

/** Body of `POST /api/session`. */
export const LoginRequest = z.strictObject({ token: z.string() });
export type LoginRequest = z.infer<typeof LoginRequest>;

/** Response of `GET`, `POST` and `DELETE /api/session`. */
export const SessionResponse = z.object({
  /** The head was started with a token. */
  token_required: z.boolean(),
  /** This request may use the API: no token is required, or it carried the token or a session. */
  authenticated: z.boolean(),
});
export type SessionResponse = z.infer<typeof SessionResponse>;

/** How a request was let in: by its bearer token, by a session cookie, or by nothing. */
export type Credential = "bearer" | "cookie" | "none";

/**
 * The session cookie's name. Cookies do not tell ports apart, so heads on one host at
 * different ports each get their own.
 */
export function sessionCookieName(c: Context): string {
  const url = new URL(c.req.url);
  const host = c.req.header("host") ?? url.host;
  const port = /:(\d+)$/.exec(host)?.[1] ?? (url.protocol === "https:" ? "443" : "80");
  return `jobhead_session_${port}`;
}

/** Whether the request carries an unexpired session cookie signed with `token`. */
export async function hasSession(c: Context, token: string): Promise<boolean> {
  const value = await getSignedCookie(c, token, sessionCookieName(c));
  if (typeof value !== "string") return false;
  const expires = Number(value);
  return Number.isFinite(expires) && expires > Date.now();
}

/** Whether the request changes state (or opens a socket): what the Origin check guards. */
export function changesState(c: Context): boolean {
  const method = c.req.method;
  if (c.req.header("upgrade")?.toLowerCase() === "websocket") return true;
  if (method === "GET" || method === "HEAD") return STATE_CHANGING_GETS.has(c.req.path);
  return method !== "OPTIONS";
}

/**
 * Refuses, with ForbiddenError, a state-changing request or socket that a page of
 * another origin made: its `Origin` is not this head's, or the browser marks it
 * cross-site. A request let in by the session cookie must also prove it came from our
 * own page: by its `Origin`, or (same-origin GETs carry none) by an `X-Requested-With`
 * header, which no other origin's page can add without a CORS preflight we never grant.
 * Requests without an `Origin` from non-browser clients (curl, Ray's SDK) pass.
 */
export function checkOrigin(c: Context, credential: Credential): void {
  if (credential === "bearer" || !changesState(c)) return;
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    if (!isOwnOrigin(c, origin)) {
      throw new ForbiddenError(
        `Cross-origin request refused: origin "${origin}" is not this head's`,
      );
    }
    return;
  }
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    throw new ForbiddenError(`Cross-site request refused: the browser sent it from a ${site} page`);
  }
  if (credential === "cookie" && c.req.header("x-requested-with") === undefined) {
    throw new ForbiddenError(
      "Request refused: a request signed in by the session cookie must carry Origin or X-Requested-With",
    );
  }
}

/**
 * Refuses, with ForbiddenError, a request to a head without a token that is not
 * addressed to a loopback name. Otherwise a page whose site name an attacker points at
 * 127.0.0.1 (DNS rebinding) would be this head's own origin to the browser.
 */
export function checkLoopbackHost(c: Context): void {
  const host = c.req.header("host") ?? new URL(c.req.url).host;
  const name = hostName(host);
  if (name !== undefined && isLoopbackName(name)) return;
  throw new ForbiddenError(
    `Request refused: "${name ?? host}" is not a loopback name, and a head without a token ` +
      `answers only to 127.0.0.1, localhost or [::1] (a guard against DNS rebinding)`,
  );
}

/** The name part of a `Host` header (`name`, `name:port`, `[v6]:port`); undefined if malformed. */
export function hostName(host: string): string | undefined {
  const m = /^(\[[^\]]*\]|[^:[\]]*)(?::[0-9]{1,5})?$/.exec(host);
  return m?.[1];
}

function isOwnOrigin(c: Context, origin: string): boolean {
  try {
    return new URL(origin).host === (c.req.header("host") ?? new URL(c.req.url).host);
  } catch {
    return false; // "null" (sandboxed frames, file: pages) or garbage
  }
}

/** `/api/session`: whether a token is required, log in (sets the cookie), log out. */
export function sessionRoutes(token: string | undefined): Hono {
  const app = new Hono();
  const status = async (c: Context): Promise<SessionResponse> => ({
    token_required: token !== undefined,
    authenticated: token === undefined || hasBearer(c, token) || await hasSession(c, token),
  });

  const statusDoc = describeRoute({
    summary: "Whether a token is required, and whether this request has it (needs no token)",
    response: SessionResponse,
  });
  app.get(SESSION_PATH, statusDoc, async (c) => c.json(await status(c)));

  const loginDoc = describeRoute({
    summary: "Signs a browser in: trades the token for a session cookie (401 if wrong)",
    body: LoginRequest,
    response: SessionResponse,
  });
  app.post(SESSION_PATH, loginDoc, async (c) => {
    if (token === undefined) return c.json(await status(c));
    const login = LoginRequest.safeParse(await c.req.json().catch(() => undefined));
    if (!login.success) {
      throw new ValidationError('Invalid request: body: expected {"token": "<the head\'s token>"}');
    }
    if (!sameText(login.data.token, token)) {
      throw new ForbiddenError("Wrong token: give the token the head was started with");
    }
    const expires = Date.now() + SESSION_TTL_MS;
    await setSignedCookie(c, sessionCookieName(c), String(expires), token, {
      path: "/",
      httpOnly: true,
      sameSite: "Strict",
      secure: isHttps(c),
      maxAge: Math.floor(SESSION_TTL_MS / 1000),
    });
    return c.json({ token_required: true, authenticated: true } satisfies SessionResponse);
  });

  const logoutDoc = describeRoute({
    summary: "Signs a browser out: drops the session cookie",
    response: SessionResponse,
  });
  app.delete(SESSION_PATH, logoutDoc, (c) => {
    deleteCookie(c, sessionCookieName(c), { path: "/", secure: isHttps(c) });
    return c.json(
      { token_required: token !== undefined, authenticated: token === undefined },
    );
  });

  return app;
}

/** Whether the request carries `token` as a bearer token (either header Ray clients use). */
export function hasBearer(c: Context, token: string): boolean {
  const expected = `Bearer ${token}`;
  for (const header of ["Authorization", "X-Ray-Authorization"]) {
    const value = c.req.header(header);
    if (value !== undefined && sameText(value, expected)) return true;
  }
  return false;
}

/** Whether the request carries a token at all, right or wrong (either header Ray clients use). */
export function hasCredentials(c: Context): boolean {
  return ["Authorization", "X-Ray-Authorization"].some((header) => {
    return (c.req.header(header) ?? "").trim() !== "";
  });
}

/** Compares two strings in time that depends only on their lengths. */
function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
}
