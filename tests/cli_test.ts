/** End to end: the `job` command line, run as a real process against a real head. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunningHead, startHead, waitForStatus } from "./harness.ts";
import { Fifos, HANG_GUARD_MS, withTimeout } from "./fifos.ts";
import { q, stopJob, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";

const MAIN_TS = new URL("../main.ts", import.meta.url).pathname;

/** What a finished CLI run printed, and its exit code. */
interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A CLI process still running: its output so far, and its end. */
interface CliProcess {
  /** Resolves once stdout holds `text`. */
  stdoutHas(text: string): Promise<void>;
  kill(signal: Deno.Signal): void;
  result: Promise<CliResult>;
}

/** Starts `main.ts job …args` against `head` (JOBHEAD_ADDRESS), stdin not a terminal. */
function startCli(
  head: RunningHead | undefined,
  args: string[],
  env: Record<string, string> = {},
): CliProcess {
  return startMain(head, ["job", ...args], env);
}

/** Starts `main.ts …args` against `head` (JOBHEAD_ADDRESS), stdin not a terminal. */
function startMain(
  head: RunningHead | undefined,
  args: string[],
  env: Record<string, string> = {},
): CliProcess {
  const inherited = Deno.env.toObject();
  for (const key of Object.keys(inherited)) if (key.startsWith("JOBHEAD_")) delete inherited[key];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN_TS, ...args],
    clearEnv: true,
    env: { ...inherited, NO_COLOR: "1", ...(head ? { JOBHEAD_ADDRESS: head.url } : {}), ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  const readStdout = (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      stdout += text;
      for (const waiter of waiters.filter((w) => stdout.includes(w.text))) waiter.resolve();
    }
  })();
  const readStderr = new Response(child.stderr).text();
  const result = (async () => {
    const [status, stderr] = await Promise.all([child.status, readStderr, readStdout]);
    return { code: status.code, stdout, stderr };
  })();
  return {
    stdoutHas(text) {
      if (stdout.includes(text)) return Promise.resolve();
      const seen = new Promise<void>((resolve) => waiters.push({ text, resolve }));
      const ended = result.then((r) => {
        throw new Error(`the CLI exited (${r.code}) before printing ${text}: ${JSON.stringify(r)}`);
      });
      return withTimeout(Promise.race([seen, ended]), HANG_GUARD_MS, `the CLI to print ${text}`);
    },
    kill: (signal) => child.kill(signal),
    result: withTimeout(result, HANG_GUARD_MS, `the CLI to exit: ${args.join(" ")}`),
  };
}

/** Runs `main.ts job …args` to its end. */
function cli(
  head: RunningHead | undefined,
  args: string[],
  env?: Record<string, string>,
): Promise<CliResult> {
  return startCli(head, args, env).result;
}

/** Asserts the exit code, showing the whole run when it differs. */
function assertCode(result: CliResult, code: number): void {
  assert.equal(result.code, code, `expected exit ${code}: ${JSON.stringify(result)}`);
}

/** Asserts the CLI failed with exit 4 and one line on stderr that matches `message`. */
function assertOneLineError(result: CliResult, message: RegExp): void {
  assertCode(result, 4);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^jobhead: [^\n]+\n$/, JSON.stringify(result.stderr));
  assert.match(result.stderr, message);
}

