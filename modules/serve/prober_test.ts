import assert from "node:assert/strict";
import { HealthCheck } from "../../storage/serve.ts";
import { probe, type ProbeTarget, watchHealth } from "./prober.ts";

/** A replica stand-in: answers `GET /` with whatever status `status` holds now. */
function replicaServer() {
  let requested = Promise.withResolvers<void>();
  const state = {
    status: 200,
    /** Resolves when the next request arrives (it is answered right after). */
    nextRequest: () => requested.promise,
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    requested.resolve();
    requested = Promise.withResolvers();
    const path = new URL(req.url).pathname;
    if (path === "/moved") return new Response(null, { status: 302, headers: { location: "/" } });
    return new Response(null, { status: path === "/" ? state.status : 404 });
  });
  const target: ProbeTarget = { port: server.addr.port, env: {} };
  return Object.assign(state, { target, [Symbol.asyncDispose]: () => server.shutdown() });
}

const httpCheck = (changes: Partial<HealthCheck> = {}): HealthCheck =>
  HealthCheck.parse({ http_path: "/", period_s: 0.01, ...changes });
const commandCheck = (command: string, changes: Partial<HealthCheck> = {}): HealthCheck =>
  HealthCheck.parse({ command, ...changes });
const never = new AbortController().signal;

Deno.test({
  name: "probe() passes an HTTP check on 2xx and 3xx, and fails it on 4xx, 5xx and no answer",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using replica = replicaServer();
    assert.equal(await probe(httpCheck(), replica.target, never), true);
    assert.equal(await probe(httpCheck({ http_path: "/moved" }), replica.target, never), true);
    assert.equal(await probe(httpCheck({ http_path: "/nope" }), replica.target, never), false);
    replica.status = 503;
    assert.equal(await probe(httpCheck(), replica.target, never), false);
    // A replica that takes the connection and never answers fails at the check's timeout.
    using silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = silent.accept();
    const mute = { port: silent.addr.port, env: {} };
    assert.equal(await probe(httpCheck({ timeout_s: 0.05 }), mute, never), false);
    (await accepted).close();
    // Nothing listens on a port just freed.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    listener.close();
    const closed = { port: (listener.addr as Deno.NetAddr).port, env: {} };
    assert.equal(await probe(httpCheck(), closed, never), false);
  },
});

Deno.test({
  name: "probe() runs a command check in the replica's directory and environment",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "jobhead-probe-" }));
    try {
      const target = { port: 1, cwd: dir, env: { PORT: "1234" } };
      const check = commandCheck(`test "$PORT" = 1234 && test "$(pwd)" = '${dir}'`);
      assert.equal(await probe(check, target, never), true);
      assert.equal(await probe(commandCheck("exit 1"), target, never), false);
      // A command that outlives its timeout is killed and counts as a failure.
      const slow = commandCheck("exec sleep 30", { timeout_s: 0.05 });
      assert.equal(await probe(slow, target, never), false);
      // So does one whose prober stops.
      const stopped = new AbortController();
      const pending = probe(commandCheck("exec sleep 30"), target, stopped.signal);
      stopped.abort();
      assert.equal(await pending, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Runs `watchHealth()` on `replica`; its calls become promises a test awaits. */
function watch(
  replica: { target: ProbeTarget },
  check: () => HealthCheck | null,
  options: { ready?: boolean } = {},
) {
  const life = new AbortController();
  const readies: PromiseWithResolvers<void>[] = [Promise.withResolvers()];
  const unhealthy = Promise.withResolvers<string>();
  const done = watchHealth({
    check,
    target: () => replica.target,
    ready: options.ready,
    onReady() {
      readies.at(-1)!.resolve();
      readies.push(Promise.withResolvers());
    },
    onUnhealthy: (why) => unhealthy.resolve(why),
  }, life.signal);
  return {
    ready: () => readies.at(-1)!.promise,
    readyCount: () => readies.length - 1,
    unhealthy: unhealthy.promise,
    done,
    stop: () => life.abort(),
  };
}

Deno.test({
  name: "watchHealth() reports ready once, then unhealthy after failure_threshold failures",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using replica = replicaServer();
    replica.status = 503;
    const check = httpCheck({ failure_threshold: 2 });
    const watcher = watch(replica, () => check);
    await replica.nextRequest(); // a failure before it gets ready
    replica.status = 200;
    await watcher.ready();
    for (let i = 0; i < 3; i++) await replica.nextRequest(); // more passes
    replica.status = 500;
    assert.equal(await watcher.unhealthy, "its health check failed 2 times in a row");
    await watcher.done; // it ends by itself once it has reported
    assert.equal(watcher.readyCount(), 1, "ready is reported once per run");
  },
});

Deno.test({
  name: "watchHealth() stops a replica that never passes within startup_timeout_s",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using replica = replicaServer();
    replica.status = 500;
    const watcher = watch(replica, () => httpCheck({ startup_timeout_s: 0.2 }));
    assert.equal(
      await watcher.unhealthy,
      "it did not pass its health check within 0.2 s of starting",
    );
    await watcher.done;
    assert.equal(watcher.readyCount(), 0);
  },
});

Deno.test({
  name: "watchHealth() of an adopted replica only has it stay healthy; a dropped check readies it",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using replica = replicaServer();
    replica.status = 500;
    const strict = httpCheck({ failure_threshold: 1, startup_timeout_s: 3600 });
    const adopted = watch(replica, () => strict, { ready: true });
    assert.equal(await adopted.unhealthy, "its health check failed 1 times in a row");
    await adopted.done;
    assert.equal(adopted.readyCount(), 0, "it was ready already");

    let check: HealthCheck | null = httpCheck();
    const dropped = watch(replica, () => check);
    check = null; // a new spec without a health check
    await dropped.ready();
    await dropped.done;
  },
});

Deno.test({
  name: "watchHealth() ends, silent, when its replica's run ends",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using replica = replicaServer();
    replica.status = 500;
    const watcher = watch(replica, () => httpCheck({ startup_timeout_s: 3600 }));
    await replica.nextRequest();
    watcher.stop();
    await watcher.done;
    assert.equal(watcher.readyCount(), 0);
    const quiet = await Promise.race([watcher.unhealthy, Promise.resolve("quiet")]);
    assert.equal(quiet, "quiet");
  },
});
