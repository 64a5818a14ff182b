/** End to end: every way a job can end, and what it sees while it runs. */
import assert from "node:assert/strict";
import { processInfo, startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { waitForEvent } from "./events.ts";
import { assertError, assertNoJobProcesses, jobLogs, q, stopJob, submitJob } from "./helpers.ts";

const FAILED_PREFIX = (code: number) =>
  `Job entrypoint command failed with exit code ${code}, last available logs (truncated to 20,000 chars):\n`;

Deno.test("a job that exits 0 ends SUCCEEDED with Ray's job details", async () => {
  await using head = await startHead();
  const before = Date.now();
  const { status, body } = await head.json("/api/jobs/", {
    method: "POST",
    body: { entrypoint: "echo hello", submission_id: "ok-1", metadata: { owner: "me" } },
  });
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body, { job_id: "ok-1", submission_id: "ok-1" });

  const job = await waitForStatus(head, "ok-1", ["SUCCEEDED"]);
  const after = Date.now();
  assert.equal(job.type, "SUBMISSION");
  assert.equal(job.job_id, "ok-1");
  assert.equal(job.submission_id, "ok-1");
  assert.equal(job.entrypoint, "echo hello");
  assert.equal(job.message, "Job finished successfully.");
  assert.equal(job.error_type, null);
  assert.equal(job.driver_exit_code, 0);
  assert.deepEqual(job.metadata, { owner: "me" });
  assert.deepEqual(job.runtime_env, {});
  assert.equal(typeof job.start_time, "number");
  assert.equal(typeof job.end_time, "number");
  // Epoch milliseconds, in order.
  assert.ok(
    job.start_time >= before - 1000 && job.start_time <= after,
    `start_time ${job.start_time}`,
  );
  assert.ok(job.end_time >= job.start_time && job.end_time <= after, `end_time ${job.end_time}`);
  assert.equal(typeof job.driver_info?.id, "string");
  assert.equal(typeof job.driver_info?.node_ip_address, "string");
  assert.match(String(job.driver_info?.pid), /^\d+$/);
  assert.equal(typeof job.driver_node_id, "string");
  assert.equal(typeof job.driver_agent_http_address, "string");
  assert.equal(job.entrypoint_num_cpus, 0);
  assert.equal(job.entrypoint_num_gpus, 0);
  assert.equal(job.entrypoint_memory, 0);
  assert.deepEqual(job.entrypoint_resources, {});
  assert.equal(await jobLogs(head, "ok-1"), "hello\n");
});