Deno.test("job submit follows the logs and exits with the job's outcome", async () => {
  await using head = await startHead();
  const ok = await cli(head, ["submit", "--", "echo hello; echo oops >&2"]);
  assertCode(ok, 0);
  assert.equal(ok.stdout, "hello\noops\n");
  assert.match(ok.stderr, /Job 'jobhead_\w+' succeeded\n$/);

  const failed = await cli(head, [
    "submit",
    "--submission-id",
    "fails",
    "--",
    "sh",
    "-c",
    "exit 7",
  ]);
  assertCode(failed, 1);
  assert.match(
    failed.stderr,
    /Job 'fails' failed \(JOB_ENTRYPOINT_COMMAND_ERROR\): Job entrypoint command failed with exit code 7\. No logs available\.\n$/,
  );
  assert.equal((await head.json("/api/jobs/fails")).body.entrypoint, "sh -c 'exit 7'");

  const stopped = startCli(head, [
    "submit",
    "--submission-id",
    "stopped",
    "--",
    "echo ready; exec sleep 30",
  ]);
  await stopped.stdoutHas("ready\n");
  assert.equal(await stopJob(head, "stopped"), true);
  const stoppedResult = await stopped.result;
  assertCode(stoppedResult, 3);
  assert.match(stoppedResult.stderr, /Job 'stopped' was stopped\n$/);

  // Ctrl-C without a terminal on stdin detaches at once; the job keeps running.
  const detached = startCli(head, [
    "submit",
    "--submission-id",
    "detached",
    "--",
    "echo ready; exec sleep 30",
  ]);
  await detached.stdoutHas("ready\n");
  detached.kill("SIGINT");
  const detachedResult = await detached.result;
  assertCode(detachedResult, 130);
  assert.match(detachedResult.stderr, /Detached: job 'detached' keeps running/);
  assert.equal((await head.json("/api/jobs/detached")).body.status, "RUNNING");

  const noWait = await cli(head, ["submit", "--no-wait", "--json", "--", "exec sleep 30"]);
  assertCode(noWait, 0);
  const { submission_id } = JSON.parse(noWait.stdout);
  await waitForStatus(head, submission_id, ["RUNNING"]);
});

Deno.test("job logs --follow, status, list, stop and delete", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  await fifos.make("go");
  const id = await submitJob(head, {
    entrypoint: `echo first; read x < ${q(fifos.path("go"))}; echo second`,
    submission_id: "followed",
  });
  const follower = startCli(head, ["logs", "--follow", id]);
  await follower.stdoutHas("first\n");
  const running = await cli(head, ["status", id]);
  assertCode(running, 0);
  assert.match(
    running.stdout,
    /^Status for job 'followed': RUNNING\nStatus message: Job is currently running\.\n/,
  );
  await fifos.send("go");
  const followed = await follower.result;
  assertCode(followed, 0);
  assert.equal(followed.stdout, "first\nsecond\n");

  const logs = await cli(head, ["logs", id]);
  assert.equal(logs.stdout, "first\nsecond\n");
  const status = await cli(head, ["status", "--json", id]);
  assert.equal(JSON.parse(status.stdout).status, "SUCCEEDED");

  const sleeper = await submitJob(head, { entrypoint: "exec sleep 30", submission_id: "sleeper" });
  await waitForStatus(head, sleeper, ["RUNNING"]);
  const conflict = await cli(head, ["delete", sleeper]);
  assertOneLineError(conflict, /Cannot delete job "sleeper": job is RUNNING/);
  const stop = await cli(head, ["stop", sleeper]);
  assertCode(stop, 0);
  assert.match(stop.stderr, /Job 'sleeper' was stopped/);
  const again = await cli(head, ["stop", sleeper]);
  assert.match(again.stderr, /Job 'sleeper' had already ended: STOPPED/);

  const listed = await cli(head, ["list", "--json"]);
  assertCode(listed, 0);
  assert.deepEqual(JSON.parse(listed.stdout).map((j: { job_id: string }) => j.job_id), [
    sleeper,
    id,
  ]);
  const table = await cli(head, ["list", "--status", "succeeded"]);
  assert.match(
    table.stdout,
    /^SUBMISSION ID\s+STATUS\s+SUBMITTED\s+DURATION\s+RESOURCES\s+ENTRYPOINT\nfollowed\s+SUCCEEDED\s.* -\s+echo first/,
  );
  assert.doesNotMatch(table.stdout, /sleeper/);

  assertCode(await cli(head, ["delete", sleeper]), 0);
  assertOneLineError(
    await cli(head, ["status", sleeper]),
    /^jobhead: Job sleeper does not exist\n$/,
  );
  assertCode(await cli(head, ["status"]), 2);
});

