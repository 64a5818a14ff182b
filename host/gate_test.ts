import assert from "node:assert/strict";
import {
  type ConnectionInfo,
  defaultMaxConnections,
  openGate,
  readOpenFilesLimit,
} from "./gate.ts";
import { waitFor } from "../tests/poll.ts";

Deno.test("defaultMaxConnections() leaves descriptors for the rest of the head", () => {
  assert.equal(defaultMaxConnections(1024), 192, "ulimit -n 1024: (1024 - 256) / 4");
  assert.equal(defaultMaxConnections(20_000), 4096);
  assert.equal(defaultMaxConnections(Infinity), 4096);
  assert.equal(defaultMaxConnections(100), 1, "one connection, however low the limit");
});

Deno.test("readOpenFilesLimit() reads this process's soft limit", () => {
  const limit = readOpenFilesLimit();
  assert.ok(limit > 0);
});

Deno.test("openGate() tells a handler what it holds for a client that does not read", async () => {
  const infos: ConnectionInfo[] = [];
  const chunk = new Uint8Array(16 * 1024).fill(120);
  const gate = await openGate({
    hostname: "127.0.0.1",
    port: 0,
    headerTimeoutS: 0,
    maxConnections: 4,
    log: () => {},
    handler: (_request, info) => {
      infos.push(info);
      // An answer without end: it goes as fast as the client takes it.
      const body = new ReadableStream<Uint8Array>({ pull: (out) => out.enqueue(chunk) });
      return Promise.resolve(new Response(body));
    },
  });
  try {
    using client = await Deno.connect({ hostname: "127.0.0.1", port: gate.addr.port });
    await client.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const info = await waitFor("the request to reach the handler", () => Promise.resolve(infos[0]));
    // The client reads nothing: once its socket is full, the gate holds what it read last.
    const held = await waitFor(
      "the gate to hold bytes for the client",
      () => Promise.resolve(info.heldForClient() > 0 && info.heldForClient()),
    );
    assert.ok(held <= 32 * 1024, `the gate holds ${held} bytes: at most one read's worth`);
  } finally {
    await gate.shutdown(0);
  }
});
