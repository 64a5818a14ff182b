/** End to end: operators' modules by path, their failures, --minimal, and the snapshot. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openEvents } from "./events.ts";
import { startHead, waitForStatus } from "./harness.ts";
import { assertError, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";

const EXAMPLE = new URL("../examples/hello_module.ts", import.meta.url).pathname;
const MAIN_TS = new URL("../main.ts", import.meta.url).pathname;

/** Module files that misbehave, each in its own way. */
const FIXTURES: Record<string, string> = {
  "throws_on_start.ts": `import { Hono } from "hono";
export function createModule() {
  return {
    name: "boom",
    minimal: true,
    routes: () => new Hono().get("/api/boom", (c) => c.text("boom")),
    start() { throw new Error("no fuel"); },
    snapshot: () => ({ boom: true }),
  };
}`,
  "throws_on_load.ts": `throw new Error("cannot load me");
export function createModule() { return { name: "never", minimal: true }; }`,
  "same_route.ts": `import { Hono } from "hono";
export function createModule() {
  return { name: "hello2", minimal: true, routes: () => new Hono().get("/api/hello", (c) => c.text("")) };
}`,
  "not_minimal.ts": `import { Hono } from "hono";
export function createModule() {
  return { name: "big", minimal: false, routes: () => new Hono().get("/api/big", (c) => c.text("")) };
}`,
};

Deno.test("an operator's module loaded by path serves its routes and a snapshot section", async () => {
  await using head = await startHead({ extraArgs: ["--module", EXAMPLE] });
  assert.deepEqual((await head.json("/api/hello")).body, { hello: "world", greetings: 1 });
  assert.deepEqual((await head.json("/api/hello")).body, { hello: "world", greetings: 2 });
  assert.deepEqual((await head.json("/api/hello/primes?below=1000")).body, {
    below: 1000,
    primes: 168,
  });
  assertError(await head.json("/api/hello/primes?below=lots"), 400, "BAD_REQUEST", "below");

  const id = await submitJob(head, { entrypoint: "true" });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  // Polled: the module counts the job's event in its own time, and announces nothing; the
  // job's supervisor actor is recorded a moment after the job's events, gathered.
  const snapshot = await waitFor("the hello section to count the job", async () => {
    const { status, body } = await head.json("/api/snapshot");
    assert.equal(status, 200);
    const { hello, actors } = body.data.snapshot;
    return hello.jobs_ended.SUCCEEDED === 1 && actors[`jobsup_${id}`]?.state === "DEAD" && body;
  });
  assert.equal(snapshot.result, true);
  const { hello, jobs, actors, deployments, session_name, version, commit } =
    snapshot.data.snapshot;
  assert.equal(hello.greetings, 2);
  assert.equal(jobs[id].status, "SUCCEEDED");
  assert.equal(actors[`jobsup_${id}`].class_name, "JobSupervisor");
  assert.deepEqual(deployments, {});
  assert.match(session_name, /^session_/);
  assert.equal(typeof version, "string");
  assert.equal(typeof commit, "string");
});

/** An operator's module that owns an actor: it records it at start, ends and removes it on request. */
const OWNS_AN_ACTOR = `import { Hono } from "hono";
export function createModule() {
  let ctx;
  const probe = (state) => ({
    actor_id: "probe_1", class_name: "Probe", name: "probe 1", namespace: "probes", state,
    pid: null, node_id: ctx.info.nodeId, start_time: 1000, end_time: state === "DEAD" ? 2000 : null,
    resources: {}, runtime_env: {}, owner: { kind: "probes", id: "1" }, port: null,
    num_restarts: 0, death_cause: state === "DEAD" ? "done" : null, metadata: {},
  });
  return {
    name: "probes",
    minimal: true,
    routes(context) {
      ctx = context;
      return new Hono()
        .post("/api/probes/1/end", async (c) => c.json(await ctx.actors.record([probe("DEAD")]) ?? {}))
        .delete("/api/probes/1", async (c) => c.json(await ctx.actors.remove(["probe_1"]) ?? {}));
    },
    start: () => ctx.actors.record([probe("ALIVE")]),
  };
}`;

