/** Slow clients (issue 9, item 4): header timeouts and the connection cap, on a real head. */
import assert from "node:assert/strict";
import { withTimeout } from "./fifos.ts";
import { type RunningHead, startHead } from "./harness.ts";

const encoder = new TextEncoder();

async function connect(head: RunningHead): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(head.url);
  return await Deno.connect({ hostname, port: Number(port) });
}

/** Everything the server sends until it closes the connection. */
async function readUntilClosed(conn: Deno.Conn, what: string, timeoutMs = 20_000) {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  let text = "";
  await withTimeout(
    (async () => {
      try {
        for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
          text += decoder.decode(buffer.subarray(0, n), { stream: true });
        }
      } catch (err) {
        if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
      }
    })(),
    timeoutMs,
    what,
  );
  return text;
}

Deno.test({
  name: "connections that trickle their headers, or idle, are closed after --header-timeout-s",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using head = await startHead({ extraArgs: ["--header-timeout-s", "1"] });
    using silent = await connect(head);
    using partial = await connect(head);
    await partial.write(encoder.encode("GET /-/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: 1\r\n"));
    using trickling = await connect(head);
    await trickling.write(encoder.encode("GET /-/healthz HTTP/1.1\r\n"));
    // A client that keeps sending, but never ends its headers, gets no longer.
    const trickle = (async () => {
      for (let i = 0; i < 1000; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        await trickling.write(encoder.encode(`X-${i}: ${i}\r\n`));
      }
    })().catch(() => {}); // the head closed the socket: what this test waits for
    using keptAlive = await connect(head);
    await keptAlive.write(encoder.encode("GET /-/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));

    // Meanwhile the head serves normal requests.
    const ok = await head.fetch("/-/healthz");
    assert.equal(await ok.text(), "ok");

    assert.equal(await readUntilClosed(silent, "the head to close a silent connection"), "");
    assert.equal(await readUntilClosed(partial, "the head to close a half-sent request"), "");
    assert.equal(await readUntilClosed(trickling, "the head to close a trickling client"), "");
    await trickle;
    // One whole request is answered; then the idle connection gets the same deadline.
    const answered = await readUntilClosed(keptAlive, "the head to close an idle connection");
    assert.match(answered, /^HTTP\/1\.1 200 /);
    assert.match(answered, /\r\n\r\nok$/);
    const after = await head.fetch("/-/healthz");
    assert.equal(await after.text(), "ok");
  },
});

Deno.test({
  name: "past --max-connections new connections get 503 and a log line; the head serves on after",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using head = await startHead({
      extraArgs: ["--max-connections", "5", "--header-timeout-s", "0"],
    });
    const held: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < 5; i++) held.push(await connect(head));
      // The head accepts in order: the sixth comes after the five it holds.
      using extra = await connect(head);
      const refused = await readUntilClosed(extra, "the head to refuse a connection past its cap");
      assert.match(refused, /^HTTP\/1\.1 503 /);
      assert.match(refused, /"code":"UNAVAILABLE"/);
      await head.waitForOutput(/5 connections are open, the most --max-connections allows/);
      for (const conn of held.splice(0)) conn.close();
      await head.waitForOutput(/accepting new ones again/);
      const ok = await head.fetch("/-/healthz");
      assert.equal(await ok.text(), "ok");
    } finally {
      for (const conn of held) conn.close();
    }
  },
});
