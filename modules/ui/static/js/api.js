/**
 * Calls to the head's API from the page. Every call carries `X-Requested-With`, which
 * tells the head that our own page sent it (the session cookie alone does not).
 * @module
 */

/** An error answer of the API: its status, code and message (API.md, "Errors"). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** @type {() => void} */
let onUnauthorized = () => {};

/**
 * Sets what happens when the head answers 401: the page asks for the token again.
 * @param {() => void} handler
 */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * How long a read may take before the page gives up on it: a request stuck on a dead
 * connection must not hold back every later refresh of a view (they wait for the last).
 */
const READ_TIMEOUT_MS = 20_000;

/**
 * Calls the API and returns the parsed JSON body; throws ApiError for an error answer.
 * A GET that gets no answer within READ_TIMEOUT_MS throws a TimeoutError.
 * @param {string} path
 * @param {{ method?: string, body?: unknown, query?: Record<string, string | undefined> }} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  /** @type {Record<string, string>} */
  const headers = { "x-requested-with": "jobhead" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const method = options.method ?? "GET";
  const res = await fetch(url, {
    method,
    headers,
    signal: method === "GET" ? AbortSignal.timeout(READ_TIMEOUT_MS) : undefined,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text === "" ? null : JSON.parse(text);
  } catch {
    data = text;
  }
  if (!res.ok) {
    // A wrong token at sign-in is that form's error, not a reason to ask again.
    if (res.status === 401 && url.pathname !== "/api/session") onUnauthorized();
    const message = data?.error?.message ?? data?.msg ?? `The head answered ${res.status}`;
    throw new ApiError(res.status, data?.error?.code ?? `HTTP_${res.status}`, message);
  }
  return data;
}

/**
 * A path segment for an id (ids are restricted to URL-safe characters, but be sure).
 * @param {string} id
 */
export function seg(id) {
  return encodeURIComponent(id);
}
