/**
 * The head's front door. `Deno.serve` neither times out a client that trickles its
 * headers nor caps its connections (measured on Deno 2.9: a connection that sends half a
 * request line stays open for good), so the head accepts TCP connections itself: it
 * caps how many are open, gives each a deadline for its next request's headers, and
 * pipes the rest to an HTTP server of its own on a loopback port. That server tells the
 * gate when a request starts and when its response is done (`info.completed`), so the
 * gate needs no HTTP parser: a connection with no request in progress must start one
 * within the header timeout, counted from its opening or its last response. Upgraded
 * connections (WebSockets) are left to their own idle checks. A client that takes no
 * byte of what the head sends it for SEND_TIMEOUT_MS is closed too (a stalled reader
 * would otherwise hold its connection after the server side has closed).
 */
import { setTimeout as delay } from "node:timers/promises";
import { errorBody, type FrontDoorInfo } from "../kit/http.ts";
import { errorMessage } from "../storage/errors.ts";
import { limitUnsentBytes } from "./socket_options.ts";

/** Options of `openGate()`. */
export interface GateOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /** Seconds a connection may take to send its next request's headers; 0: no limit. */
  headerTimeoutS: number;
  /** Open client connections at most; past it new ones are answered 503 and closed. */
  maxConnections: number;
  /** What `Deno.serve` would call, with what the gate knows of the connection. */
  handler: (request: Request, info: ConnectionInfo) => Promise<Response>;
  /** Writes one line to the operator's log. */
  log: (line: string) => void;
}

/** Deno's information on a request's connection, and the gate's. */
export type ConnectionInfo = Deno.ServeHandlerInfo<Deno.NetAddr> & FrontDoorInfo;

/** An open gate and the server behind it. */
export interface Gate {
  /** Where clients connect. */
  addr: Deno.NetAddr;
  /** Stops accepting, lets requests in flight finish for up to `graceMs`, closes the rest. */
  shutdown(graceMs: number): Promise<void>;
  /** Settles when the server behind the gate has shut down. */
  finished: Promise<void>;
}

/**
 * File descriptors one client connection may take: its socket, both ends of its pipe to
 * the server, and the log file a tail reads while it catches up.
 */
export const FDS_PER_CONNECTION = 4;
/** File descriptors kept for everything else (the store, logs, pipes to jobs). */
export const RESERVED_FDS = 256;
/** The connection cap when the open-files limit allows it. */
export const DEFAULT_MAX_CONNECTIONS = 4096;
/**
 * Bytes a connection reads at once, each way: it starts small (what an idle connection
 * costs: a read waits on each side with its buffer, 2 KiB for both at first, which an
 * idle log tail keeps for good) and grows to the most once a read fills it (for
 * throughput). Requests are small; responses (logs) get more.
 */
const FIRST_BUFFER_BYTES = 1024;
const REQUEST_BUFFER_BYTES = 16 * 1024;
const RESPONSE_BUFFER_BYTES = 32 * 1024;
/**
 * Bytes a connection may queue unsent in the kernel, on both legs (client and server
 * side of the pipe). Without a limit the kernel lets the send buffer of a socket whose
 * peer does not read grow to megabytes (`net.ipv4.tcp_wmem`): 500 stalled log tails took
 * 2 GB of kernel memory, past `net.ipv4.tcp_mem`'s pressure mark, which slows every TCP
 * connection of the machine (`/-/healthz` p99 near 300 ms).
 */
export const MAX_UNSENT_BYTES = 64 * 1024;
/** After an accept fails (out of descriptors), wait this long before accepting again. */
const ACCEPT_RETRY_MS = 100;
/** A client that takes nothing the head sends it for this long is closed. */
export const SEND_TIMEOUT_MS = 120_000;
/** How often the gate looks for connections past a deadline. */
const SWEEP_MS = 1_000;

const BUSY = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n" +
    "connection: close\r\n\r\n" +
    JSON.stringify(errorBody(503, "Too many connections: try again later")),
);

/**
 * The default connection cap for an open-files limit of `fdLimit`: DEFAULT_MAX_CONNECTIONS,
 * or fewer so that every connection gets its descriptors and RESERVED_FDS remain.
 */
