/**
 * A cluster on PostgreSQL: heads and worker nodes as real processes on one throwaway
 * server, each with its own data directory and port.
 */
import assert from "node:assert/strict";
import {
  isAlive,
  processesWithEnv,
  type RunningHead,
  startHead,
  waitForStatus,
} from "./harness.ts";
import postgres from "postgres";
import { member, restartableNode, waitForNodes } from "./cluster.ts";
import { createTestDatabase, type TestDatabase } from "./postgres.ts";
import { waitFor } from "./poll.ts";
import { exists } from "./helpers.ts";

/** The scheduling lock's key as pg_locks shows it (its low 32 bits): "jobh". */
const SCHEDULING_LOCK_OBJID = 0x6a6f6268;

/** Submits `entrypoint` pinned to node `node` through `head`; its id. */
async function submitOn(head: RunningHead, node: string, entrypoint: string): Promise<string> {
  const { status, body } = await head.json("/api/jobs/", {
    method: "POST",
    body: { entrypoint, entrypoint_resources: { [`node:${node}`]: 0.001 } },
  });
  assert.equal(status, 200, JSON.stringify(body));
  return body.submission_id;
}

/** The frames of a job's log tail from `url` until it closes, and how it closed. */
async function tailOf(url: string, id: string): Promise<{ text: string; code: number }> {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/api/jobs/${id}/logs/tail`);
  let text = "";
  socket.onmessage = (event) => text += event.data;
  const code = await new Promise<number>((resolve) => socket.onclose = (e) => resolve(e.code));
  return { text, code };
}

Deno.test("a job submitted on a head runs on a worker node: status, logs, tail and stop through the head", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(member(db, "head", { args: ["--no-local-jobs"] }));
  await using node = await startHead(member(db, "n1", { command: "node" }));
  await waitForNodes(head, ["n1"]);

  const id = await submitOn(head, "n1", "printf 'one\\ntwo\\n'; printf 'three'");
  const done = await waitForStatus(head, id, ["SUCCEEDED"]);
  assert.equal(done.driver_agent_http_address, node.url);
  assert.equal(done.driver_info.node_ip_address, "127.0.0.1");
  const nodeCluster = (await node.json("/api/cluster")).body;
  assert.ok(nodeCluster.nodes.some((n: { name: string }) => n.name === "n1"));
  assert.match(done.driver_node_id, /^[0-9a-f]{56}$/);
  // The log is on the node only; through the head it reads the same.
  assert.deepEqual([...Deno.readDirSync(`${head.dataDir}/logs`)], []);
  for (const path of [`/api/jobs/${id}/logs`, `/api/jobs/${id}/logs?offset=-5&limit=4`]) {
    const [viaHead, direct] = [await head.json(path), await node.json(path)];
    assert.equal(viaHead.status, 200);
    assert.deepEqual(viaHead.body, direct.body);
  }
  const raw = await head.fetch(`/api/jobs/${id}/logs/raw`, { headers: { range: "bytes=4-6" } });
  assert.equal(raw.status, 206);
  assert.equal(raw.headers.get("content-range"), "bytes 4-6/13");
  assert.equal(await raw.text(), "two");
  assert.deepEqual(await tailOf(head.url, id), await tailOf(node.url, id));
  assert.deepEqual(await tailOf(head.url, id), { text: "one\ntwo\nthree", code: 1000 });
  // Passing reads on made no noise in the head's log (Deno warns once request.signal is read).
  assert.doesNotMatch(head.output().stderr, /legacy/i);

  // The store's password is the node's secret, not its jobs'.
  const peek = await submitOn(head, "n1", "echo pw=${PGPASSWORD:-none}");
  await waitForStatus(head, peek, ["SUCCEEDED"]);
  assert.deepEqual((await head.json(`/api/jobs/${peek}/logs`)).body, { logs: "pw=none\n" });

  // Stop through the head reaches the node: every process of the job is gone.
  const sleeper = await submitOn(head, "n1", "sleep 300");
  await waitForStatus(head, sleeper, ["RUNNING"]);
  await waitFor("the job's processes on the node", async () => {
    const found = await processesWithEnv("JOBHEAD_SUBMISSION_ID", sleeper);
    if (found.length > 0) return true;
    const { body } = await head.json(`/api/jobs/${sleeper}`);
    if (body.status !== "RUNNING") throw new Error(`job ended: ${JSON.stringify(body)}`);
  }, { timeoutMs: 10_000, intervalMs: 50 });
  assert.deepEqual((await head.json(`/api/jobs/${sleeper}/stop`, { method: "POST" })).body, {
    stopped: true,
  });
  await waitForStatus(head, sleeper, ["STOPPED"]);
  assert.deepEqual(await processesWithEnv("JOBHEAD_SUBMISSION_ID", sleeper), []);

  // Delete through the head removes the log on the node.
  assert.equal((await head.json(`/api/jobs/${id}`, { method: "DELETE" })).status, 200);
  await waitFor("the log removed on the node", async () => {
    return !await exists(`${node.dataDir}/logs/${id}.log`) || undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
});

Deno.test("a node that is unreachable makes its job's log answer 503 naming it", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(member(db, "head", { args: ["--no-local-jobs"] }));
  const node = await startHead(member(db, "n1", { command: "node" }));
  try {
    await waitForNodes(head, ["n1"]);
    const id = await submitOn(head, "n1", "echo hi; sleep 300");
    await waitForStatus(head, id, ["RUNNING"]);
    await node.kill("SIGKILL");
    const { status, body } = await head.json(`/api/jobs/${id}/logs`);
    assert.equal(status, 503);
    assert.match(body.error.message, /node "n1" \(http:\/\/127\.0\.0\.1:\d+\) .* unreachable/);
  } finally {
    await node[Symbol.asyncDispose]();
  }
});

Deno.test("a node SIGKILLed is declared DEAD: its jobs fail naming it, others run on; back, it kills them", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(
    member(db, "head", { args: ["--no-local-jobs", "--node-timeout-s", "2"] }),
  );
  await using n1 = await restartableNode(db, "n1");
  const first = await n1.start();
  await using _other = await startHead(member(db, "n2", { command: "node" }));
  try {
    await waitForNodes(head, ["n1", "n2"]);
    const lost = await submitOn(head, "n1", "sleep 300");
    const kept = await submitOn(head, "n2", "sleep 300");
    await waitForStatus(head, lost, ["RUNNING"]);
    await waitForStatus(head, kept, ["RUNNING"]);
    await first.kill("SIGKILL");

    const failed = await waitForStatus(head, lost, ["FAILED"]);
    assert.equal(failed.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
    assert.match(failed.message, /node "n1" stopped answering \(no heartbeat for \d+ s\)/);
    assert.equal((await head.json(`/api/jobs/${kept}`)).body.status, "RUNNING");
    const cluster = (await head.json("/api/cluster")).body;
    assert.equal(cluster.nodes.find((n: { name: string }) => n.name === "n1").state, "DEAD");
    assert.equal(cluster.running, 1); // what the lost job held is free
    // Its processes outlived the node (they run in sessions of their own).
    assert.notDeepEqual(await processesWithEnv("JOBHEAD_SUBMISSION_ID", lost), []);

    // Back, the node kills what the cluster reported FAILED, then takes new work.
    await using back = await n1.start();
    assert.deepEqual(await processesWithEnv("JOBHEAD_SUBMISSION_ID", lost), []);
    await waitForNodes(head, ["n1"]);
    const next = await submitOn(head, "n1", "true");
    assert.equal(
      (await waitForStatus(head, next, ["SUCCEEDED"])).driver_agent_http_address,
      back.url,
    );
    assert.equal((await head.json(`/api/jobs/${kept}`)).body.status, "RUNNING");
  } finally {
    await first[Symbol.asyncDispose]();
  }
});

Deno.test("a node restarted gracefully takes its running jobs back", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(member(db, "head", { args: ["--no-local-jobs"] }));
  await using n1 = await restartableNode(db, "n1");
  const release = `${n1.dataDir}/release`;
  const first = await n1.start();
  await waitForNodes(head, ["n1"]);
  const id = await submitOn(
    head,
    "n1",
    `while [ ! -e ${release} ]; do sleep 0.05; done; echo released`,
  );
  await waitForStatus(head, id, ["RUNNING"]);
  await first.kill("SIGTERM");
  await using _back = await n1.start();
  await Deno.writeTextFile(release, "");
  const done = await waitForStatus(head, id, ["SUCCEEDED"]);
  assert.equal(done.driver_exit_code, 0);
  assert.deepEqual((await head.json(`/api/jobs/${id}/logs`)).body, { logs: "released\n" });
});

Deno.test("a node with another token than the cluster's is refused", async () => {
  const db = await createTestDatabase();
  await using _head = await startHead(member(db, "head", { token: "right" }));
  await assert.rejects(
    () => startHead(member(db, "n1", { command: "node", token: "wrong" })),
    /exited with code 1 before listening/,
  );
});

Deno.test("two heads: the scheduling one SIGKILLed in a burst of 300 submits, the other takes over", async () => {
  const db = await createTestDatabase();
  const headArgs = ["--no-local-jobs"];
  const first = await startHead(member(db, "h1", { args: headArgs }));
  const ledger = await Deno.makeTempFile({ prefix: "jobhead-test-starts-" });
  try {
    await first.waitForOutput(/this process schedules the cluster now/);
    await using second = await startHead(member(db, "h2", { args: headArgs }));
    await using _n1 = await startHead(member(db, "n1", { command: "node" }));
    await using _n2 = await startHead(member(db, "n2", { command: "node" }));
    await waitForNodes(second, ["n1", "n2"]);

    // Each start of a job leaves one line: a job started twice leaves two.
    const entrypoint = `echo "$JOBHEAD_SUBMISSION_ID" >> ${ledger}`;
    const accepted: string[] = [];
    let sent = 0;
    const submitter = async (): Promise<void> => {
      while (sent < 300) {
        const index = sent++;
        if (index === 100) await first.kill("SIGKILL");
        const head = index % 2 === 0 && index < 100 ? first : second;
        const answer = await head.json("/api/jobs/", { method: "POST", body: { entrypoint } })
          .catch(() => undefined);
        if (answer?.status === 200) accepted.push(answer.body.submission_id);
      }
    };
    await Promise.all(Array.from({ length: 8 }, submitter));
    assert.ok(accepted.length >= 250, `only ${accepted.length} submits accepted`);

    await second.waitForOutput(/this process schedules the cluster now/);
    for (const id of accepted) await waitForStatus(second, id, ["SUCCEEDED"]);
    const starts = (await Deno.readTextFile(ledger)).trim().split("\n");
    const counts = new Map<string, number>();
    for (const id of starts) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.deepEqual([...counts].filter(([, n]) => n > 1), [], "jobs started twice");
    for (const id of accepted) assert.equal(counts.get(id), 1, `job ${id} never started`);
  } finally {
    await first[Symbol.asyncDispose]();
    await Deno.remove(ledger);
  }
});

Deno.test("a node frozen past the timeout kills its jobs' processes once it runs again", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(
    member(db, "head", { args: ["--no-local-jobs", "--node-timeout-s", "2"] }),
  );
  await using node = await startHead(member(db, "n1", { command: "node" }));
  await waitForNodes(head, ["n1"]);
  const id = await submitOn(head, "n1", "sleep 300");
  await waitForStatus(head, id, ["RUNNING"]);
  Deno.kill(node.pid, "SIGSTOP");
  try {
    const failed = await waitForStatus(head, id, ["FAILED"]);
    assert.match(failed.message, /node "n1" stopped answering/);
    assert.notDeepEqual(await processesWithEnv("JOBHEAD_SUBMISSION_ID", id), []);
  } finally {
    Deno.kill(node.pid, "SIGCONT");
  }
  await node.waitForOutput(/was declared DEAD while it was away/);
  await waitFor("the job's processes killed", async () => {
    return (await processesWithEnv("JOBHEAD_SUBMISSION_ID", id)).length === 0 || undefined;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  await waitForNodes(head, ["n1"]);
  const next = await submitOn(head, "n1", "true");
  await waitForStatus(head, next, ["SUCCEEDED"]);
  assert.equal((await head.json(`/api/jobs/${id}`)).body.status, "FAILED");
});

/**
 * Ends the server process that holds this database's scheduling lock (its connection
 * breaks). Advisory locks are per database: other tests' clusters hold the same key.
 */
async function breakLockConnection(db: TestDatabase): Promise<void> {
  const sql = postgres(db.url, { password: db.password, max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`
      select pid from pg_locks
      where locktype = 'advisory' and objid = ${SCHEDULING_LOCK_OBJID}
        and database = (select oid from pg_database where datname = current_database()) and granted`;
    assert.ok(row, "no process holds the scheduling lock");
    await sql`select pg_terminate_backend(${row.pid}::int, 5000)`;
  } finally {
    await sql.end();
  }
}

/** Whether a process waits for the scheduling lock. */
async function lockWaiters(db: TestDatabase): Promise<number> {
  const sql = postgres(db.url, { password: db.password, max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`
      select count(*)::int as n from pg_locks
      where locktype = 'advisory' and objid = ${SCHEDULING_LOCK_OBJID}
        and database = (select oid from pg_database where datname = current_database()) and not granted`;
    return row.n;
  } finally {
    await sql.end();
  }
}

Deno.test("a scheduling head whose lock connection breaks takes the lock back, or stops if another took it", async () => {
  const db = await createTestDatabase();
  const first = await startHead(member(db, "h1", { args: ["--no-local-jobs"] }));
  try {
    await first.waitForOutput(/this process schedules the cluster now/);
    await using node = await startHead(member(db, "n1", { command: "node" }));
    await waitForNodes(first, ["n1"]);

    // Alone: it takes the lock back and goes on scheduling.
    await breakLockConnection(db);
    await first.waitForOutput(/took the scheduling lock back/);
    const id = await submitOn(first, "n1", "echo placed");
    assert.equal(
      (await waitForStatus(first, id, ["SUCCEEDED"])).driver_agent_http_address,
      node.url,
    );

    // With a second head waiting for the lock, the lock goes to it: the first one stops.
    await using second = await startHead(member(db, "h2", { args: ["--no-local-jobs"] }));
    await waitFor("the second head waiting for the lock", async () => {
      return await lockWaiters(db) === 1 || undefined;
    }, { timeoutMs: 30_000, intervalMs: 50 });
    await breakLockConnection(db);
    await second.waitForOutput(/this process schedules the cluster now/);
    await first.waitForOutput(/another process took the scheduling lock/);
    await waitFor("the first head gone", async () => {
      return !(await isAlive(first.pid)) || undefined;
    }, { timeoutMs: 30_000, intervalMs: 50 });
    const next = await submitOn(second, "n1", "echo placed");
    await waitForStatus(second, next, ["SUCCEEDED"]);
  } finally {
    await first[Symbol.asyncDispose]();
  }
});

/** Runs `statement` on `db` as the test's own client. */
async function runSql(db: TestDatabase, statement: string): Promise<void> {
  const sql = postgres(db.url, { password: db.password, max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(statement);
  } finally {
    await sql.end();
  }
}

Deno.test("a scheduling head whose declaring a node DEAD fails goes on scheduling, and declares it later", async () => {
  const db = await createTestDatabase();
  await using head = await startHead(
    member(db, "h1", { args: ["--no-local-jobs", "--node-timeout-s", "2"] }),
  );
  await head.waitForOutput(/this process schedules the cluster now/);
  const node = await startHead(member(db, "n1", { command: "node" }));
  try {
    await waitForNodes(head, ["n1"]);
    // The store refuses, for a while, to record a node DEAD.
    await runSql(
      db,
      `create function refuse_dead() returns trigger language plpgsql as $$
       begin raise exception 'no node may die now'; end $$;
       create trigger refuse_dead before update on jobhead_nodes
       for each row when (new.state = 'DEAD') execute function refuse_dead();`,
    );
    await node.kill("SIGKILL");
    await head.waitForOutput(/no node may die now/);
    await runSql(db, "drop trigger refuse_dead on jobhead_nodes");
    await waitFor("n1 declared DEAD", async () => {
      const { body } = await head.json("/api/cluster");
      return body.nodes.some((n: { name: string; state: string }) =>
        n.name === "n1" && n.state === "DEAD"
      ) || undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
  } finally {
    await node[Symbol.asyncDispose]();
  }
});

Deno.test("a head whose take-over fails holds no lock meanwhile, and takes over once it can", async () => {
  const db = await createTestDatabase();
  const first = await startHead(member(db, "h1", { args: ["--no-local-jobs"] }));
  try {
    await first.waitForOutput(/this process schedules the cluster now/);
    await using second = await startHead(member(db, "h2", { args: ["--no-local-jobs"] }));
    await waitFor("the second head waiting for the lock", async () => {
      return await lockWaiters(db) === 1 || undefined;
    }, { timeoutMs: 30_000, intervalMs: 50 });
    // The store refuses, for a while, to record which head controls the deployments.
    await runSql(
      db,
      `create function refuse_controller() returns trigger language plpgsql as $$
       begin raise exception 'no controller now'; end $$;
       create trigger refuse_controller before insert or update on jobhead_kv for each row
       when (position(convert_to('controller', 'UTF8') in new.key) > 0)
       execute function refuse_controller();`,
    );
    await first.kill("SIGKILL");
    await second.waitForOutput(/no controller now/);
    await runSql(db, "drop trigger refuse_controller on jobhead_kv");

    // A head that does not schedule passes serve requests on to the one that took over.
    await using third = await startHead(member(db, "h3", { args: ["--no-local-jobs"] }));
    await waitFor("serve requests passed on to the second head", async () => {
      return (await third.json("/api/serve/deployments")).status === 200 || undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
  } finally {
    await first[Symbol.asyncDispose]();
  }
});

Deno.test("a head waiting for the scheduling lock exits on SIGTERM", async () => {
  const db = await createTestDatabase();
  await using first = await startHead(member(db, "h1", { args: ["--no-local-jobs"] }));
  await first.waitForOutput(/this process schedules the cluster now/);
  const second = await startHead(member(db, "h2", { args: ["--no-local-jobs"] }));
  await waitFor("the second head waiting for the lock", async () => {
    return await lockWaiters(db) === 1 || undefined;
  }, { timeoutMs: 30_000, intervalMs: 50 });
  await second.kill("SIGTERM"); // throws if it does not exit
  assert.equal(await lockWaiters(db), 0);
});
