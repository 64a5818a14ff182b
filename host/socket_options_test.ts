import assert from "node:assert/strict";
import {
  limitUnsentBytes,
  socketFds,
  socketInodes,
  TCP_ESTABLISHED,
  TCP_LISTEN,
  tcpSockets,
} from "./socket_options.ts";

Deno.test("socketInodes() picks the sockets of a local port and state from /proc/net/tcp", () => {
  const table = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0",
    "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0",
    "   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0",
  ].join("\n");
  assert.deepEqual(socketInodes(table, 0x1f90, TCP_LISTEN), ["111"]);
  assert.deepEqual(socketInodes(table, 0x1f90, TCP_ESTABLISHED), ["222"]);
  assert.deepEqual(socketInodes(table, 0x1f92, TCP_LISTEN), []);
});

Deno.test("tcpSockets() reads each socket's port, state, queued bytes and inode", () => {
  const table = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 0100007F:1F90 0100007F:D431 01 00010000:00000200 00:00000000 00000000     0        0 222 1 0",
    "",
  ].join("\n");
  assert.deepEqual(tcpSockets(table), [
    { localPort: 0x1f90, state: TCP_ESTABLISHED, queuedBytes: 0x10000 + 0x200, inode: "222" },
  ]);
});

Deno.test("limitUnsentBytes() sets TCP_NOTSENT_LOWAT on a listener; its connections inherit it", async () => {
  const libc = Deno.dlopen(
    "libc.so.6",
    {
      getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
    } as const,
  );
  const notSentLowat = (fd: number) => {
    const value = new Int32Array(1);
    const length = new Uint32Array([4]);
    assert.equal(libc.symbols.getsockopt(fd, 6, /* IPPROTO_TCP */ 25, value, length), 0);
    return value[0];
  };
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  try {
    assert.equal(limitUnsentBytes(port, 12_345), true);
    const [listening] = socketFds(port, TCP_LISTEN);
    assert.equal(notSentLowat(listening), 12_345);
    using _client = await Deno.connect({ hostname: "127.0.0.1", port });
    using _accepted = await listener.accept();
    const [accepted] = socketFds(port, TCP_ESTABLISHED);
    assert.equal(notSentLowat(accepted), 12_345);
    assert.equal(limitUnsentBytes(1, 12_345), false, "no listener of this process on port 1");
  } finally {
    libc.close();
  }
});