export function defaultMaxConnections(fdLimit: number): number {
  const fit = Math.floor((fdLimit - RESERVED_FDS) / FDS_PER_CONNECTION);
  return Math.max(1, Math.min(DEFAULT_MAX_CONNECTIONS, fit));
}

/** The soft open-files limit of this process (`/proc/self/limits`); Infinity when unlimited. */
export function readOpenFilesLimit(): number {
  const limits = Deno.readTextFileSync("/proc/self/limits");
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  return soft === undefined || soft === "unlimited" ? Infinity : Number(soft);
}

/** Listens on `hostname:port` and serves `handler` through the gate; resolves once listening. */
export async function openGate(options: GateOptions): Promise<Gate> {
  const timeoutMs = options.headerTimeoutS * 1000;
  /** Client connections by the local port of their pipe to the server. */
  const open = new Map<number, Connection>();
  const innerReady = Promise.withResolvers<Deno.NetAddr>();
  const inner = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: (addr) => innerReady.resolve(addr),
  }, async (request, info) => {
    const connection = open.get(info.remoteAddr.port);
    if (!connection) {
      // Someone on this machine connected to the inner port: only the gate may.
      return Response.json(errorBody(403, "Connect to the head's own address"), { status: 403 });
    }
    connection.requestStarted();
    info.completed.then(() => connection.requestEnded(), () => connection.requestEnded());
    const response = await options.handler(request, {
      remoteAddr: info.remoteAddr,
      completed: info.completed,
      heldForClient: () => connection.heldForClient,
    });
    if (response.status === 101) connection.upgraded();
    return response;
  });
  const innerAddr = await innerReady.promise;
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const listenerPort = (listener.addr as Deno.NetAddr).port;
  if (
    !limitUnsentBytes(listenerPort, MAX_UNSENT_BYTES) ||
    !limitUnsentBytes(innerAddr.port, MAX_UNSENT_BYTES)
  ) {
    options.log(
      "cannot limit what sockets queue in the kernel (TCP_NOTSENT_LOWAT through libc): " +
        "each client that does not read may hold megabytes of kernel memory",
    );
  }

  // Out of descriptors, every accept fails: one line until a connection gets through.
  let failing = false;
  const failed = (line: string) => {
    if (!failing) options.log(`${line} (not repeated until a connection gets through)`);
    failing = true;
  };
  /** The `run()` of every open connection. */
  const running = new Set<Promise<void>>();
  /** Client connections admitted, counted before their pipe is set up. */
  let admitted = 0;
  let refusing = false;
  /** Answers 503 and closes; the accept loop waits for it, so refusing costs one descriptor. */
  const refuse = async (client: Deno.TcpConn) => {
    if (!refusing) {
      refusing = true;
      options.log(
        `${admitted} connections are open, the most --max-connections allows: ` +
          `new connections are refused until some close`,
      );
    }
    // A fresh socket's buffer takes these few bytes at once, whether the client reads or not.
    await client.write(BUSY).catch(() => {});
    closeQuietly(client);
  };
  const admit = async (client: Deno.TcpConn) => {
    admitted++;
    try {
      await pass(client);
    } finally {
      admitted--;
    }
    if (refusing && admitted < options.maxConnections) {
      refusing = false;
      options.log(`${admitted} connections are open: accepting new ones again`);
    }
  };
  const pass = async (client: Deno.TcpConn) => {
    let upstream: Deno.TcpConn;
    try {
      upstream = await Deno.connect({ hostname: innerAddr.hostname, port: innerAddr.port });
    } catch (err) {
      failed(`cannot pass a connection on: ${errorMessage(err)}`);
      closeQuietly(client);
      return;
    }
    failing = false;
    const port = (upstream.localAddr as Deno.NetAddr).port;
    const connection = new Connection(client, upstream, timeoutMs);
    open.set(port, connection);
    const run = connection.run();
    running.add(run);
    await run;
    running.delete(run);
    open.delete(port);
  };

  // One sweep for every deadline: a timer per connection (or per write) costs more.
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const connection of open.values()) connection.closeIfLate(now);
  }, Math.min(SWEEP_MS, timeoutMs || SWEEP_MS));

  const accepting = (async () => {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await listener.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource) return; // the listener closed
        failed(`accepting a connection failed: ${errorMessage(err)}`);
        await delay(ACCEPT_RETRY_MS);
        continue;
      }
      if (admitted >= options.maxConnections) await refuse(client);
      else admit(client);
    }
  })();

  return {
    addr: listener.addr as Deno.NetAddr,
    async shutdown(graceMs: number) {
      listener.close();
      await accepting;
      clearInterval(sweeper);
      const timer = new AbortController();
      // The server's last bytes (a tail's 1001 close) still have to pass through the gate:
      // connections end when the server has closed its side and they are delivered.
      const drained = inner.shutdown().then(() => Promise.all(running));
      await Promise.race([
        drained,
        delay(graceMs, undefined, { signal: timer.signal }).catch(() => {}),
      ]);
      timer.abort();
      for (const connection of open.values()) connection.close();
      await inner.finished;
    },
    finished: inner.finished,
  };
}

