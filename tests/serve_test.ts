/** End to end: a serve deployment of HTTP replicas through crashes, rollouts, scaling and restarts. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { isAlive, processesWithEnv, type RunningHead, startHead, TEST_STORE } from "./harness.ts";
import { waitFor } from "./poll.ts";
import { waitForEvent } from "./events.ts";

/** The interpreter itself, not a version manager's shim, so a replica is one process. */
const PYTHON = new TextDecoder().decode(
  (await new Deno.Command("python3", { args: ["-c", "import sys; print(sys.executable)"] })
    .output()).stdout,
).trim();
const SERVER = `exec ${PYTHON} -m http.server "$PORT" --bind 127.0.0.1`;

/** A deployment name no other test run on this machine uses: processes are found by it. */
function uniqueName(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

interface Replica {
  actor_id: string;
  replica_tag: string;
  version: string;
  state: string;
  pid: number;
  port: number;
  num_restarts: number;
  ready: boolean;
  node: string | null;
}

async function deployment(head: RunningHead, name: string) {
  const { status, body } = await head.json(`/api/serve/deployments/${name}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body as { status: string; message: string; replicas: Replica[] };
}

/**
 * Waits until `name` is HEALTHY with `count` ready replicas of `version`, and returns them.
 * Polled, as are the waits built on it: a replica turning ready is announced only when it
 * changes the deployment's status.
 */
function healthy(head: RunningHead, name: string, count: number, version: string) {
  return waitFor(`${count} ready replicas of ${name} ${version}`, async () => {
    const d = await deployment(head, name);
    const ok = d.status === "HEALTHY" && d.replicas.length === count &&
      d.replicas.every((r) => r.version === version && r.state === "ALIVE" && r.ready);
    return ok && d.replicas;
  });
}

async function assertServes(replicas: Replica[]): Promise<void> {
  for (const { port } of replicas) {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    await res.body?.cancel();
    assert.equal(res.status, 200, `port ${port}`);
  }
}

Deno.test("a deployment keeps 3 replicas alive, rolls, scales, survives a head restart and is deleted", async () => {
  await using first = await startHead();
  const web = uniqueName("web");
  const spec = {
    name: web,
    entrypoint: SERVER,
    num_replicas: 3,
    version: "v1",
    health_check: { http_path: "/", period_s: 0.5 },
    restart_policy: { max_restarts: 5, initial_backoff_s: 0.05, max_backoff_s: 0.2 },
    graceful_shutdown_timeout_s: 2,
  };
  const apply = (head: RunningHead, changes: Record<string, unknown>) =>
    head.json("/api/serve/deployments", { method: "POST", body: { ...spec, ...changes } });
  assert.equal((await apply(first, {})).status, 200);
  const v1 = await healthy(first, web, 3, "v1");
  await assertServes(v1);
  assert.equal(new Set(v1.map((r) => r.port)).size, 3);

  const actors = (await first.json(`/api/actors?deployment=${web}&state=ALIVE`)).body;
  assert.equal(actors.length, 3);
  for (const actor of actors) {
    assert.equal(actor.class_name, "ServeReplica");
    const replica = v1.find((r) => r.actor_id === actor.actor_id)!;
    assert.deepEqual(actor.metadata.serve, {
      replica_tag: replica.replica_tag,
      deployment_name: web,
      version: "v1",
      // On PostgreSQL the head is a node of a cluster: the replica's node is named.
      ...(TEST_STORE === "postgres" && { node: replica.node }),
    });
    assert.equal(replica.node, TEST_STORE === "postgres" ? replica.node ?? "missing" : null);
  }
  const { snapshot } = (await first.json("/api/snapshot")).body.data;
  const key = createHash("sha1").update(web).digest("hex");
  assert.equal(snapshot.deployments[key].name, web);
  assert.equal(snapshot.actors[v1[0].actor_id].metadata.serve.deployment_name, web);

  // A crash: the replica is restarted in place, as the same actor.
  const crashed = v1[0];
  const [server] = await serverPids(crashed.replica_tag);
  Deno.kill(server, "SIGKILL");
  await waitFor("the crashed replica to be restarted", async () => {
    const replicas = await healthy(first, web, 3, "v1").catch(() => undefined);
    return replicas?.find((r) => r.actor_id === crashed.actor_id)?.num_restarts === 1;
  });

  // Killed for good through the actors API: a new replica takes its place.
  const killed = v1[1];
  const kill = await first.json(
    `/api/actors/kill?actor_id=${killed.actor_id}&force_kill=true&no_restart=true`,
  );
  assert.equal(kill.body.result, true, JSON.stringify(kill.body));
  await waitFor("a replacement replica", async () => {
    const replicas = await healthy(first, web, 3, "v1").catch(() => undefined);
    return replicas?.every((r) => r.actor_id !== killed.actor_id);
  });
  assert.equal((await first.json(`/api/actors/${killed.actor_id}`)).body.state, "DEAD");

  // A new version replaces the replicas one at a time: never fewer than 3 ready, nor more than 4.
  const before = (await deployment(first, web)).replicas;
  assert.equal((await apply(first, { version: "v2" })).status, 200);
  let [fewest, most] = [Infinity, 0];
  // Polled (see healthy()), which also samples how many replicas were ready on the way.
  const v2 = await waitFor("the rollout to v2", async () => {
    const d = await deployment(first, web);
    const ready = d.replicas.filter((r) => r.state === "ALIVE" && r.ready).length;
    [fewest, most] = [Math.min(fewest, ready), Math.max(most, ready)];
    const done = d.status === "HEALTHY" && d.replicas.length === 3 &&
      d.replicas.every((r) => r.version === "v2" && r.ready);
    return done && d.replicas;
  });
  assert.ok(fewest >= 3 && most <= 4, `ready replicas ranged over ${fewest}-${most}`);
  await assertServes(v2);
  for (const old of before) assert.equal(await isAlive(old.pid), false, `v1 ${old.replica_tag}`);

  // Scale down to one.
  assert.equal((await apply(first, { version: "v2", num_replicas: 1 })).status, 200);
  const [survivor] = await healthy(first, web, 1, "v2");
  for (const r of v2.filter((r) => r.actor_id !== survivor.actor_id)) {
    // Polled: nothing announces that a process is gone.
    await waitFor(`${r.replica_tag} to stop`, async () => !(await isAlive(r.pid)));
  }

  // The head goes away and comes back: the replica runs on and is adopted again.
  await first.kill("SIGTERM");
  assert.ok(await isAlive(survivor.pid), "the replica outlived its head");
  await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
  const [adopted] = await healthy(second, web, 1, "v2");
  assert.equal(adopted.actor_id, survivor.actor_id);
  assert.equal(adopted.pid, survivor.pid);
  await assertServes([adopted]);
  // Still supervised: a kill restarts it under the new head.
  await second.json(`/api/actors/kill?actor_id=${adopted.actor_id}&force_kill=true`);
  await waitFor("the adopted replica to be restarted", async () => {
    const replicas = await healthy(second, web, 1, "v2").catch(() => undefined);
    return replicas?.[0].num_restarts === adopted.num_restarts + 1;
  });

  const deleted = await second.json(`/api/serve/deployments/${web}`, { method: "DELETE" });
  assert.deepEqual(deleted.body, { deleted: true });
  assert.equal((await second.json(`/api/serve/deployments/${web}`)).status, 404);
  assert.deepEqual(await processesWithEnv("JOBHEAD_DEPLOYMENT", web), []);
  assert.deepEqual((await second.json(`/api/actors?deployment=${web}&state=ALIVE`)).body, []);
});

/** Pids of the HTTP server process of a replica (not its supervisor shells). */
async function serverPids(replicaTag: string): Promise<number[]> {
  const pids = [];
  for (const pid of await processesWithEnv("JOBHEAD_REPLICA_TAG", replicaTag)) {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmdline.split("\0")[0] === PYTHON) pids.push(pid);
  }
  assert.equal(pids.length, 1, `server processes of ${replicaTag}: ${pids}`);
  return pids;
}

Deno.test("a replica that keeps crashing is left DEAD until another spec is applied", async () => {
  await using head = await startHead();
  const flaky = uniqueName("flaky");
  const spec = {
    name: flaky,
    entrypoint: "echo crashing; exit 3",
    restart_policy: { max_restarts: 2, initial_backoff_s: 0.01 },
  };
  const post = (body: Record<string, unknown>) =>
    head.json("/api/serve/deployments", { method: "POST", body });
  assert.equal((await post(spec)).status, 200);
  const dead = await waitForEvent(head, "the replica to use up its restarts", async () => {
    const d = await deployment(head, flaky);
    return d.status === "UNHEALTHY" && d.replicas[0]?.state === "DEAD" && d;
  }, { types: ["deployment", "actor"] });
  assert.equal(dead.replicas.length, 1, "a replica out of restarts is not replaced");
  assert.equal(dead.replicas[0].num_restarts, 2);
  assert.equal(dead.replicas[0].ready, false, "a DEAD replica is not ready");
  assert.match(dead.message, /it exited with code 3; not restarted: it was restarted 2 times/);
  const { actor_id } = dead.replicas[0];
  const logs = await head.json(`/api/serve/deployments/${flaky}/replicas/${actor_id}/logs`);
  assert.equal(logs.body.logs, "crashing\n".repeat(3));

  // A command health check, and a spec that works: the dead replica makes way.
  const fixed = await post({
    ...spec,
    entrypoint: "exec sleep 1000",
    health_check: { command: `test -n "$PORT" && test "$JOBHEAD_DEPLOYMENT" = ${flaky}` },
  });
  assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
  const [replica] = await healthy(head, flaky, 1, fixed.body.spec.version);
  assert.notEqual(replica.actor_id, actor_id);
  assert.equal((await head.json(`/api/actors/${actor_id}`)).body.state, "DEAD");
  assert.deepEqual(
    (await head.json(`/api/serve/deployments/${flaky}`, { method: "DELETE" })).body,
    { deleted: true },
  );
  assert.deepEqual(await processesWithEnv("JOBHEAD_DEPLOYMENT", flaky), []);
});

Deno.test("a replica without a health check is not ready after a restart until it stays up", async () => {
  await using head = await startHead();
  const dir = await Deno.makeTempDir({ prefix: "jobhead-crash-once-" });
  try {
    const name = uniqueName("once");
    const applied = await head.json("/api/serve/deployments", {
      method: "POST",
      body: {
        name,
        // Crashes on its first run, then stays up.
        entrypoint: `if [ -e "$MARK" ]; then exec sleep 1000; fi; touch "$MARK"; exit 1`,
        runtime_env: { env_vars: { MARK: `${dir}/ran` } },
        restart_policy: { initial_backoff_s: 0.01, min_uptime_s: 600 },
      },
    });
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const d = await waitForEvent(head, "the replica to run again after its crash", async () => {
      const d = await deployment(head, name);
      const [r] = d.replicas;
      return r?.state === "ALIVE" && r.num_restarts === 1 && d;
    }, { types: ["actor"] });
    assert.equal(d.replicas[0].ready, false, "not ready until it stays up min_uptime_s");
    assert.equal(d.status, "UNHEALTHY", d.message);
    assert.match(d.message, /runs again after restart 1, not ready yet/);
    await head.json(`/api/serve/deployments/${name}`, { method: "DELETE" });
    assert.deepEqual(await processesWithEnv("JOBHEAD_DEPLOYMENT", name), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
