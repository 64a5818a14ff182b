/**
 * Serve deployments in a cluster on PostgreSQL: replicas placed on worker nodes, read
 * and deleted through any head, moved off a node that dies, taken over by another head.
 */
import assert from "node:assert/strict";
import {
  isAlive,
  killProcessesWithEnv,
  processesWithEnv,
  type RunningHead,
  startHead,
} from "./harness.ts";
import { member, restartableNode, waitForNodes } from "./cluster.ts";
import { createTestDatabase } from "./postgres.ts";
import { waitFor } from "./poll.ts";
import { waitForEvent } from "./events.ts";
import { exists } from "./helpers.ts";

/** The interpreter itself, not a version manager's shim, so a replica is one process. */
const PYTHON = new TextDecoder().decode(
  (await new Deno.Command("python3", { args: ["-c", "import sys; print(sys.executable)"] })
    .output()).stdout,
).trim();

interface Replica {
  actor_id: string;
  replica_tag: string;
  state: string;
  pid: number;
  port: number;
  node: string | null;
  ready: boolean;
}

/** A deployment name no other test run on this machine uses: processes are found by it. */
function uniqueName(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Waits until `name` is HEALTHY through `head` with `count` ready replicas, on `nodes` if given. */
function healthy(head: RunningHead, name: string, count: number, nodes?: string[]) {
  return waitFor(`${count} ready replicas of ${name}`, async () => {
    const { status, body } = await head.json(`/api/serve/deployments/${name}`);
    if (status !== 200) return undefined;
    const replicas = body.replicas as Replica[];
    const ok = body.status === "HEALTHY" && replicas.length === count &&
      replicas.every((r) => r.state === "ALIVE" && r.ready) &&
      (!nodes || replicas.every((r) => nodes.includes(r.node!)));
    return ok && replicas;
  }, { timeoutMs: 60_000, intervalMs: 100 });
}

/** Applies `spec` through `head`; the deployment as it answers. */
async function apply(head: RunningHead, spec: Record<string, unknown>) {
  const { status, body } = await head.json("/api/serve/deployments", {
    method: "POST",
    body: spec,
  });
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

/** Waits until `name`, of one replica, has it ALIVE; the replica. */
async function aloneAlive(head: RunningHead, name: string): Promise<Replica> {
  const replicas = await waitFor("the replica alive", async () => {
    const { body } = await head.json(`/api/serve/deployments/${name}`);
    return body.replicas.length === 1 && body.replicas[0].state === "ALIVE" && body.replicas;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  return (replicas as Replica[])[0];
}

Deno.test("serve replicas run on the worker nodes; any head applies, reads, takes over and deletes", async () => {
  const db = await createTestDatabase();
  const first = await startHead(member(db, "h1", { args: ["--no-local-jobs"] }));
  try {
    await first.waitForOutput(/this process schedules the cluster now/);
    await using second = await startHead(member(db, "h2", { args: ["--no-local-jobs"] }));
    await using n1 = await startHead(member(db, "n1", { command: "node" }));
    await using n2 = await startHead(member(db, "n2", { command: "node" }));
    await waitForNodes(second, ["n1", "n2"]);

    // Applied through the head that does not schedule: passed on to the one that does.
    const web = uniqueName("web");
    // Its live updates reach that head's event stream too, and its replicas' actors.
    const seen = new Set<string>();
    const live = waitForEvent(second, `${web} HEALTHY and its actors on h2's event stream`, () => {
      return Promise.resolve(seen.has("HEALTHY") && seen.has("actor ALIVE") || undefined);
    }, {
      types: ["deployment", "actor"],
      concerns: (event, data) => {
        if (event === "deployment" && data.name === web) seen.add(data.status);
        if (event === "actor" && data.owner?.id === web) seen.add(`actor ${data.state}`);
        return true;
      },
    });
    const applied = await apply(second, {
      name: web,
      entrypoint: `echo "serving on $PORT"; exec ${PYTHON} -m http.server "$PORT" --bind 0.0.0.0`,
      num_replicas: 2,
      health_check: { http_path: "/", period_s: 0.5 },
      graceful_shutdown_timeout_s: 2,
    });
    const replicas = await healthy(second, web, 2);
    await live;
    assert.deepEqual(replicas.map((r) => r.node).sort(), ["n1", "n2"], "one on each node");

    // Each replica's log is on its node, and reads the same through either head.
    const nodeOf = (r: Replica) => r.node === "n1" ? n1 : n2;
    for (const replica of replicas) {
      const path = `${nodeOf(replica).dataDir}/serve_logs/${web}/${replica.actor_id}.log`;
      const line = `serving on ${replica.port}\n`;
      assert.ok((await Deno.readTextFile(path)).startsWith(line));
      for (const head of [first, second]) {
        const { status, body } = await head.json(
          `/api/serve/deployments/${web}/replicas/${replica.actor_id}/logs?offset=0&limit=${line.length}`,
        );
        assert.equal(status, 200, JSON.stringify(body));
        assert.equal(body.logs, line);
      }
    }
    assert.equal(await exists(`${first.dataDir}/serve_logs/${web}`), false);
    const actors = (await second.json(`/api/actors?deployment=${web}&state=ALIVE`)).body;
    const nodeIds = new Set(actors.map((a: { node_id: string }) => a.node_id));
    assert.equal(nodeIds.size, 2, "the actors name the nodes they run on");

    // The scheduling head dies: the other takes the deployment over, replicas untouched.
    await first.kill("SIGKILL");
    await second.waitForOutput(/this process schedules the cluster now/);
    const adopted = await healthy(second, web, 2);
    assert.deepEqual(
      adopted.map((r) => [r.actor_id, r.pid]).sort(),
      replicas.map((r) => [r.actor_id, r.pid]).sort(),
    );
    await apply(second, { ...applied.spec, num_replicas: 3 });
    const three = await healthy(second, web, 3);
    // Passing requests on made no noise in the head's log (Deno warns once request.signal is read).
    assert.doesNotMatch(second.output().stderr, /legacy/i);
    assert.deepEqual(new Set(three.map((r) => r.node)), new Set(["n1", "n2"]));

    // Deleted: every replica's processes are gone, and its logs on both nodes.
    const deleted = await second.json(`/api/serve/deployments/${web}`, { method: "DELETE" });
    assert.deepEqual(deleted.body, { deleted: true });
    assert.deepEqual(await processesWithEnv("JOBHEAD_DEPLOYMENT", web), []);
    await waitFor("the replica logs removed on the nodes", async () => {
      const left = await exists(`${n1.dataDir}/serve_logs/${web}`) ||
        await exists(`${n2.dataDir}/serve_logs/${web}`);
      return !left || undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
  } finally {
    await first[Symbol.asyncDispose]();
  }
});

Deno.test("a node SIGKILLed loses its serve replicas to the other node; back, it kills them", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(
    member(db, "head", { args: ["--no-local-jobs", "--node-timeout-s", "2"] }),
  );
  await using n1 = await restartableNode(db, "n1");
  const first = await n1.start();
  await using _n2 = await startHead(member(db, "n2", { command: "node" }));
  try {
    await waitForNodes(head, ["n1", "n2"]);
    const web = uniqueName("web");
    await apply(head, {
      name: web,
      entrypoint: "exec sleep 600",
      num_replicas: 2,
      // A command check runs on the replica's node, with its environment.
      health_check: { command: `test "$JOBHEAD_DEPLOYMENT" = ${web}`, period_s: 0.5 },
    });
    const replicas = await healthy(head, web, 2);
    const lost = replicas.find((r) => r.node === "n1")!;
    assert.ok(lost, JSON.stringify(replicas));
    const lostPids = await processesWithEnv("JOBHEAD_REPLICA_TAG", lost.replica_tag);
    assert.notDeepEqual(lostPids, []);

    await first.kill("SIGKILL");
    const moved = await healthy(head, web, 2, ["n2"]);
    assert.ok(!moved.some((r) => r.actor_id === lost.actor_id));
    const dead = (await head.json(`/api/actors/${lost.actor_id}`)).body;
    assert.equal(dead.detail?.state ?? dead.state, "DEAD", JSON.stringify(dead));
    assert.match(
      JSON.stringify(dead),
      /moved: its node \\"n1\\" sent no heartbeat for [\d.]+ s and was declared DEAD/,
    );
    // Its processes outlived the node (they run in sessions of their own).
    assert.ok((await Promise.all(lostPids.map(isAlive))).some(Boolean));

    // Back, the node kills the replica that was moved off it before it serves.
    await using _back = await n1.start();
    assert.deepEqual(await processesWithEnv("JOBHEAD_REPLICA_TAG", lost.replica_tag), []);
    await waitForNodes(head, ["n1"]);
    assert.equal((await head.json(`/api/serve/deployments/${web}`)).body.status, "HEALTHY");
    assert.deepEqual(
      (await head.json(`/api/serve/deployments/${web}`, { method: "DELETE" })).body,
      {
        deleted: true,
      },
    );
    assert.deepEqual(await processesWithEnv("JOBHEAD_DEPLOYMENT", web), []);
  } finally {
    await first[Symbol.asyncDispose]();
  }
});

Deno.test("a node restarted gracefully keeps its serve replicas; their ends still reach the controller", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(member(db, "head", { args: ["--no-local-jobs"] }));
  await using n1 = await restartableNode(db, "n1");
  const first = await n1.start();
  await waitForNodes(head, ["n1"]);
  const web = uniqueName("web");
  await apply(head, {
    name: web,
    entrypoint: "exec sleep 600",
    restart_policy: { max_restarts: 3, initial_backoff_s: 0.05 },
  });
  const replica = await aloneAlive(head, web);

  await first.kill("SIGTERM");
  await using _back = await n1.start();
  // Still the same process; its end, now, reaches the controller through the new agent.
  const pids = await processesWithEnv("JOBHEAD_REPLICA_TAG", replica.replica_tag);
  assert.ok(pids.includes(replica.pid), `${replica.pid} not in ${pids}`);
  Deno.kill(replica.pid, "SIGKILL");
  const restarted = await waitFor("the replica restarted", async () => {
    const { body } = await head.json(`/api/serve/deployments/${web}`);
    const [r] = body.replicas as (Replica & { num_restarts: number })[];
    return r?.state === "ALIVE" && r.num_restarts === 1 && r;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  assert.equal(restarted.actor_id, replica.actor_id);
  assert.notEqual(restarted.pid, replica.pid);
  const deleted = await head.json(`/api/serve/deployments/${web}`, { method: "DELETE" });
  assert.deepEqual(deleted.body, { deleted: true });
  assert.deepEqual(await processesWithEnv("JOBHEAD_DEPLOYMENT", web), []);
});

Deno.test("a delete while a replica's node restarts stops the replica once the node is back", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(member(db, "head", { args: ["--no-local-jobs"] }));
  await using n1 = await restartableNode(db, "n1");
  const web = uniqueName("web");
  try {
    const first = await n1.start();
    await waitForNodes(head, ["n1"]);
    await apply(head, { name: web, entrypoint: "exec sleep 600" });
    await aloneAlive(head, web);

    // The node's process is away (not DEAD) when the stop is first tried.
    await first.kill("SIGTERM");
    const deleting = head.json(`/api/serve/deployments/${web}`, { method: "DELETE" });
    await head.waitForOutput(/stopping replica \S+ failed/);
    await using _back = await n1.start();
    await waitFor("the replica stopped", async () => {
      return (await processesWithEnv("JOBHEAD_DEPLOYMENT", web)).length === 0;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.deepEqual((await deleting).body, { deleted: true });
  } finally {
    await killProcessesWithEnv("JOBHEAD_DEPLOYMENT", web);
  }
});

Deno.test("a head stopped during a delete that waits for a node exits; the next head finishes it", async () => {
  const db = await createTestDatabase();
  // The node is not declared DEAD meanwhile (that would end the stop).
  const args = ["--no-local-jobs", "--node-timeout-s", "60"];
  const first = await startHead(member(db, "head", { args }));
  await using n1 = await restartableNode(db, "n1");
  const web = uniqueName("web");
  try {
    const node = await n1.start();
    await waitForNodes(first, ["n1"]);
    await apply(first, { name: web, entrypoint: "exec sleep 600" });
    await aloneAlive(first, web);

    await node.kill("SIGTERM");
    const deleting = first.json(`/api/serve/deployments/${web}`, { method: "DELETE" })
      .catch(() => undefined); // cut off by the head's stop
    await first.waitForOutput(/stopping replica \S+ failed/);
    await first.kill("SIGTERM"); // throws if it does not exit
    await deleting;

    await using _back = await n1.start();
    await using next = await startHead(member(db, "head2", { args }));
    await waitFor("the deployment deleted", async () => {
      return (await next.json(`/api/serve/deployments/${web}`)).status === 404;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.deepEqual(await processesWithEnv("JOBHEAD_DEPLOYMENT", web), []);
  } finally {
    await first[Symbol.asyncDispose]();
    await killProcessesWithEnv("JOBHEAD_DEPLOYMENT", web);
  }
});

Deno.test("a replica found unhealthy while its node restarts is stopped and restarted once the node is back", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(member(db, "head", { args: ["--no-local-jobs"] }));
  await using n1 = await restartableNode(db, "n1");
  const web = uniqueName("web");
  try {
    const first = await n1.start();
    await waitForNodes(head, ["n1"]);
    await apply(head, {
      name: web,
      entrypoint: "exec sleep 600",
      health_check: { command: "true", period_s: 0.2, failure_threshold: 1 },
      restart_policy: { initial_backoff_s: 0.05 },
    });
    const [replica] = await healthy(head, web, 1);

    // Its checks fail while the node's process is away: it is to be stopped, then restarted.
    await first.kill("SIGTERM");
    await head.waitForOutput(/stopping (replica \S+|an unhealthy replica) failed/);
    await using _back = await n1.start();
    const restarted = await waitFor("the replica restarted", async () => {
      const { body } = await head.json(`/api/serve/deployments/${web}`);
      const [r] = body.replicas as (Replica & { num_restarts: number })[];
      return r?.state === "ALIVE" && r.ready && r.num_restarts === 1 && r;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.equal(restarted.actor_id, replica.actor_id);
    assert.notEqual(restarted.pid, replica.pid);
    assert.equal(await isAlive(replica.pid), false);
  } finally {
    await killProcessesWithEnv("JOBHEAD_DEPLOYMENT", web);
  }
});

Deno.test("a node whose serve agent does not answer is passed over: the replicas go to the others", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(member(db, "head", { args: ["--no-local-jobs"] }));
  await head.waitForOutput(/this process schedules the cluster now/);
  // A head that runs jobs but no serve module: a node without a serve agent.
  await using _minimal = await startHead(member(db, "bare", { args: ["--minimal"] }));
  await using _n1 = await startHead(member(db, "n1", { command: "node" }));
  await waitForNodes(head, ["bare", "n1"]);
  const web = uniqueName("web");
  try {
    await apply(head, { name: web, entrypoint: "exec sleep 600", num_replicas: 2 });
    await waitFor("both replicas alive on n1", async () => {
      const { body } = await head.json(`/api/serve/deployments/${web}`);
      const replicas = body.replicas as Replica[];
      return replicas.length === 2 &&
        replicas.every((r) => r.state === "ALIVE" && r.node === "n1");
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.deepEqual(
      (await head.json(`/api/serve/deployments/${web}`, { method: "DELETE" })).body,
      { deleted: true },
    );
  } finally {
    await killProcessesWithEnv("JOBHEAD_DEPLOYMENT", web);
  }
});
