/**
 * In a cluster a job's log stays on its node: a head answers the log reads of a job that
 * runs elsewhere by asking that node's agent (its jobs API), passing on the same status,
 * headers and bytes, and relays the WebSocket tail frame by frame with the same close
 * code. An unreachable node is a 503 naming it.
 */
import { UnavailableError } from "../../kit/errors.ts";
import { passOn } from "../../kit/pass_on.ts";
import { errorMessage } from "../../storage/errors.ts";

/** The node a request goes to: its name (for messages) and its agent's address. */
export interface NodeAddress {
  name: string;
  address: string;
}

/** How long a node may take to answer a request's headers before it counts as unreachable. */
const ANSWER_TIMEOUT_MS = 10_000;
/** Response headers passed on from the node. */
const PASSED_HEADERS = [
  "content-type",
  "content-range",
  "content-length",
  "accept-ranges",
  "x-jobhead-log-gap",
];
/**
 * Frames a relayed tail holds for a client that does not read, in bytes: past it the tail
 * closes (1008), so a stalled client cannot grow the head's memory without bound.
 */
const MAX_RELAY_BUFFERED_BYTES = 64 * 1024 * 1024;

function unreachable(node: NodeAddress, err: unknown): UnavailableError {
  return new UnavailableError(
    `node "${node.name}" (${node.address}) where the job runs is unreachable: ${errorMessage(err)}`,
  );
}

/** Passes `request` (its path, query and Range header) on to `node`; its answer as is. */
export function proxyToNode(
  node: NodeAddress,
  request: Request,
  token: string | undefined,
): Promise<Response> {
  return passOn(node.address, request, {
    token,
    requestHeaders: ["range"],
    answerHeaders: PASSED_HEADERS,
    answerTimeoutMs: ANSWER_TIMEOUT_MS,
    unreachable: (cause) => unreachable(node, cause),
  });
}

/**
 * Relays a job's log tail from `node` to the client's upgrade `request`: frames as the
 * node sends them, and the node's close code and reason. Throws UnavailableError (503)
 * when the node cannot be reached; its refusal (404, 503) is passed on as is.
 */
export async function relayTail(
  node: NodeAddress,
  request: Request,
  token: string | undefined,
  idleTimeoutS: number,
): Promise<Response> {
  const url = new URL(request.url);
  const target = new URL(url.pathname + url.search, node.address);
  target.protocol = target.protocol === "https:" ? "wss:" : "ws:";
  const upstream = new WebSocket(target, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  } as unknown as string[]);
  const opened = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ANSWER_TIMEOUT_MS);
    upstream.onopen = () => {
      clearTimeout(timer);
      resolve(true);
    };
    upstream.onerror = () => {
      clearTimeout(timer);
      resolve(false);
    };
  });
  if (!opened) {
    upstream.close();
    // The node answered but refused the upgrade (the job gone, too many tails): say so.
    const answer = await proxyToNode(node, request, token).catch((err) => {
      throw err instanceof UnavailableError ? err : unreachable(node, err);
    });
    if (answer.status >= 400) return answer;
    await answer.body?.cancel();
    throw unreachable(node, new Error("the log tail could not be opened"));
  }
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: idleTimeoutS });
  // What the node sent, and how it closed, before the client's socket opened.
  const pending: string[] = [];
  let ended: { code: number; reason: string } | undefined;
  upstream.onmessage = (event) => {
    if (socket.readyState === WebSocket.CONNECTING) {
      pending.push(event.data);
      return;
    }
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > MAX_RELAY_BUFFERED_BYTES) {
      socket.close(1008, "client too slow: log tail relay buffer full");
      upstream.close(1000);
      return;
    }
    socket.send(event.data);
  };
  upstream.onclose = (event) => {
    const code = event.code === 1005 || event.code === 1006 ? 1011 : event.code;
    const reason = event.code === 1006 ? `node "${node.name}" went away` : event.reason;
    if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
    else ended = { code, reason };
  };
  socket.onopen = () => {
    for (const frame of pending.splice(0)) socket.send(frame);
    if (ended) socket.close(ended.code, ended.reason);
  };
  socket.onclose = () => {
    if (upstream.readyState === WebSocket.OPEN) upstream.close(1000);
  };
  return response;
}
