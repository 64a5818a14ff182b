/**
 * The head on a PostgreSQL store (`--store postgres://…`), whatever JOBHEAD_TEST_STORE
 * says: refusals at start, secrets kept from jobs, PostgreSQL restarted under a running
 * head, and a head killed in the middle of writes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type HeadOptions, startHead, waitForStatus } from "./harness.ts";
import { jobLogs, jobProcesses, submitJob } from "./helpers.ts";
import { createTestDatabase, startPrivateServer, type TestDatabase } from "./postgres.ts";
import { waitFor } from "./poll.ts";

const MAIN_TS = new URL("../main.ts", import.meta.url).pathname;

/** Runs `jobhead start` with `args` and `env` until it exits; its code and stderr. */
async function startAndExit(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const dataDir = await Deno.makeTempDir({ prefix: "jobhead-test-" });
  try {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN_TS, "start", "--port", "0", "--data-dir", dataDir, ...args],
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "", ...env },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code, stderr: new TextDecoder().decode(stderr) };
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** Asserts a start that exits 1 with one line on stderr matching `pattern`. */
async function assertRefusedStart(
  args: string[],
  env: Record<string, string>,
  pattern: RegExp,
): Promise<void> {
  const { code, stderr } = await startAndExit(args, env);
  assert.equal(code, 1, stderr);
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], pattern);
}

Deno.test("jobhead start refuses a bad --store URL, a wrong password, an unreachable server and another cluster's store: one line, exit 1", async () => {
  const db = await createTestDatabase();
  await assertRefusedStart(["--store", "mysql://x@y/z"], {}, /^jobhead: .*mysql:\/\/x@y\/z/);
  await assertRefusedStart(
    ["--store", db.url.replace("jobhead@", "jobhead:wrong-secret@")],
    {},
    /^jobhead: .*the store postgres:\/\/jobhead:\*\*\*@127\.0\.0\.1:\d+\/\w+ refused the password/,
  );
  const { stderr } = await startAndExit(
    ["--store", db.url.replace("jobhead@", "jobhead:wrong-secret@")],
  );
  assert.doesNotMatch(stderr, /wrong-secret/);
  await assertRefusedStart(["--store", db.url], { PGPASSWORD: "wrong" }, /refused the password/);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assertRefusedStart(
    ["--store", `postgres://jobhead@127.0.0.1:${port}/jobhead`],
    {},
    new RegExp(
      `^jobhead: .*cannot reach the store postgres://jobhead@127\\.0\\.0\\.1:${port}/jobhead`,
    ),
  );
  // The store remembers the token it was made with.
  const first = await startHead({
    token: "cluster-one",
    extraArgs: ["--store", db.url],
    env: { PGPASSWORD: db.password },
  });
  await first[Symbol.asyncDispose]();
  await assertRefusedStart(
    ["--store", db.url, "--token", "cluster-two"],
    { PGPASSWORD: db.password },
    /belongs to another cluster/,
  );
});