Deno.test("an operator's module owns actors: the actors API serves them, the stream has their changes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-modules-" });
  try {
    const path = join(dir, "owns_an_actor.ts");
    await Deno.writeTextFile(path, OWNS_AN_ACTOR);
    await using head = await startHead({ extraArgs: ["--module", path] });
    await using events = await openEvents(head, ["actor"]);
    const listed = await head.json("/api/actors?class_name=Probe&state=ALIVE");
    assert.deepEqual(
      listed.body.map((a: { actor_id: string; owner: unknown }) => [a.actor_id, a.owner]),
      [["probe_1", { kind: "probes", id: "1" }]],
    );
    // The actors module serves it as it serves its own: no process runs it, so no kill.
    const kill = await head.json("/api/actors/kill?actor_id=probe_1");
    assert.equal(kill.status, 409, JSON.stringify(kill.body));

    assert.equal((await head.json("/api/probes/1/end", { method: "POST" })).status, 200);
    const ended = await events.next((e) => e.event === "actor" && e.data.actor_id === "probe_1");
    assert.equal(ended.data.state, "DEAD");
    assert.equal((await head.json("/api/actors/probe_1")).body.death_cause, "done");
    assert.equal((await head.json("/api/probes/1", { method: "DELETE" })).status, 200);
    await events.next((e) => e.event === "actor-deleted" && e.data.actor_id === "probe_1");
    assert.equal((await head.json("/api/actors/probe_1")).status, 404);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--minimal --skip-broken-modules: modules that fail to load or start, or reuse a route, are skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-modules-" });
  try {
    const paths = Object.entries(FIXTURES).map(([name, text]) => {
      Deno.writeTextFileSync(join(dir, name), text);
      return join(dir, name);
    });
    const extraArgs = ["--minimal", "--skip-broken-modules", EXAMPLE, ...paths].flatMap((p) =>
      p.startsWith("--") ? [p] : ["--module", p]
    );
    await using head = await startHead({ extraArgs });

    assert.equal((await head.json("/api/version")).status, 200);
    assert.equal((await head.json("/api/hello")).status, 200);
    assert.equal((await head.json("/api/actors")).status, 200, "actors is a minimal module");
    for (const path of ["/api/boom", "/api/big", "/api/serve/deployments"]) {
      assertError(await head.json(path), 404, "NOT_FOUND");
    }
    const { body } = await head.json("/api/snapshot");
    assert.deepEqual(Object.keys(body.data.snapshot).sort(), [
      "actors",
      "cluster",
      "commit",
      "hello",
      "jobs",
      "session_name",
      "version",
    ]);

    const { stderr } = head.output();
    for (
      const line of [
        'module "boom" skipped: it failed to start: Error: no fuel',
        `module ${join(dir, "throws_on_load.ts")} skipped: cannot load me`,
        'module "hello2" skipped: its route GET /api/hello is already served by module "hello"',
        'module "big" not loaded: --minimal',
        'module "serve" not loaded: --minimal',
      ]
    ) {
      assert.ok(stderr.includes(line), `stderr lacks ${JSON.stringify(line)}:\n${stderr}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with --log-format json every line the head logs is one JSON object", async () => {
  await using head = await startHead({
    extraArgs: ["--log-format", "json", "--skip-broken-modules", "--module", "/no/such/module.ts"],
  });
  assert.equal((await head.json("/api/version")).status, 200);
  const lines = head.output().stderr.split("\n").filter((line) => line !== "");
  assert.ok(lines.length > 0, "the skipped module is logged");
  for (const line of lines) {
    const entry = JSON.parse(line);
    assert.deepEqual(
      Object.keys(entry).filter((k) => ["time", "level", "module", "message"].includes(k)),
      ["time", "level", "module", "message"],
      line,
    );
  }
  assert.ok(lines.some((line) => line.includes("/no/such/module.ts")), lines.join("\n"));
});

Deno.test("a module that fails to load stops the start with exit 1 naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-modules-" });
  try {
    const path = join(dir, "throws_on_load.ts");
    await Deno.writeTextFile(path, FIXTURES["throws_on_load.ts"]);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        MAIN_TS,
        "start",
        "--port",
        "0",
        "--data-dir",
        join(dir, "d"),
        "--module",
        path,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.equal(new TextDecoder().decode(out.stdout), "", "it never listened");
    assert.match(stderr, new RegExp(`module ${path} failed to load: cannot load me`));
    assert.match(stderr, /--skip-broken-modules/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