Deno.test("job commands say in one line when the head is unreachable or wants a token", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = listener.addr.port;
  listener.close();
  assertOneLineError(
    await cli(undefined, ["list", "--address", `http://127.0.0.1:${closedPort}`]),
    /Cannot reach the head at http:\/\/127\.0\.0\.1:\d+: connection refused/,
  );

  await using head = await startHead({ token: "s3cret" });
  assertOneLineError(
    await cli(head, ["list"]),
    /requires a token: pass --token or set JOBHEAD_AUTH_TOKEN/,
  );
  assertOneLineError(await cli(head, ["status", "x", "--token", "wrong"]), /rejected the token/);
  // The token from the environment also opens the log tail (a WebSocket).
  const ok = await cli(head, ["submit", "--", "echo authorized"], { JOBHEAD_AUTH_TOKEN: "s3cret" });
  assertCode(ok, 0);
  assert.equal(ok.stdout, "authorized\n");
});

Deno.test("job submit --working-dir uploads the directory once and reuses it by hash", async () => {
  await using head = await startHead();
  const dir = await Deno.makeTempDir({ prefix: "jobhead-wd-" });
  try {
    // Jobs run in the package's shared copy: packages/extracted/pkg/<name>/<version>.
    const main = 'echo from $(basename "$(dirname "$PWD")"); cat notes.txt\n';
    await Deno.writeTextFile(join(dir, "main.sh"), main);
    await Deno.writeTextFile(join(dir, "notes.txt"), "packed\n");
    await Deno.writeTextFile(join(dir, "secret.env"), "TOKEN=x\n");
    const args = ["submit", "--working-dir", dir, "--exclude", "*.env", "--", "sh main.sh; ls"];
    const first = await cli(head, args);
    assertCode(first, 0);
    assert.match(
      first.stderr,
      /Uploaded working dir .* as pkg:\/\/[0-9a-f]{64}\.zip \(2 entries, 64 bytes\)/,
    );
    assert.match(first.stdout, /^from [0-9a-f]{64}\.zip\npacked\nmain\.sh\nnotes\.txt\n$/);
    const second = await cli(head, args);
    assertCode(second, 0);
    assert.match(second.stderr, /Working dir .* is on the head already as pkg:\/\//);
    const uri = (s: string) => /pkg:\/\/[0-9a-f]{64}\.zip/.exec(s)![0];
    assert.equal(uri(second.stderr), uri(first.stderr));
    const missing = await cli(head, ["submit", "--working-dir", join(dir, "nope"), "--", "true"]);
    assertOneLineError(missing, /working dir .*nope cannot be read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("jobhead --version prints the version; start --help lists every option with its twin", async () => {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", MAIN_TS, ...args],
      stdin: "null",
    }).output();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
  };
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.deepEqual(await run("--version"), { code: 0, stdout: `jobhead ${denoJson.version}\n` });
  const help = await run("start", "--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: jobhead start/);
  assert.match(
    help.stdout,
    /--data-dir DIR +KV file, logs and run files \(JOBHEAD_DATA_DIR, default \.\/\.jobhead\)/,
  );
});

Deno.test("job list pages with --limit and --cursor, and filters by --metadata", async () => {
  await using head = await startHead();
  for (const [id, owner] of [["l-1", "alice"], ["l-2", "bob"], ["l-3", "alice"]]) {
    await submitJob(head, { entrypoint: "true", submission_id: id, metadata: { owner } });
    await waitForStatus(head, id, ["SUCCEEDED"]);
  }
  const ids = (result: CliResult) =>
    JSON.parse(result.stdout).map((j: { job_id: string }) => j.job_id);
  const first = await cli(head, ["list", "--json", "--limit", "2"]);
  assertCode(first, 0);
  assert.deepEqual(ids(first), ["l-3", "l-2"]);
  const cursor = /--cursor (\S+)/.exec(first.stderr)?.[1];
  assert.ok(cursor, first.stderr);
  const second = await cli(head, ["list", "--json", "--limit", "2", "--cursor", cursor]);
  assert.deepEqual(ids(second), ["l-1"]);
  assert.doesNotMatch(second.stderr, /--cursor/);
  const alice = await cli(head, ["list", "--json", "--metadata", "owner=alice"]);
  assert.deepEqual(ids(alice), ["l-3", "l-1"]);
  assertCode(await cli(head, ["list", "--limit", "0"]), 2);
  assertCode(await cli(head, ["list", "--metadata", "owner"]), 2);
});

Deno.test("job logs --tail prints the last lines, and with --follow goes on from there", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("more");
  await using head = await startHead();
  const id = await submitJob(head, {
    entrypoint: `seq 1 100000; read x <${q(fifos.path("more"))}; echo after`,
  });
  // Polled: log lines are not events (a tail would carry all 100000 of them).
  await waitFor("the first 100000 lines", async () => {
    const res = await head.json(`/api/jobs/${id}/logs?offset=-7&limit=7`);
    return res.body.logs === "100000\n";
  });
  const last = await cli(head, ["logs", id, "--tail", "3"]);
  assertCode(last, 0);
  assert.equal(last.stdout, "99998\n99999\n100000\n");
  const follow = startCli(head, ["logs", id, "--tail", "2", "--follow"]);
  await follow.stdoutHas("100000\n");
  await fifos.send("more");
  const followed = await follow.result;
  assertCode(followed, 0);
  assert.equal(followed.stdout, "99999\n100000\nafter\n");
  assertCode(await cli(head, ["logs", id, "--raw", "--follow"]), 2);
});

Deno.test("answering n to 'Stop job?' after Ctrl-C on a terminal keeps following", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  await using head = await startHead();
  // `script` gives the CLI a terminal: Ctrl-C typed into it reaches the CLI as SIGINT.
  // `exec` leaves the CLI alone in the terminal's process group: a shell waiting for it
  // there (dash does) would die of that SIGINT, and `script` would report its 130.
  const command = "exec " + [
    Deno.execPath(),
    "run",
    "--allow-all",
    MAIN_TS,
    "job",
    "submit",
    "--submission-id",
    "asked",
    "--",
    `echo started; read x <${q(fifos.path("go"))}; echo finished`,
  ]
    .map(q).join(" ");
  const child = new Deno.Command("script", {
    args: ["-q", "-e", "-c", command, "/dev/null"],
    env: { JOBHEAD_ADDRESS: head.url, NO_COLOR: "1", TERM: "dumb" },
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let screen = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  const reading = (async () => {
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      screen += text;
      for (const waiter of waiters.filter((w) => screen.includes(w.text))) waiter.resolve();
    }
  })();
  const shows = (text: string) =>
    withTimeout(
      new Promise<void>((resolve) => {
        if (screen.includes(text)) resolve();
        else waiters.push({ text, resolve });
      }),
      HANG_GUARD_MS,
      `the terminal to show ${JSON.stringify(text)}: ${JSON.stringify(screen)}`,
    );
  const keys = child.stdin.getWriter();
  await shows("started");
  await keys.write(new TextEncoder().encode("\x03"));
  await shows("Stop job 'asked'?");
  await keys.write(new TextEncoder().encode("n\r"));
  await shows("Still following job 'asked'");
  await fifos.send("go");
  await shows("finished");
  // The keyboard stays open until the CLI has exited: closing it first makes `script`
  // type an end-of-file into the terminal while the CLI is still winding down.
  const status = await withTimeout(child.status, HANG_GUARD_MS, "the CLI to exit");
  await keys.close().catch(() => {});
  await reading;
  assert.equal(status.code, 0, screen);
  assert.match(screen, /Job 'asked' succeeded/);
  assert.equal((await head.json("/api/jobs/asked")).body.status, "SUCCEEDED");
});

/** Runs `deno task …` from `cwd` as a user would, outside the checkout; the task's own group. */
function denoTask(cwd: string, args: string[], env: Record<string, string> = {}) {
  // `deno task` keeps an INIT_CWD it inherits (this suite may run under one): drop it.
  const inherited = Deno.env.toObject();
  delete inherited.INIT_CWD;
  return new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "--config", CONFIG, ...args],
    cwd,
    clearEnv: true,
    env: { ...inherited, NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

const CONFIG = new URL("../deno.json", import.meta.url).pathname;

Deno.test("paths are the user's: --working-dir . and --module ./m.ts from another directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-user-cwd-" });
  try {
    await Deno.writeTextFile(join(dir, "marker.txt"), "from the user's directory\n");
    await Deno.writeTextFile(
      join(dir, "m.ts"),
      `export function createModule() {
  return { name: "mine", minimal: true, snapshot: () => ({ here: true }) };
}`,
    );
    const head = denoTask(dir, [
      "start",
      "--port",
      "0",
      "--data-dir",
      "data",
      "--module",
      "./m.ts",
    ]);
    const lines = head.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let printed = "";
    while (!/listening on (\S+)/.test(printed)) {
      const { value, done } = await withTimeout(lines.read(), HANG_GUARD_MS, "the head to listen");
      if (done) break;
      printed += value;
    }
    const url = /listening on (\S+)/.exec(printed)?.[1];
    try {
      assert.ok(url, printed);
      const snapshot = await (await fetch(`${url}/api/snapshot`)).json();
      assert.deepEqual(snapshot.data.snapshot.mine, { here: true });
      assert.ok(
        (await Deno.stat(join(dir, "data", "jobhead.kv"))).isFile,
        "data dir is the user's",
      );
      const submit = denoTask(dir, [
        "jobhead",
        "job",
        "submit",
        "--working-dir",
        ".",
        "--",
        "cat marker.txt",
      ], { JOBHEAD_ADDRESS: url! });
      const [out, err] = await Promise.all([
        new Response(submit.stdout).text(),
        new Response(submit.stderr).text(),
        submit.status,
      ]);
      assert.equal(out, "from the user's directory\n", err);
    } finally {
      Deno.kill(-head.pid, "SIGTERM");
      await lines.cancel();
      await head.stderr.cancel();
      await head.status;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a head on 0.0.0.0 also prints an address a browser can open", async () => {
  await using head = await startHead({ host: "0.0.0.0", token: "t" });
  const port = new URL(head.url).port;
  // The line after the ready line: the harness returns at the ready line.
  const stdout = await head.waitForOutput(/jobhead: open/, "stdout");
  assert.match(stdout, new RegExp(`jobhead: open http://127\\.0\\.0\\.1:${port}/ `));
});

Deno.test("job logs --raw prints the log's exact bytes, binary included", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: `printf 'a\\001\\377\\000\\303b\\n'` });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN_TS, "job", "logs", id, "--raw"],
    env: { JOBHEAD_ADDRESS: head.url, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual([...out.stdout], [0x61, 0x01, 0xff, 0x00, 0xc3, 0x62, 0x0a]);
});