Deno.test("a running job says so and has no end yet", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: ["--resources", '{"custom": 2}'] });
  const alive = await fifos.reader("alive");
  const id = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; exec sleep 1000`,
    metadata: { job_name: "sleeper" },
    entrypoint_num_cpus: 0.5,
    entrypoint_memory: 256 * 1024 ** 2, // enforced where a cgroup allows: room to run
    entrypoint_resources: { custom: 2 },
  });
  assert.match(id, /^jobhead_[A-Za-z0-9_.-]{16}$/);
  await alive.opened();
  const job = await waitForStatus(head, id, ["RUNNING"]);
  assert.equal(job.message, "Job is currently running.");
  assert.equal(job.end_time, null);
  assert.equal(job.driver_exit_code, null);
  assert.equal(job.error_type, null);
  assert.deepEqual(job.metadata, { job_name: "sleeper" });
  assert.equal(job.entrypoint_num_cpus, 0.5);
  assert.equal(job.entrypoint_memory, 256 * 1024 ** 2);
  assert.deepEqual(job.entrypoint_resources, { custom: 2 });
  assert.equal(await stopJob(head, id), true);
  await waitForStatus(head, id, ["STOPPED"]);
  await alive.eof();
  await assertNoJobProcesses(head, id);
});

Deno.test("a non-zero exit ends FAILED with the exit code and the log tail", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "echo first; echo second >&2; exit 3" });
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
  assert.equal(job.driver_exit_code, 3);
  assert.ok(job.message.startsWith(FAILED_PREFIX(3)), job.message);
  assert.ok(job.message.includes("first\nsecond"), job.message);
  assert.equal(typeof job.end_time, "number");
  assert.equal(await jobLogs(head, id), "first\nsecond\n");
});

Deno.test("a failure without output says no logs are available", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "exit 4" });
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
  assert.equal(job.driver_exit_code, 4);
  assert.equal(job.message, "Job entrypoint command failed with exit code 4. No logs available.");
});

Deno.test("a failure message carries at most the last 20,000 chars of the log", async () => {
  await using head = await startHead();
  const id = await submitJob(head, {
    entrypoint:
      'i=0; while [ $i -lt 3000 ]; do echo "line-$i-xxxxxxxxxx"; i=$((i+1)); done; exit 1',
  });
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.ok(job.message.startsWith(FAILED_PREFIX(1)), job.message.slice(0, 200));
  const tail = job.message.slice(FAILED_PREFIX(1).length);
  assert.ok(tail.length <= 20_000, `tail of ${tail.length} chars`);
  assert.ok(tail.length >= 19_000, `tail of only ${tail.length} chars`);
  assert.ok(tail.includes("line-2999-xxxxxxxxxx"), tail.slice(-200));
  assert.ok(!tail.includes("line-0-"), "the head of the log is cut");
});

Deno.test("a job killed by a signal records driver_exit_code -N", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "echo dying; kill -KILL $$" });
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.driver_exit_code, -9);
  assert.equal(job.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
  assert.ok(job.message.startsWith(FAILED_PREFIX(-9)), job.message);
});

Deno.test("exit 137 is an exit code, not a signal death", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "exit 137" });
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.driver_exit_code, 137);
});

Deno.test("a job whose supervisor cannot be launched ends FAILED with START_ERROR", async () => {
  // A head whose PATH has no setsid (util-linux) cannot launch any supervisor.
  await using head = await startHead({ env: { PATH: "/nonexistent" } });
  const id = await submitJob(head, { entrypoint: "echo never" });
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.error_type, "JOB_ENTRYPOINT_COMMAND_START_ERROR");
  assert.match(job.message, /^Job entrypoint command failed to start: setsid was not found/);
  assert.equal(job.driver_exit_code, null);
  assert.equal((await head.json("/api/version")).status, 200, "the head is still up");
  const fifos = [...Deno.readDirSync(`${head.dataDir}/run/fifo`)].map((entry) => entry.name);
  assert.deepEqual(fifos, [], "no fifo is left for a launch that failed");
});

Deno.test("an entrypoint no process could be given is refused with 400; a job's own PATH does not stop its launch", async () => {
  await using head = await startHead();
  // No process can be given an argument holding a NUL byte: refused before anything runs.
  const res = await head.json("/api/jobs/", {
    method: "POST",
    body: { entrypoint: "echo a\u0000b" },
  });
  assertError(res, 400, "BAD_REQUEST", "entrypoint");
  // The supervisor is found on the head's PATH; the job's PATH is the job's business.
  const id = await submitJob(head, {
    entrypoint: "echo $PATH",
    runtime_env: { env_vars: { PATH: "/nonexistent" } },
  });
  const job = await waitForStatus(head, id, ["SUCCEEDED", "FAILED"]);
  assert.notEqual(job.error_type, "JOB_ENTRYPOINT_COMMAND_START_ERROR", job.message);
});

Deno.test("a job gets JOBHEAD_ADDRESS, JOBHEAD_SUBMISSION_ID, JOBHEAD_JOB_CONFIG_JSON and env_vars", async () => {
  await using head = await startHead();
  const runtimeEnv = { env_vars: { GREETING: "hi there", QUOTED: `it's "fine"` } };
  const id = await submitJob(head, {
    submission_id: "env-1",
    entrypoint:
      `printf '%s\\n' "$JOBHEAD_ADDRESS" "$JOBHEAD_SUBMISSION_ID" "$GREETING" "$QUOTED" ` +
      `"$JOBHEAD_JOB_CONFIG_JSON"`,
    runtime_env: runtimeEnv,
    metadata: { team: "infra" },
  });
  const job = await waitForStatus(head, id, ["SUCCEEDED"]);
  assert.deepEqual(job.runtime_env, runtimeEnv);
  const [address, submissionId, greeting, quoted, ...config] = (await jobLogs(head, id))
    .replace(/\n$/, "").split("\n");
  assert.equal(address.replace(/\/$/, ""), head.url);
  assert.equal(submissionId, "env-1");
  assert.equal(greeting, "hi there");
  assert.equal(quoted, `it's "fine"`);
  const parsed = JSON.parse(config.join("\n"));
  assert.deepEqual(parsed.runtime_env?.env_vars, runtimeEnv.env_vars);
  assert.equal(parsed.metadata?.team, "infra");
});