/** One client connection piped to the inner server, with its deadlines. */
class Connection {
  #client: Deno.TcpConn;
  #upstream: Deno.TcpConn;
  #timeoutMs: number;
  #active = 0;
  #upgraded = false;
  #closed = false;
  /** When the client must have started its next request by (epoch ms). */
  #headerDeadline = Infinity;
  /** Since when a write to the client has been waiting (epoch ms). */
  #sendingSince = Infinity;
  /** Bytes read from the server that the client has not taken yet. */
  heldForClient = 0;

  constructor(client: Deno.TcpConn, upstream: Deno.TcpConn, timeoutMs: number) {
    this.#client = client;
    this.#upstream = upstream;
    this.#timeoutMs = timeoutMs;
  }

  /** Pipes both ways until the server's side ends or either fails; then closes both. */
  async run(): Promise<void> {
    this.#arm();
    await Promise.all([
      // The client has sent all it will: the server may still answer.
      this.#pipeIn().then(() => this.#upstream.closeWrite().catch(() => {})),
      this.#pipeOut().then(() => this.close()),
    ]);
  }

  /** The server has the headers of a request on this connection. */
  requestStarted(): void {
    this.#active++;
    this.#headerDeadline = Infinity;
  }

  /** A response on this connection is done (sent or failed). */
  requestEnded(): void {
    this.#active--;
    this.#arm();
  }

  /** The connection is a WebSocket now: it has no requests any more. */
  upgraded(): void {
    this.#upgraded = true;
    this.#headerDeadline = Infinity;
  }

  /** Closes the connection if it is past its header deadline, or a write has waited too long. */
  closeIfLate(now: number): void {
    if (now >= this.#headerDeadline || now - this.#sendingSince >= SEND_TIMEOUT_MS) this.close();
  }

  /** Closes both sockets; safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#client);
    closeQuietly(this.#upstream);
  }

  /** Gives the client the header timeout to start its next request, unless one is in progress. */
  #arm(): void {
    if (this.#timeoutMs === 0 || this.#upgraded || this.#active > 0) return;
    this.#headerDeadline = Date.now() + this.#timeoutMs;
  }

  async #pipeIn(): Promise<void> {
    await pipe(this.#client, this.#upstream, REQUEST_BUFFER_BYTES, () => {});
  }

  async #pipeOut(): Promise<void> {
    await pipe(this.#upstream, this.#client, RESPONSE_BUFFER_BYTES, (held) => {
      this.heldForClient = held;
      this.#sendingSince = held > 0 ? Date.now() : Infinity;
    });
  }
}

/**
 * Copies `from` to `to` until `from` ends or either fails; never throws. `onWrite` hears
 * the bytes a write holds when it starts, and 0 when it is done.
 */
async function pipe(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  maxBufferBytes: number,
  onWrite: (held: number) => void,
): Promise<void> {
  let buffer = new Uint8Array(FIRST_BUFFER_BYTES);
  try {
    for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
      onWrite(n);
      await writeAll(to, buffer.subarray(0, n));
      onWrite(0);
      if (n === buffer.length && n < maxBufferBytes) buffer = new Uint8Array(maxBufferBytes);
    }
  } catch {
    // reset by the peer, or closed by the gate: this direction is done
  }
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
