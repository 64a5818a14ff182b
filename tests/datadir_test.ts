/**
 * End to end: the data directory is private, belongs to one head at a time, and a
 * damaged or emptied KV file is named, recovered from, and never mixes two jobs' logs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunningHead, startHead, TEST_STORE, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertNoJobProcesses, jobLogs, q, stopJob, submitJob } from "./helpers.ts";
import { makeZip } from "./zip.ts";

const sanitize = { sanitizeOps: true, sanitizeResources: true };

/** The permission bits of `path`. */
async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

/** Paths of the files named `name` anywhere under `dir`. */
async function findFiles(dir: string, name: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await findFiles(path, name));
    else if (entry.name === name) found.push(path);
  }
  return found;
}

/** The umask a child of this test process starts with, as `sh` reports it. */
async function childUmask(): Promise<number> {
  const { stdout } = await new Deno.Command("sh", { args: ["-c", "umask"] }).output();
  return parseInt(new TextDecoder().decode(stdout).trim(), 8);
}

/** Starts a head that must fail; returns what the harness says about its exit. */
async function failedStart(options: Parameters<typeof startHead>[0]): Promise<string> {
  let head: RunningHead | undefined;
  try {
    head = await startHead(options);
  } catch (err) {
    return (err as Error).message;
  }
  await head[Symbol.asyncDispose]();
  assert.fail("the head started");
}

/** Some bytes that are no SQLite database: the same every run. */
function garbage(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = 12345;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    bytes[i] = x >> 16;
  }
  return bytes;
}

async function tempParent(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "jobhead-datadir-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test({
  name: "a new data directory is 0700, the KV files and a job's log 0600; jobs keep the umask",
  ignore: TEST_STORE === "postgres", // about the KV file, which PostgreSQL replaces
  ...sanitize,
  fn: async () => {
    await using parent = await tempParent();
    const dataDir = join(parent.path, "data");
    const workDir = join(parent.path, "work");
    await Deno.mkdir(workDir);
    await using head = await startHead({ dataDir });
    const id = await submitJob(head, {
      entrypoint: "touch own-file && umask",
      runtime_env: { working_dir: workDir },
    });
    await waitForStatus(head, id, ["SUCCEEDED"]);
    const put = await head.fetch("/api/packages/pkg/modes.zip", {
      method: "PUT",
      body: await makeZip({ "a.txt": "a" }),
    });
    assert.equal(put.status, 200, await put.text());
    const packages = await findFiles(join(dataDir, "packages"), "modes.zip");
    assert.equal(packages.length, 1, `stored package: ${packages}`);

    const modes = {
      dataDir: await modeOf(dataDir),
      kv: await modeOf(join(dataDir, "jobhead.kv")),
      wal: await modeOf(join(dataDir, "jobhead.kv-wal")),
      shm: await modeOf(join(dataDir, "jobhead.kv-shm")),
      lock: await modeOf(join(dataDir, "jobhead.lock")),
      logs: await modeOf(join(dataDir, "logs")),
      run: await modeOf(join(dataDir, "run")),
      log: await modeOf(join(dataDir, "logs", `${id}.log`)),
      package: await modeOf(packages[0]),
    };
    assert.deepEqual(Object.fromEntries(Object.entries(modes).map(([k, m]) => [k, octal(m)])), {
      dataDir: "0700",
      kv: "0600",
      wal: "0600",
      shm: "0600",
      lock: "0600",
      logs: "0700",
      run: "0700",
      log: "0600",
      package: "0600",
    });
    // The job's own files follow the umask the head was started with, untouched.
    const umask = await childUmask();
    assert.equal(parseInt((await jobLogs(head, id)).trim(), 8), umask);
    assert.equal(octal(await modeOf(join(workDir, "own-file"))), octal(0o666 & ~umask));
  },
});

