/** End to end: stopping jobs kills everything they started, and only once. */
import assert from "node:assert/strict";
import { isAlive, processInfo, startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertError, assertNoJobProcesses, q, stopJob, submitJob, tailLog } from "./helpers.ts";
import { makeZip } from "./zip.ts";
import { canUseCgroups, cgroupOfHead } from "./cgroups.ts";

/** Whether stops must go through cgroups on this machine. */
const cgroupsUsable = await canUseCgroups();

/**
 * A stop grace no test waits out: a job still there after SIGTERM outlives every wait, so a
 * test that expects it gone by SIGTERM (or by its own shorter grace) fails instead.
 */
const NEVER = ["--stop-wait-s", "100000"];

Deno.test("stop of a RUNNING job kills its grandchildren and ends STOPPED", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: NEVER });
  const alive = await fifos.reader("alive");
  const grandchild = await fifos.reader("grandchild");
  const id = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; ` +
      `sh -c 'sleep 1000 & echo $! >${q(grandchild.path)}; wait' & wait`,
  });
  const pid = Number(await grandchild.text());
  assert.ok(await isAlive(pid));
  await waitForStatus(head, id, ["RUNNING"]);

  assert.equal(await stopJob(head, id), true);
  await alive.eof();
  const job = await waitForStatus(head, id, ["STOPPED"]);
  assert.equal(job.message, "Job was intentionally stopped.");
  assert.equal(job.error_type, null);
  assert.equal(typeof job.end_time, "number");
  assert.equal(await isAlive(pid), false);
  await assertNoJobProcesses(head, id);

  assert.equal(await stopJob(head, id), false, "a second stop finds it terminal");
  assert.equal((await waitForStatus(head, id, ["STOPPED"])).status, "STOPPED");
});

Deno.test("a job that exits 0 on SIGTERM still ends STOPPED", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const alive = await fifos.reader("alive");
  const ready = await fifos.reader("ready");
  const id = await submitJob(head, {
    entrypoint: `trap 'exit 0' TERM; exec 3>${q(alive.path)}; echo ready >${q(ready.path)}; ` +
      `while :; do sleep 1000 & wait; done`,
  });
  await ready.text();
  await waitForStatus(head, id, ["RUNNING"]);
  assert.equal(await stopJob(head, id), true);
  await alive.eof();
  const job = await waitForStatus(head, id, ["STOPPED"]);
  assert.equal(job.error_type, null);
  await assertNoJobProcesses(head, id);
});

Deno.test("stop of a terminal job answers stopped: false and changes nothing", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "true" });
  const before = await waitForStatus(head, id, ["SUCCEEDED"]);
  assert.equal(await stopJob(head, id), false);
  const after = await waitForStatus(head, id, ["SUCCEEDED"]);
  assert.equal(after.end_time, before.end_time);
  assert.equal(after.message, "Job finished successfully.");

  const res = await head.json("/api/jobs/no-such-job/stop", { method: "POST" });
  assertError(res, 404, "NOT_FOUND");
  assert.equal(res.body.error.message, "Job no-such-job does not exist");
});

Deno.test("a job stopped while PENDING ends STOPPED and never runs", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  // A job is PENDING while its working_dir package is extracted; a package of many
  // files keeps it there long enough for a stop sent right after the submit to land.
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 300; i++) files[`data/${i}.bin`] = new Uint8Array(1024);
  const put = await head.fetch("/api/packages/pkg/many-files.zip", {
    method: "PUT",
    body: await makeZip(files),
  });
  assert.equal(put.status, 200, await put.text());

  const marker = fifos.path("ran");
  const id = await submitJob(head, {
    entrypoint: `touch ${q(marker)}; exec sleep 1000`,
    runtime_env: { working_dir: "pkg://many-files.zip" },
  });
  const logs = await head.json(`/api/jobs/${id}/logs`);
  assert.equal(logs.status, 200, JSON.stringify(logs.body));
  assert.equal(logs.body.logs, "");
  assert.equal(await stopJob(head, id), true);
  const job = await waitForStatus(head, id, ["STOPPED"]);
  assert.equal(job.message, "Job was intentionally stopped.");
  assert.equal(typeof job.end_time, "number");
  const tail = await tailLog(head, id);
  assert.equal(tail.code, 1000);
  assert.equal(tail.text, "");
  assert.equal(job.driver_info, null, "the job had started: the stop did not land while PENDING");

  // Once a later job with the same package has run, the stopped one had every chance to start.
  const later = await submitJob(head, {
    entrypoint: "test -d data && echo extracted",
    runtime_env: { working_dir: "pkg://many-files.zip" },
  });
  await waitForStatus(head, later, ["SUCCEEDED"]);
  assert.equal((await waitForStatus(head, id, ["STOPPED"])).driver_info, null);
  await assert.rejects(Deno.stat(marker), Deno.errors.NotFound, "the stopped job ran");
  await assertNoJobProcesses(head, id);
});

Deno.test("a TERM-ignoring job is SIGKILLed after JOBHEAD_STOP_WAIT_S", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: NEVER });
  const alive = await fifos.reader("alive");
  const ready = await fifos.reader("ready");
  const terms = fifos.path("terms");
  const id = await submitJob(head, {
    entrypoint: `trap 'echo TERM >>${q(terms)}' TERM; exec 3>${q(alive.path)}; ` +
      `(trap '' TERM; exec sleep 1000) & echo ready >${q(ready.path)}; ` +
      `while :; do wait; done`,
    runtime_env: { env_vars: { JOBHEAD_STOP_WAIT_S: "1" } },
  });
  assert.equal(await ready.text(), "ready\n");
  await waitForStatus(head, id, ["RUNNING"]);

  const t0 = performance.now();
  assert.equal(await stopJob(head, id), true);
  const gone = await alive.eof(); // with the head's grace, it would not come
  const took = gone.at - t0;
  assert.ok(took >= 900, `killed after ${took} ms, before the 1 s grace`);
  assert.match(await Deno.readTextFile(terms), /^TERM\n/, "SIGTERM came first");
  await waitForStatus(head, id, ["STOPPED"]);
  await assertNoJobProcesses(head, id);
});

Deno.test("stop kills a process that left the job's group with setsid", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const alive = await fifos.reader("alive");
  const escapee = await fifos.reader("escapee");
  const id = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; ` +
      `setsid sh -c 'echo $$ >${q(escapee.path)}; exec sleep 1000' & exec sleep 1000`,
  });
  const pid = Number(await escapee.text());
  const info = await processInfo(pid);
  assert.equal(info?.sid, pid, "the escapee leads its own session");
  await waitForStatus(head, id, ["RUNNING"]);

  assert.equal(await stopJob(head, id), true);
  await alive.eof();
  await waitForStatus(head, id, ["STOPPED"]);
  assert.equal(await isAlive(pid), false, "the setsid escapee survived the stop");
  await assertNoJobProcesses(head, id);
});

