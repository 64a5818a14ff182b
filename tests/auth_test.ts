/** End to end: listening beyond loopback needs a token, and a token guards every API route. */
import assert from "node:assert/strict";
import { HANG_GUARD_MS, withTimeout } from "./fifos.ts";
import { type RunningHead, startHead, waitForStatus } from "./harness.ts";
import { assertError, rawUpgrade, submitJob, tailLog } from "./helpers.ts";

const TOKEN = "s3cret-token";

Deno.test("a non-loopback host without a token refuses to start and says how to set one", async () => {
  await startHead({ host: "0.0.0.0" }).then(
    async (head) => {
      await head[Symbol.asyncDispose]();
      assert.fail("the head started on 0.0.0.0 without a token");
    },
    (err: Error) => {
      assert.match(err.message, /exited with code [1-9]/);
      assert.match(err.message, /token/i);
      assert.match(err.message, /--token|JOBHEAD_AUTH_TOKEN/);
    },
  );
});

Deno.test("with --token every /api route and the log tail need the bearer token", async () => {
  await using head = await startHead({ token: TOKEN });
  const id = await submitJob(head, { entrypoint: "echo guarded", submission_id: "guarded" });
  await waitForStatus(head, id, ["SUCCEEDED"]);

  const routes: [string, string, string?][] = [
    ["GET", "/api/version"],
    ["GET", "/api/jobs/"],
    ["POST", "/api/jobs/", JSON.stringify({ entrypoint: "true" })],
    ["POST", "/api/jobs", JSON.stringify({ entrypoint: "true" })],
    ["GET", `/api/jobs/${id}`],
    ["GET", `/api/jobs/${id}/logs`],
    ["POST", `/api/jobs/${id}/stop`],
    ["DELETE", `/api/jobs/${id}`],
    ["GET", "/api/jobs/unknown-job"],
    ["GET", "/api/snapshot"],
  ];
  // No token at all is a 401; a token that is wrong is a 403 (as Ray's head answers).
  const denied: [Record<string, string>, number, string][] = [
    [{}, 401, "UNAUTHORIZED"],
    [{ authorization: "Bearer wrong" }, 403, "FORBIDDEN"],
    [{ authorization: TOKEN }, 403, "FORBIDDEN"],
    [{ authorization: `Basic ${btoa(`user:${TOKEN}`)}` }, 403, "FORBIDDEN"],
    [{ "x-ray-authorization": "Bearer wrong" }, 403, "FORBIDDEN"],
  ];
  for (const [method, path, body] of routes) {
    for (const [headers, status, code] of denied) {
      const res = await fetch(head.url + path, {
        method,
        headers: { "content-type": "application/json", ...headers },
        body,
      });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      try {
        assertError({ status: res.status, body: parsed }, status, code);
      } catch (err) {
        throw new Error(
          `${method} ${path} with ${JSON.stringify(headers)}: ${(err as Error).message}`,
        );
      }
    }
  }
  assert.equal((await head.json(`/api/jobs/${id}`)).body.status, "SUCCEEDED", "nothing changed");
  assert.equal((await head.json("/api/jobs/")).body.length, 1, "no job was created");

  const viaRayHeader = await fetch(`${head.url}/api/jobs/${id}`, {
    headers: { "x-ray-authorization": `Bearer ${TOKEN}` },
  });
  assert.equal(viaRayHeader.status, 200);
  assert.equal((await viaRayHeader.json()).submission_id, id);
  assert.equal((await head.json("/api/version")).status, 200);

  const noToken = await rawUpgrade(head, `/api/jobs/${id}/logs/tail`);
  assert.equal(noToken.status, 401);
  const wrongToken = await rawUpgrade(head, `/api/jobs/${id}/logs/tail`, {
    Authorization: "Bearer wrong",
  });
  assert.equal(wrongToken.status, 403);
  const tail = await tailLog(head, id);
  assert.equal(tail.code, 1000);
  assert.equal(tail.text, "guarded\n");
  const rayTail = await tailLog(head, id, {
    headers: { "x-ray-authorization": `Bearer ${TOKEN}` },
  });
  assert.equal(rayTail.text, "guarded\n");

  const deleted = await head.json(`/api/jobs/${id}`, { method: "DELETE" });
  assert.equal(deleted.status, 200);
});

Deno.test("a non-loopback head with a token from JOBHEAD_AUTH_TOKEN starts and checks it", async () => {
  await using head = await startHead({ host: "0.0.0.0", env: { JOBHEAD_AUTH_TOKEN: TOKEN } });
  assertError(await head.json("/api/version"), 401, "UNAUTHORIZED");
  const ok = await head.json("/api/version", { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(ok.status, 200);
});

Deno.test("--token-file supplies the token", async () => {
  const file = await Deno.makeTempFile({ prefix: "jobhead-token-" });
  try {
    await Deno.writeTextFile(file, `${TOKEN}\n`);
    await using head = await startHead({ extraArgs: ["--token-file", file] });
    assertError(await head.json("/api/jobs/"), 401, "UNAUTHORIZED");
    const ok = await head.json("/api/jobs/", { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
  } finally {
    await Deno.remove(file);
  }
});

/** Sends one HTTP/1.1 request over a raw socket, so the test chooses the Host header. */
async function rawRequest(
  head: RunningHead,
  request: { method: string; path: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(head.url);
  using conn = await Deno.connect({ hostname, port: Number(port) });
  const body = request.body ?? "";
  const lines = [
    `${request.method} ${request.path} HTTP/1.1`,
    ...Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${new TextEncoder().encode(body).length}`,
    "Connection: close",
    "",
    "",
  ].join("\r\n");
  await conn.write(new TextEncoder().encode(lines + body));
  const decoder = new TextDecoder();
  const buf = new Uint8Array(16 * 1024);
  let text = "";
  await withTimeout(
    (async () => {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        text += decoder.decode(buf.subarray(0, n), { stream: true });
      }
    })(),
    HANG_GUARD_MS,
    `an answer to ${request.method} ${request.path}`,
  );
  const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
  assert.ok(m, `no status line in ${JSON.stringify(text)}`);
  return { status: Number(m[1]), body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

Deno.test("a head without a token refuses a rebound name that starts like a loopback address", async () => {
  await using head = await startHead();
  const port = new URL(head.url).port;
  const submit = JSON.stringify({ entrypoint: "echo rebound", submission_id: "rebound" });
  for (
    const name of ["127.evil.example", "127.0.0.1.evil.example", "127.0.0.1evil", "localhost.evil"]
  ) {
    const host = `${name}:${port}`;
    const res = await rawRequest(head, {
      method: "POST",
      path: "/api/jobs/",
      headers: { Host: host, Origin: `http://${host}`, "Content-Type": "application/json" },
      body: submit,
    });
    assert.equal(res.status, 403, `Host: ${host} answered ${res.status}: ${res.body}`);
    assert.match(res.body, /"FORBIDDEN"/);
  }
  assert.deepEqual((await head.json("/api/jobs/")).body, [], "no job was created");
  const loopback = `127.0.0.2:${port}`;
  const ok = await rawRequest(head, {
    method: "GET",
    path: "/api/jobs/",
    headers: { Host: loopback, Origin: `http://${loopback}` },
  });
  assert.equal(ok.status, 200, "any 127.0.0.0/8 literal is loopback");
});