Deno.test("job submit asks for resources; list says why a job waits; cluster shows the use", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({
    extraArgs: ["--num-cpus", "1", "--memory", "4G", "--resources", '{"license":2}'],
  });
  for (const id of ["first", "second"]) {
    const go = await fifos.make(`go-${id}`);
    const submitted = await cli(head, [
      "submit",
      "--no-wait",
      `--submission-id=${id}`,
      "--num-cpus=1",
      "--memory=1G",
      '--resources={"license":1}',
      "--priority=2",
      "--",
      `read x <${q(go)}`,
    ]);
    assertCode(submitted, 0);
  }
  await waitForStatus(head, "first", ["RUNNING"]);
  const second = (await head.json("/api/jobs/second")).body;
  assert.equal(second.status, "PENDING", "one CPU: the second job waits");
  assert.deepEqual(
    [second.entrypoint_num_cpus, second.entrypoint_memory, second.entrypoint_resources],
    [1, 1024 ** 3, { license: 1 }],
  );
  assert.equal(second.priority, 2);

  const listed = await cli(head, ["list"]);
  assertCode(listed, 0);
  assert.match(listed.stdout, /^SUBMISSION ID .* RESOURCES +ENTRYPOINT$/m);
  assert.match(listed.stdout, /^first +RUNNING .* 1 CPU · 1 GiB · 1 license +read x/m);
  assert.match(
    listed.stdout,
    /^second +PENDING .* 1 CPU · 1 GiB · 1 license +read x.*\n {2}↳ Waiting for resources: needs CPU 1, 0 of 1 free; 0 jobs ahead$/m,
  );

  const status = await cli(head, ["status", "second"]);
  assert.match(status.stdout, /^Status message: Waiting for resources: needs CPU 1, 0 of 1 free/m);
  assert.match(status.stdout, /^Resources: 1 CPU · 1 GiB · 1 license, priority 2$/m);

  const cluster = await startMain(head, ["cluster"]).result;
  assertCode(cluster, 0);
  assert.match(cluster.stdout, /^Node \S+: ALIVE, last heartbeat \d{4}-/m);
  assert.match(cluster.stdout, /^ {2}CPU +1\/1 used$/m);
  assert.match(cluster.stdout, /^ {2}memory +1\.0\/4\.0 GiB used$/m);
  assert.match(cluster.stdout, /^ {2}license +1\/2 used$/m);
  assert.match(cluster.stdout, /^ {2}Jobs: 1 running, 1 pending$/m);
  assert.match(cluster.stdout, /^Cluster: 1 running, 1 pending$/m);
  const json = await startMain(head, ["cluster", "--json"]).result;
  assertCode(json, 0);
  const state = JSON.parse(json.stdout);
  assert.deepEqual([state.running, state.pending, state.nodes[0].used.CPU], [1, 1, 1]);

  // The first one ends: its CPU goes to the second.
  await fifos.send("go-first");
  await waitForStatus(head, "first", ["SUCCEEDED"]);
  await waitForStatus(head, "second", ["RUNNING"]);
  const after = await startMain(head, ["cluster"]).result;
  assert.match(after.stdout, /^Cluster: 1 running, 0 pending$/m);
  await fifos.send("go-second");
  await waitForStatus(head, "second", ["SUCCEEDED"]);
});

Deno.test("cluster --help, and a bad argument or an unreachable head in one line", async () => {
  const help = await startMain(undefined, ["cluster", "--help"]).result;
  assertCode(help, 0);
  assert.match(help.stdout, /^Usage: jobhead cluster \[--json\]/);
  const extra = await startMain(undefined, ["cluster", "nodes"]).result;
  assertCode(extra, 2);
  assert.match(extra.stderr, /cluster takes no arguments/);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = listener.addr.port;
  listener.close();
  const unreachable = await startMain(undefined, ["cluster"], {
    JOBHEAD_ADDRESS: `http://127.0.0.1:${closedPort}`,
  }).result;
  assertOneLineError(unreachable, /connection refused: is it running\?/);
});

Deno.test("job submit --help says the job's stdin is /dev/null, and it is", async () => {
  const help = await startCli(undefined, ["submit", "--help"]).result;
  assertCode(help, 0);
  assert.match(help.stdout.replaceAll("\n", " "), /The job's stdin is \/dev\/null/);
  await using head = await startHead();
  const submitted = await startCli(head, ["submit", "--", "readlink /proc/self/fd/0"]).result;
  assertCode(submitted, 0);
  assert.match(submitted.stdout, /^\/dev\/null$/m);
});