Deno.test("processes left in the group when the entrypoint exits are cleaned up", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const alive = await fifos.reader("alive");
  const straggler = await fifos.reader("straggler");
  const id = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; sleep 1000 & echo $! >${q(straggler.path)}; exit 0`,
  });
  const pid = Number(await straggler.text());
  await alive.eof();
  const job = await waitForStatus(head, id, ["SUCCEEDED"]);
  assert.equal(job.driver_exit_code, 0);
  assert.equal(await isAlive(pid), false);
  await assertNoJobProcesses(head, id);
});

Deno.test("a TERM-ignoring straggler left after the entrypoint exits is killed too", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const alive = await fifos.reader("alive");
  const straggler = await fifos.reader("straggler");
  const id = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; (trap '' TERM; exec sleep 1000) & ` +
      `echo $! >${q(straggler.path)}; exit 3`,
    runtime_env: { env_vars: { JOBHEAD_STOP_WAIT_S: "0.5" } },
  });
  const pid = Number(await straggler.text());
  await alive.eof();
  const job = await waitForStatus(head, id, ["FAILED"]);
  assert.equal(job.driver_exit_code, 3);
  assert.equal(await isAlive(pid), false);
  await assertNoJobProcesses(head, id);
});

Deno.test({
  name: "with cgroups, stop kills processes that cleared their environment and left the group",
  ignore: !cgroupsUsable,
  async fn() {
    await using fifos = await Fifos.create();
    await using head = await startHead();
    const parent = cgroupOfHead(head.output().stderr);
    assert.ok(parent, `no cgroup line: ${head.output().stderr}`);
    const [alive, cleared, unmarked, terms] = await Promise.all(
      ["alive", "cleared", "unmarked", "terms"].map((name) => fifos.reader(name)),
    );
    await fifos.make("go");
    const id = await submitJob(head, {
      entrypoint: `exec 3>${q(alive.path)}; ` +
        `env -i setsid sh -c 'trap "echo TERM >${terms.path}; exit 0" TERM; ` +
        `echo $$ >${cleared.path}; sleep 1000 & wait' & ` +
        `(unset JOBHEAD_ACTOR_ID; setsid sh -c 'echo $$ >${unmarked.path}; exec sleep 1000') & ` +
        // The grace is the entrypoint's: it ends only once the test has seen the escapee's
        // TERM, as whatever is left in the cgroup is killed when it ends.
        `trap 'read x <${fifos.path("go")}; exit 0' TERM; while :; do sleep 1000 & wait; done`,
      runtime_env: { env_vars: { JOBHEAD_STOP_WAIT_S: "60" } },
    });
    const pids = [Number(await cleared.text()), Number(await unmarked.text())];
    try {
      await waitForStatus(head, id, ["RUNNING"]);
      const cgroup = `${parent}/actor-jobsup_${id}`;
      const inCgroup = await Deno.readTextFile(`${cgroup}/cgroup.procs`);
      for (const pid of pids) assert.ok(inCgroup.split("\n").includes(String(pid)));

      assert.equal(await stopJob(head, id), true);
      assert.equal(await terms.text(), "TERM\n", "SIGTERM reached the escapee first");
      await fifos.send("go");
      await alive.eof();
      await waitForStatus(head, id, ["STOPPED"]);
      for (const pid of pids) assert.equal(await isAlive(pid), false, `escapee ${pid} survived`);
      await assertNoJobProcesses(head, id);
    } finally {
      for (const pid of pids) if (await isAlive(pid)) Deno.kill(pid, "SIGKILL");
    }
  },
});

