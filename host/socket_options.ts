/**
 * A kernel socket option that Deno does not expose: TCP_NOTSENT_LOWAT on a listening
 * socket, which every connection it accepts inherits. Deno gives no descriptor for a
 * listener, so it is found through /proc (the socket listening on the port, among this
 * process's descriptors) and the option is set through libc.
 */

/** `<netinet/tcp.h>` */
const IPPROTO_TCP = 6;
const TCP_NOTSENT_LOWAT = 25;
/** Socket states in /proc/net/tcp (`include/net/tcp_states.h`). */
export const TCP_ESTABLISHED = "01";
export const TCP_LISTEN = "0A";

/**
 * Limits how many bytes each connection accepted on `port` (by a listener of this
 * process) may hold unsent in the kernel: a write waits once that many are queued. The
 * kernel otherwise lets a socket whose peer does not read queue megabytes (its send
 * buffer grows to `net.ipv4.tcp_wmem`'s maximum). Returns false where it could not be set
 * (no libc through FFI, no /proc, no such listener).
 */
export function limitUnsentBytes(port: number, bytes: number): boolean {
  const fds = socketFds(port, TCP_LISTEN);
  if (fds.length === 0) return false;
  let libc;
  try {
    libc = Deno.dlopen(
      "libc.so.6",
      {
        setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
      } as const,
    );
  } catch {
    return false; // no FFI (permissions, or no glibc)
  }
  try {
    const value = new Int32Array([bytes]);
    return fds.every((fd) =>
      libc.symbols.setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, value, value.byteLength) === 0
    );
  } finally {
    libc.close();
  }
}

/** This process's descriptors of TCP sockets on local port `port` in state `state`. */
export function socketFds(port: number, state: string): number[] {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const inode of socketInodes(readOrEmpty(table), port, state)) inodes.add(inode);
  }
  if (inodes.size === 0) return [];
  const fds: number[] = [];
  for (const [inode, fd] of socketDescriptors("self")) if (inodes.has(inode)) fds.push(fd);
  return fds;
}

/** The sockets among the descriptors of process `pid`: each socket's inode, and its descriptor. */
export function socketDescriptors(pid: number | "self"): Map<string, number> {
  const sockets = new Map<string, number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
    } catch {
      continue; // closed meanwhile
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined) sockets.set(inode, Number(entry.name));
  }
  return sockets;
}

/** One socket of a /proc/net/tcp(6) table. */
export interface TcpSocket {
  localPort: number;
  /** As the table writes it: TCP_LISTEN, TCP_ESTABLISHED, … */
  state: string;
  /** Bytes queued in the kernel: unsent, and received but not read. */
  queuedBytes: number;
  inode: string;
}

/** The sockets of a /proc/net/tcp(6) table. */
export function tcpSockets(table: string): TcpSocket[] {
  const sockets: TcpSocket[] = [];
  for (const line of table.split("\n").slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [tx, rx] = fields[4].split(":");
    sockets.push({
      localPort: parseInt(fields[1].split(":").at(-1) ?? "", 16),
      state: fields[3],
      queuedBytes: parseInt(tx, 16) + parseInt(rx, 16),
      inode: fields[9],
    });
  }
  return sockets;
}

/** The inodes of the sockets on local port `port` in state `state` in a /proc/net/tcp(6) table. */
export function socketInodes(table: string, port: number, state: string): string[] {
  return tcpSockets(table)
    .filter((socket) => socket.localPort === port && socket.state === state)
    .map((socket) => socket.inode);
}

function readOrEmpty(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}
