import assert from "node:assert/strict";
import { Hono } from "hono";
import { createApp } from "./app.ts";
import { hostName, sessionRoutes } from "./session.ts";

const TOKEN = "t0ken";
const BASE = "http://head.test:8265";

/** A head's app with the session routes and three stand-in routes. */
function testApp(token: string | undefined) {
  const app = createApp({ token, maxBodyBytes: 1024 });
  app.route("/", sessionRoutes(token));
  app.route(
    "/",
    new Hono()
      .get("/api/thing", (c) => c.json({ read: true }))
      .post("/api/thing", (c) => c.json({ changed: true }))
      .get("/api/actors/kill", (c) => c.json({ killed: true })),
  );
  return app;
}

async function login(app: Hono): Promise<string> {
  const res = await app.request(`${BASE}/api/session`, {
    method: "POST",
    headers: { origin: BASE, "content-type": "application/json" },
    body: JSON.stringify({ token: TOKEN }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { token_required: true, authenticated: true });
  const cookie = res.headers.get("set-cookie") ?? "";
  assert.match(cookie, /^jobhead_session_8265=/);
  assert.match(cookie, /; HttpOnly/);
  assert.match(cookie, /; SameSite=Strict/);
  assert.match(cookie, /; Path=\//);
  return cookie.split(";")[0];
}

Deno.test("POST /api/session trades the right token for a session cookie, and only it", async () => {
  const app = testApp(TOKEN);
  const wrong = await app.request(`${BASE}/api/session`, {
    method: "POST",
    headers: { origin: BASE },
    body: JSON.stringify({ token: "guess" }),
  });
  assert.equal(wrong.status, 403, "a wrong token is a 403, as on every route");
  assert.equal(wrong.headers.get("set-cookie"), null);
  assert.equal((await wrong.json()).error.code, "FORBIDDEN");
  const malformed = await app.request(`${BASE}/api/session`, {
    method: "POST",
    headers: { origin: BASE },
    body: "[]",
  });
  assert.equal(malformed.status, 400);
  await malformed.body?.cancel();

  const cookie = await login(app);
  const status = await app.request(`${BASE}/api/session`, { headers: { cookie } });
  assert.deepEqual(await status.json(), { token_required: true, authenticated: true });
  const read = await app.request(`${BASE}/api/thing`, { headers: { cookie } });
  assert.equal(read.status, 200);
  await read.body?.cancel();
  const none = await app.request(`${BASE}/api/thing`);
  assert.equal(none.status, 401);
  await none.body?.cancel();
});

Deno.test("a tampered session cookie, or one signed with another token, is refused", async () => {
  const app = testApp(TOKEN);
  const cookie = await login(app);
  const [name, value] = cookie.split("=");
  const signed = decodeURIComponent(value);
  const forged = `${name}=${
    encodeURIComponent(`${Date.now() + 1e12}${signed.slice(signed.indexOf("."))}`)
  }`;
  const res = await app.request(`${BASE}/api/thing`, { headers: { cookie: forged } });
  assert.equal(res.status, 401);
  await res.body?.cancel();
  const otherHead = testApp("another-token");
  const elsewhere = await otherHead.request(`${BASE}/api/thing`, { headers: { cookie } });
  assert.equal(elsewhere.status, 401, "a cookie signed with another token");
  await elsewhere.body?.cancel();
});

Deno.test("a cookie-authenticated change needs this head's Origin, or X-Requested-With without one", async () => {
  const app = testApp(TOKEN);
  const cookie = await login(app);
  const cases: [Record<string, string>, string, number][] = [
    [{ origin: BASE }, "POST", 200],
    [{ origin: "http://evil.test" }, "POST", 403],
    [{ origin: "http://head.test:9999" }, "POST", 403],
    [{ origin: "null" }, "POST", 403],
    [{}, "POST", 403],
    [{ "x-requested-with": "jobhead" }, "POST", 200],
    [{ "x-requested-with": "jobhead", "sec-fetch-site": "same-site" }, "POST", 403],
    [{}, "GET", 200],
  ];
  for (const [headers, method, expected] of cases) {
    const res = await app.request(`${BASE}/api/thing`, {
      method,
      headers: { cookie, ...headers },
    });
    assert.equal(res.status, expected, `${method} with ${JSON.stringify(headers)}`);
    if (expected === 403) assert.equal((await res.json()).error.code, "FORBIDDEN");
    else await res.body?.cancel();
  }
  const kill = await app.request(`${BASE}/api/actors/kill`, { headers: { cookie } });
  assert.equal(kill.status, 403, "Ray's actor kill is a GET that changes state");
  await kill.body?.cancel();
  const socket = await app.request(`${BASE}/api/thing`, {
    headers: { cookie, upgrade: "websocket", origin: "http://evil.test" },
  });
  assert.equal(socket.status, 403, "a cross-origin WebSocket upgrade");
  await socket.body?.cancel();
});

Deno.test("bearer tokens and clients without Origin are not held to the Origin check", async () => {
  const app = testApp(TOKEN);
  const bearer = await app.request(`${BASE}/api/thing`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, origin: "http://elsewhere.test" },
  });
  assert.equal(bearer.status, 200);
  await bearer.body?.cancel();

  const open = testApp(undefined);
  const LOCAL = "http://127.0.0.1:8265"; // a head without a token answers loopback names only
  const curl = await open.request(`${LOCAL}/api/thing`, { method: "POST" });
  assert.equal(curl.status, 200);
  await curl.body?.cancel();
  const crossSite = await open.request(`${LOCAL}/api/thing`, {
    method: "POST",
    headers: { origin: "https://evil.test" },
  });
  assert.equal(crossSite.status, 403, "without a token, a foreign page still cannot change state");
  await crossSite.body?.cancel();
  const image = await open.request(`${LOCAL}/api/actors/kill`, {
    headers: { "sec-fetch-site": "cross-site" },
  });
  assert.equal(image.status, 403);
  await image.body?.cancel();
  const status = await open.request(`${LOCAL}/api/session`);
  assert.deepEqual(await status.json(), { token_required: false, authenticated: true });
});

Deno.test("a head without a token refuses requests addressed to other names (DNS rebinding)", async () => {
  const open = testApp(undefined);
  for (const host of ["127.0.0.1:8265", "localhost:8265", "[::1]:8265"]) {
    const res = await open.request(`http://${host}/api/thing`);
    assert.equal(res.status, 200, host);
    await res.body?.cancel();
  }
  const rebound = await open.request("http://attacker.test:8265/api/thing");
  assert.equal(rebound.status, 403);
  assert.match((await rebound.json()).error.message, /not a loopback name/);
  // Names that only start like a loopback address, with an Origin of the same name.
  const lookalikes = ["127.evil.example:8265", "127.0.0.1.evil.example", "127.0.0.1:8265:1"];
  for (const host of [...lookalikes, "[::1]x:8265", "127.0.0.1:http"]) {
    const res = await open.request("http://127.0.0.1:8265/api/thing", {
      method: "POST",
      headers: { host, origin: `http://${host}` },
    });
    assert.equal(res.status, 403, host);
    assert.equal((await res.json()).error.code, "FORBIDDEN");
  }
  const withToken = await testApp(TOKEN).request("http://head.test:8265/api/thing", {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(withToken.status, 200, "a head with a token may be reached by any name");
  await withToken.body?.cancel();
});

Deno.test("hostName() takes the name from a Host header, and nothing from a malformed one", () => {
  assert.equal(hostName("127.0.0.1"), "127.0.0.1");
  assert.equal(hostName("127.0.0.1:8265"), "127.0.0.1");
  assert.equal(hostName("[::1]:8265"), "[::1]");
  assert.equal(hostName("localhost"), "localhost");
  assert.equal(hostName("127.0.0.1:8265:1"), undefined);
  assert.equal(hostName("127.0.0.1:http"), undefined);
  assert.equal(hostName("[::1]x"), undefined);
});
