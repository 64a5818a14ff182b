/** End to end: the `job` command line, run as a real process against a real head. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunningHead, startHead, waitForStatus } from "./harness.ts";
import { Fifos, withTimeout } from "./fifos.ts";
import { q, stopJob, submitJob } from "./helpers.ts";

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
  const inherited = Deno.env.toObject();
  for (const key of Object.keys(inherited)) if (key.startsWith("JOBHEAD_")) delete inherited[key];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN_TS, "job", ...args],
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
      return withTimeout(Promise.race([seen, ended]), 15_000, `the CLI to print ${text}`);
    },
    kill: (signal) => child.kill(signal),
    result: withTimeout(result, 30_000, `the CLI to exit: job ${args.join(" ")}`),
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
    /^SUBMISSION ID\s+STATUS\s+SUBMITTED\s+DURATION\s+ENTRYPOINT\nfollowed\s+SUCCEEDED\s/,
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
