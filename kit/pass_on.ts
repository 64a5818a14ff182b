/**
 * Passing a request on to another process of a cluster (a node's agent, the head that
 * controls the deployments) and its answer back as it is: the same path and query, method
 * and body, the cluster's token, and the answer's status, chosen headers and body.
 */

/** How a request is passed on. */
export interface PassOnOptions {
  /** The cluster's bearer token, if it has one. */
  token?: string;
  /** Request headers passed on as they came, when present. */
  requestHeaders?: readonly string[];
  /** Headers added to the request passed on. */
  addHeaders?: Record<string, string>;
  /** Answer headers passed back, when present. */
  answerHeaders: readonly string[];
  /** How long the other process may take to answer the headers; none when absent. */
  answerTimeoutMs?: number;
  /** The error for a process that cannot be reached (`cause`: why). */
  unreachable(cause: unknown): Error;
}

/** Passes `request` on to the process at `address`; its answer as it is. */
export async function passOn(
  address: string,
  request: Request,
  options: PassOnOptions,
): Promise<Response> {
  const url = new URL(request.url);
  const headers = new Headers(options.addHeaders);
  if (options.token) headers.set("authorization", `Bearer ${options.token}`);
  for (const name of options.requestHeaders ?? []) {
    const value = request.headers.get(name);
    if (value !== null) headers.set(name, value);
  }
  const body = request.method === "GET" || request.method === "HEAD"
    ? undefined
    : await request.arrayBuffer();
  const { answerTimeoutMs } = options;
  const timeout = new AbortController();
  const timer = answerTimeoutMs === undefined ? undefined : setTimeout(
    () => timeout.abort(new Error(`no answer in ${answerTimeoutMs / 1000} s`)),
    answerTimeoutMs,
  );
  let answer: Response;
  try {
    // Not request.signal: reading it makes Deno print a warning in the operators' log. A
    // client that leaves cancels the answer's body, which ends the fetch's.
    answer = await fetch(new URL(url.pathname + url.search, address), {
      method: request.method,
      headers,
      body,
      signal: timeout.signal,
    });
  } catch (err) {
    throw options.unreachable(timeout.signal.reason ?? err);
  } finally {
    clearTimeout(timer);
  }
  const passed = new Headers();
  for (const name of options.answerHeaders) {
    const value = answer.headers.get(name);
    if (value !== null) passed.set(name, value);
  }
  return new Response(answer.body, { status: answer.status, headers: passed });
}