Deno.test("with --cgroup off, the head says stops use markers, and a cleared escapee survives (documented)", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: ["--cgroup", "off"] });
  assert.match(
    head.output().stderr,
    /^jobhead: stops use environment markers only: processes that clear their environment and leave the group can escape$/m,
  );
  const cleared = await fifos.reader("cleared");
  const marked = await fifos.reader("marked");
  const id = await submitJob(head, {
    entrypoint: `env -i setsid sh -c 'echo $$ >${cleared.path}; exec sleep 1000' & ` +
      `setsid sh -c 'echo $$ >${marked.path}; exec sleep 1000' & exec sleep 1000`,
  });
  const escapee = Number(await cleared.text());
  const markedPid = Number(await marked.text());
  try {
    await waitForStatus(head, id, ["RUNNING"]);
    assert.equal(await stopJob(head, id), true);
    await waitForStatus(head, id, ["STOPPED"]);
    await assertNoJobProcesses(head, id);
    assert.equal(await isAlive(markedPid), false, "a marked escapee is swept");
    assert.equal(await isAlive(escapee), true, "the README says this one escapes");
  } finally {
    if (await isAlive(escapee)) Deno.kill(escapee, "SIGKILL");
  }
});

for (const cgroup of ["auto", "off"]) {
  Deno.test(`a stop sends SIGTERM once to each process, in the job's group or out of it (--cgroup ${cgroup})`, async () => {
    await using fifos = await Fifos.create();
    await using head = await startHead({ extraArgs: ["--cgroup", cgroup] });
    const alive = await fifos.reader("alive");
    const ready = await fifos.reader("ready");
    const escapee = await fifos.reader("escapee");
    const terms = fifos.path("terms");
    // The entrypoint's shell notes each SIGTERM and lives on until SIGKILLed after the grace;
    // the escapee (a session of its own) notes its SIGTERM and ends.
    const id = await submitJob(head, {
      entrypoint: `exec 3>${q(alive.path)}; ` +
        `setsid sh -c 'trap "echo escapee >>${terms}; exit 0" TERM; echo $$ >${escapee.path}; ` +
        `sleep 1000 & wait' & ` +
        `trap 'echo group >>${q(terms)}' TERM; echo ready >${q(ready.path)}; ` +
        `while :; do sleep 1000 & wait; done`,
      runtime_env: { env_vars: { JOBHEAD_STOP_WAIT_S: "1" } },
    });
    const pid = Number(await escapee.text());
    assert.equal(await ready.text(), "ready\n");
    await waitForStatus(head, id, ["RUNNING"]);

    assert.equal(await stopJob(head, id), true);
    await alive.eof();
    await waitForStatus(head, id, ["STOPPED"]);
    const lines = (await Deno.readTextFile(terms)).split("\n").filter(Boolean).sort();
    assert.deepEqual(lines, ["escapee", "group"]);
    assert.equal(await isAlive(pid), false);
    await assertNoJobProcesses(head, id);
  });
}