Deno.test({
  name: "a data directory made with looser modes gets private subdirectories and KV file",
  ignore: TEST_STORE === "postgres", // about the KV file, which PostgreSQL replaces
  ...sanitize,
  fn: async () => {
    await using parent = await tempParent();
    const dataDir = join(parent.path, "data");
    const first = await startHead({ dataDir });
    await first[Symbol.asyncDispose]();
    // As an earlier version left it.
    for (const name of ["", "logs", "run", "packages", "working_dirs"]) {
      await Deno.chmod(join(dataDir, name), 0o755);
    }
    await Deno.chmod(join(dataDir, "jobhead.kv"), 0o644);

    const head = await startHead({ dataDir });
    await head[Symbol.asyncDispose](); // then its output has been read to the end
    assert.equal(octal(await modeOf(join(dataDir, "jobhead.kv"))), "0600");
    for (const name of ["logs", "run", "packages", "working_dirs"]) {
      assert.equal(octal(await modeOf(join(dataDir, name))), "0700", name);
    }
    // The directory itself may be shared: it is left as it is, with a warning.
    assert.equal(octal(await modeOf(dataDir)), "0755");
    assert.match(head.output().stderr, /data directory .* is mode 0755: other users may list it/);
  },
});

Deno.test({
  name: "--data-mode 0750 lets the group read: directories 0750, files 0640",
  ignore: TEST_STORE === "postgres", // about the KV file, which PostgreSQL replaces
  ...sanitize,
  fn: async () => {
    await using parent = await tempParent();
    const dataDir = join(parent.path, "data");
    await using head = await startHead({ dataDir, extraArgs: ["--data-mode", "0750"] });
    const id = await submitJob(head, { entrypoint: "echo hi" });
    await waitForStatus(head, id, ["SUCCEEDED"]);
    assert.equal(octal(await modeOf(dataDir)), "0750");
    assert.equal(octal(await modeOf(join(dataDir, "logs"))), "0750");
    assert.equal(octal(await modeOf(join(dataDir, "jobhead.kv"))), "0640");
    const umask = await childUmask();
    assert.equal(
      octal(await modeOf(join(dataDir, "logs", `${id}.log`))),
      octal(0o640 & ~umask),
    );
  },
});

Deno.test({
  name: "a second head on the data directory exits 1 naming the first; jobs do not hold the lock",
  ...sanitize,
  fn: async () => {
    await using fifos = await Fifos.create();
    await using first = await startHead();
    const alive = await fifos.reader("alive");
    const listed = await fifos.reader("listed");
    const id = await submitJob(first, {
      entrypoint: `exec 3>${q(alive.path)}; ls -l /proc/$$/fd; echo >${q(listed.path)}; ` +
        `exec sleep 1000`,
    });
    await listed.text();
    const fds = await jobLogs(first, id);
    assert.match(fds, /alive/, "the listing shows the job's own descriptors");
    assert.doesNotMatch(fds, /jobhead\.(lock|kv)/, `a job inherited the head's files:\n${fds}`);

    const refused = await failedStart({ dataDir: first.dataDir });
    assert.equal(
      refused,
      "head exited with code 1 before listening:\n" +
        `jobhead: data directory ${first.dataDir} is in use by pid ${first.pid}\n`,
    );

    // The job still runs; the lock died with its head all the same.
    await first.kill("SIGKILL");
    await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
    await waitForStatus(second, id, ["RUNNING"]);
    assert.equal(await stopJob(second, id), true);
    await alive.eof();
    await waitForStatus(second, id, ["STOPPED"]);
    await assertNoJobProcesses(second, id);
  },
});

Deno.test({
  name: "a damaged KV file stops the head with a message naming it and --recover",
  ignore: TEST_STORE === "postgres", // about the KV file, which PostgreSQL replaces
  ...sanitize,
  fn: async () => {
    await using parent = await tempParent();
    const dataDir = join(parent.path, "data");
    const kvPath = join(dataDir, "jobhead.kv");
    // Garbage bytes: SQLite refuses to open them.
    await Deno.mkdir(dataDir);
    const bytes = garbage(64 * 1024);
    await Deno.writeFile(kvPath, bytes);
    const message = await failedStart({ dataDir });
    assert.match(message, /^head exited with code 1 before listening:\n/);
    assert.ok(
      message.includes(`the KV file ${kvPath} is damaged (file is not a database)`),
      message,
    );
    assert.ok(message.includes("--recover"), message);
    assert.deepEqual(await Deno.readFile(kvPath), bytes, "the damaged file is left as it was");

    // A real KV file cut short.
    await Deno.remove(dataDir, { recursive: true });
    const head = await startHead({ dataDir });
    for (let i = 0; i < 20; i++) await submitJob(head, { entrypoint: "true" });
    await head[Symbol.asyncDispose](); // a clean close folds the WAL into the file
    await Deno.truncate(kvPath, 4096);
    const cut = await failedStart({ dataDir });
    assert.ok(cut.includes(`the KV file ${kvPath} is damaged`), cut);
    assert.ok(cut.includes("--recover"), cut);
  },
});