Deno.test("runtime_env.working_dir runs the job in that directory", async () => {
  await using head = await startHead();
  const dir = await Deno.makeTempDir({ prefix: "jobhead-wd-" });
  try {
    await Deno.writeTextFile(`${dir}/hello.txt`, "from the working dir\n");
    const id = await submitJob(head, {
      entrypoint: "pwd; cat hello.txt",
      runtime_env: { working_dir: dir },
    });
    const job = await waitForStatus(head, id, ["SUCCEEDED"]);
    assert.equal(job.runtime_env.working_dir, dir);
    assert.equal(await jobLogs(head, id), `${await Deno.realPath(dir)}\nfrom the working dir\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing working_dir ends FAILED with RUNTIME_ENV_SETUP_FAILURE", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const marker = fifos.path("ran");
  const notDir = fifos.path("a-file");
  await Deno.writeTextFile(notDir, "not a directory");
  for (const workingDir of [fifos.path("missing/dir"), notDir]) {
    const id = await submitJob(head, {
      entrypoint: `touch ${q(marker)}`,
      runtime_env: { working_dir: workingDir },
    });
    const job = await waitForStatus(head, id, ["FAILED"]);
    assert.equal(job.error_type, "RUNTIME_ENV_SETUP_FAILURE", JSON.stringify(job));
    assert.ok(job.message.startsWith("runtime_env setup failed:"), job.message);
    await assertNoJobProcesses(head, id);
  }
  await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the entrypoint never ran");
});

Deno.test("exit 137 from a job with its own EXIT trap is an exit code, not a signal death", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "trap 'echo bye' EXIT; exit 137" });
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.driver_exit_code, 137);
  assert.equal(await jobLogs(head, id), "bye\n");
});

Deno.test("the entrypoint is a plain sh -c: $$ is its pid, and it can trap SIGINT", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const shell = await fifos.reader("shell");
  const entrypoint = `trap 'echo got INT; exit 5' INT; echo $$ >${q(shell.path)}; ` +
    `while :; do sleep 1000 & wait; done`;
  const id = await submitJob(head, { entrypoint });
  const pid = Number(await shell.text());
  const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
  assert.deepEqual(cmdline.split("\0").slice(0, 3), ["sh", "-c", entrypoint]);
  await waitForStatus(head, id, ["RUNNING"]);
  Deno.kill(pid, "SIGINT");
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.driver_exit_code, 5, "the INT trap ran: SIGINT was not ignored");
  assert.equal(await jobLogs(head, id), "got INT\n");
  await assertNoJobProcesses(head, id);
});

Deno.test("an entrypoint that is one program takes its shell's place; a list keeps its shell", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  // The inner shell prints its parent: the supervisor (the group's leader) when the outer
  // shell exec'd it, the outer shell when that waits for it.
  const parentOf = async (name: string, entrypoint: string) => {
    const out = await fifos.reader(name);
    const id = await submitJob(head, {
      entrypoint,
      runtime_env: { env_vars: { OUT: out.path } },
    });
    const parent = await processInfo(Number(await out.text()));
    assert.ok(parent, "the parent is alive");
    await waitForStatus(head, id, ["RUNNING"]);
    assert.equal(await stopJob(head, id), true);
    await waitForStatus(head, id, ["STOPPED"]);
    await assertNoJobProcesses(head, id);
    return parent;
  };
  const inner = `sh -c 'echo $PPID >"$OUT"; exec sleep 600'`;
  const one = await parentOf("one", inner);
  assert.equal(one.pid, one.pgid, "the program's parent is the supervisor");
  const list = await parentOf("list", `${inner}; true`);
  assert.notEqual(list.pid, list.pgid, "a list runs under a shell of its own");

  // Exit codes read as before. The program is the entrypoint: killed by a signal, it ends
  // -N (its shell's exit code 128 + N before). A missing program exits 127.
  const exited = await submitJob(head, { entrypoint: "sh -c 'exit 3'" });
  assert.equal((await waitForStatus(head, exited, ["FAILED"])).driver_exit_code, 3);
  const killed = await submitJob(head, { entrypoint: "sh -c 'kill -KILL $$; :'" });
  assert.equal((await waitForStatus(head, killed, ["FAILED"])).driver_exit_code, -9);
  const missing = await submitJob(head, { entrypoint: "no-such-program-of-jobhead --x" });
  const failed = await waitForStatus(head, missing, ["FAILED"]);
  assert.equal(failed.driver_exit_code, 127);
  assert.match(await jobLogs(head, missing), /no-such-program-of-jobhead: not found/);
});

Deno.test("a job does not inherit the head's token or configuration", async () => {
  const token = `secret-${crypto.randomUUID()}`;
  await using head = await startHead({
    env: { JOBHEAD_AUTH_TOKEN: token, JOBHEAD_STOP_WAIT_S: "7", JOBHEAD_TEST_KEPT: "kept" },
  });
  const auth = { authorization: `Bearer ${token}` };
  const submitted = await head.json("/api/jobs/", {
    method: "POST",
    headers: auth,
    body: { entrypoint: "env", runtime_env: { env_vars: { MINE: "mine" } } },
  });
  assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
  const id = submitted.body.submission_id;
  await waitForEvent(head, `job "${id}" to end`, async () => {
    const { body } = await head.json(`/api/jobs/${id}`, { headers: auth });
    assert.ok(["PENDING", "RUNNING", "SUCCEEDED"].includes(body.status), JSON.stringify(body));
    return body.status === "SUCCEEDED";
  }, { types: ["job"], headers: auth });
  const { body } = await head.json(`/api/jobs/${id}/logs`, { headers: auth });
  const env = body.logs as string;
  assert.ok(!env.includes(token), "the token leaked into the job");
  assert.ok(!/^JOBHEAD_AUTH_TOKEN=/m.test(env), env);
  assert.ok(!/^JOBHEAD_STOP_WAIT_S=/m.test(env), "the head's configuration leaked into the job");
  assert.match(env, /^JOBHEAD_TEST_KEPT=kept$/m, "the rest of the head's environment is kept");
  assert.match(env, /^MINE=mine$/m);
  assert.match(env, new RegExp(`^JOBHEAD_SUBMISSION_ID=${id}$`, "m"));
  assert.match(env, /^JOBHEAD_ADDRESS=http/m);
  assert.match(env, /^JOBHEAD_JOB_CONFIG_JSON=/m);
  assert.match(env, /^JOBHEAD_ACTOR_ID=jobsup_/m);
});