Deno.test("jobs never see the store's password, from PGPASSWORD or --store-password-file, nor the store URL", async () => {
  const db = await createTestDatabase();
  const dir = await Deno.makeTempDir({ prefix: "jobhead-test-secret-" });
  try {
    const file = join(dir, "password");
    await Deno.writeTextFile(file, `${db.password}\n`);
    const setups: HeadOptions[] = [
      { extraArgs: ["--store", db.url], env: { PGPASSWORD: db.password } },
      {
        extraArgs: [],
        env: { JOBHEAD_STORE: db.url, JOBHEAD_STORE_PASSWORD_FILE: file, PGPASSWORD: "decoy" },
      },
    ];
    for (const setup of setups) {
      await using head = await startHead(setup);
      const id = await submitJob(head, { entrypoint: "env" });
      await waitForStatus(head, id, ["SUCCEEDED"]);
      const env = await jobLogs(head, id);
      assert.match(env, /^PATH=/m, "the job's environment is in its log");
      assert.doesNotMatch(env, new RegExp(db.password));
      assert.doesNotMatch(env, /PGPASSWORD|JOBHEAD_STORE|decoy/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PostgreSQL restarted under a running head: 503 (never 500) while it is away, nothing lost, outcomes land when it is back", async () => {
  await using server = await startPrivateServer();
  const db: TestDatabase = await server.createDatabase();
  await using head = await startHead({
    extraArgs: ["--store", db.url],
    env: { PGPASSWORD: db.password },
  });
  const before = await submitJob(head, { entrypoint: "true" });
  await waitForStatus(head, before, ["SUCCEEDED"]);
  const fifo = join(head.dataDir, "release");
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  // Ends while PostgreSQL is away: its outcome must wait for it, then land.
  const during = await submitJob(head, { entrypoint: `cat ${fifo} > /dev/null; exit 3` });
  await waitForStatus(head, during, ["RUNNING"]);
  await server.restart(async () => {
    const list = await head.json("/api/jobs/");
    assert.equal(list.status, 503, JSON.stringify(list.body));
    assert.match(
      JSON.stringify(list.body),
      /"code":"UNAVAILABLE".*The store postgres:\/\/jobhead@/,
    );
    const detail = await head.json(`/api/jobs/${during}`);
    assert.equal(detail.status, 503);
    const health = await head.fetch("/-/healthz");
    assert.equal(await health.text(), "ok");
    // The job ends now: the head's record of its outcome waits for the store.
    await Deno.writeTextFile(fifo, "go\n");
    await waitFor("the job's processes to end", async () => {
      return (await jobProcesses(head, during)).length === 0;
    });
    const submit = await head.json("/api/jobs/", { method: "POST", body: { entrypoint: "true" } });
    assert.equal(submit.status, 503, JSON.stringify(submit.body));
  });
  // Back: the head answers again once its back-off has passed, and takes submits.
  const after = await waitFor("the head to take submits again", async () => {
    const { status, body } = await head.json("/api/jobs/", {
      method: "POST",
      body: { entrypoint: "true" },
    });
    return status === 200 ? body.submission_id as string : undefined;
  });
  await waitForStatus(head, after, ["SUCCEEDED"]);
  const ended = await waitForStatus(head, during, ["FAILED"]);
  assert.equal(ended.driver_exit_code, 3);
  const { body } = await head.json("/api/jobs/");
  const ids = body.map((job: { submission_id: string }) => job.submission_id).sort();
  assert.deepEqual(ids, [before, during, after].sort());
  assert.doesNotMatch(head.output().stderr, /internal error/);
});

Deno.test("a head SIGKILLed in the middle of submits: every submit answered 200 is stored whole, and runs", async () => {
  const db = await createTestDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "jobhead-test-" });
  const setup = { dataDir, extraArgs: ["--store", db.url], env: { PGPASSWORD: db.password } };
  try {
    const accepted: string[] = [];
    // Disposed last: it kills what is left of the jobs the killed head started.
    await using killed = await startHead(setup);
    const submits = Array.from({ length: 60 }, async (_, i) => {
      const res = await killed.json("/api/jobs/", {
        method: "POST",
        body: { entrypoint: "true", submission_id: `burst-${i}` },
      }).catch(() => undefined);
      if (res?.status === 200) accepted.push(res.body.submission_id);
    });
    await waitFor("some submits to be answered", () => Promise.resolve(accepted.length >= 5));
    await killed.kill("SIGKILL");
    await Promise.all(submits);
    await using head = await startHead(setup);
    for (const id of accepted) await waitForStatus(head, id, ["SUCCEEDED"]);
    // The list and the records agree: no half-written job.
    const { body } = await head.json("/api/jobs/");
    for (const job of body) {
      assert.ok(["SUCCEEDED", "FAILED", "PENDING", "RUNNING"].includes(job.status));
      const { status } = await head.json(`/api/jobs/${job.submission_id}`);
      assert.equal(status, 200);
    }
    const listed = new Set(body.map((job: { submission_id: string }) => job.submission_id));
    for (const id of accepted) assert.ok(listed.has(id), `${id} was answered 200 but is gone`);
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