Deno.test({
  name: "--recover moves a damaged KV file aside and takes back a running job until its real end",
  ignore: TEST_STORE === "postgres", // about the KV file, which PostgreSQL replaces
  ...sanitize,
  fn: async () => {
    await using fifos = await Fifos.create();
    await using first = await startHead();
    const alive = await fifos.reader("alive");
    await fifos.make("go");
    const entrypoint = `echo before; exec 3>${q(alive.path)}; read x <${q(fifos.path("go"))}; ` +
      `echo after; exit 3`;
    const runtimeEnv = { env_vars: { GREETING: "hello" } };
    const id = await submitJob(first, {
      submission_id: "lost-record",
      entrypoint,
      runtime_env: runtimeEnv,
      metadata: { owner: "ops" },
    });
    await alive.opened();
    const before = await waitForStatus(first, id, ["RUNNING"]);
    await first.kill("SIGTERM"); // a clean close folds the WAL into the file damaged next

    const kvPath = join(first.dataDir, "jobhead.kv");
    const bytes = garbage(64 * 1024);
    await Deno.writeFile(kvPath, bytes);
    await using second = await startHead({
      dataDir: first.dataDir,
      runId: first.runId,
      extraArgs: ["--recover"],
    }); // disposed early below, then again (a no-op) at the end of the scope
    const aside = [...Deno.readDirSync(first.dataDir)].map((e) => e.name)
      .filter((name) => /^jobhead\.kv\.damaged-\d{8}T\d{6}Z$/.test(name));
    assert.equal(aside.length, 1, `moved aside: ${aside}`);
    assert.deepEqual(await Deno.readFile(join(first.dataDir, aside[0])), bytes);

    const job = await waitForStatus(second, id, ["RUNNING"]);
    assert.match(job.message, /recovered/);
    assert.equal(job.entrypoint, entrypoint);
    assert.deepEqual(job.runtime_env, runtimeEnv);
    assert.equal(job.metadata.owner, "ops");
    assert.equal(job.metadata.job_submission_id, id);
    assert.deepEqual(job.driver_info, before.driver_info);
    // The supervisor's start, known to a clock tick past the boot time's second.
    assert.ok(Math.abs(job.start_time - before.start_time) < 2_000, `${job.start_time}`);

    await fifos.send("go");
    await alive.eof();
    const ended = await waitForStatus(second, id, ["FAILED"]);
    assert.equal(ended.driver_exit_code, 3);
    assert.equal(ended.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
    assert.equal(await jobLogs(second, id), "before\nafter\n", "the log was kept whole");
    await assertNoJobProcesses(second, id);
    await second[Symbol.asyncDispose](); // then its output has been read to the end
    assert.match(second.output().stderr, /took back 1 running job\(s\) .*"lost-record"/);
  },
});

Deno.test({
  name: "a job resubmitted after the KV file was emptied gets a fresh log",
  ignore: TEST_STORE === "postgres", // about the KV file, which PostgreSQL replaces
  ...sanitize,
  fn: async () => {
    await using parent = await tempParent();
    const dataDir = join(parent.path, "data");
    const first = await startHead({ dataDir });
    await submitJob(first, { submission_id: "k1", entrypoint: "echo old" });
    await waitForStatus(first, "k1", ["SUCCEEDED"]);
    await first[Symbol.asyncDispose]();
    for (const suffix of ["", "-wal", "-shm"]) {
      await Deno.remove(join(dataDir, `jobhead.kv${suffix}`)).catch(() => {});
    }

    await using second = await startHead({ dataDir });
    await submitJob(second, { submission_id: "k1", entrypoint: "echo new" });
    await waitForStatus(second, "k1", ["SUCCEEDED"]);
    assert.equal(await jobLogs(second, "k1"), "new\n");
  },
});
