/**
 * End to end: a data directory on a full disk. Runs on a small tmpfs of its own, which
 * needs the right to mount (root); skipped with a message where mounting is refused.
 */
import assert from "node:assert/strict";
import { isAlive, startHead, TEST_STORE, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertError, jobLogs, q, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";

Deno.test({
  name: "jobs that end on a full disk reach their true outcome once space is back",
  // The store must be on the full disk: on PostgreSQL it is elsewhere.
  ignore: TEST_STORE === "postgres",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async (t) => {
    const dataDir = await Deno.makeTempDir({ prefix: "jobhead-full-" });
    try {
      const mount = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=4m", "tmpfs", dataDir],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!mount.success) {
        const why = new TextDecoder().decode(mount.stderr).trim();
        console.warn(`skipped: cannot mount a tmpfs to fill (${why})`);
        await t.step({ name: "needs a tmpfs mount", ignore: true, fn: () => {} });
        return;
      }
      try {
        await fillAndFree(dataDir);
      } finally {
        const umount = await new Deno.Command("umount", { args: [dataDir] }).output();
        assert.ok(umount.success, `umount ${dataDir} failed`);
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

async function fillAndFree(dataDir: string): Promise<void> {
  await using fifos = await Fifos.create();
  await using head = await startHead({ dataDir });
  const aliveA = await fifos.reader("a.alive");
  const aliveB = await fifos.reader("b.alive");
  for (const name of ["a.go", "b.go"]) await fifos.make(name);
  // A writes its first line before it opens its FIFO: once that is open, the line is logged.
  const a = await submitJob(head, {
    submission_id: "ends-ok",
    entrypoint: `echo before; exec 3>${q(aliveA.path)}; read x <${q(fifos.path("a.go"))}; ` +
      `i=0; while [ $i -lt 5000 ]; do echo "line $i"; i=$((i+1)); done; exit 0`,
  });
  const b = await submitJob(head, {
    submission_id: "ends-3",
    entrypoint: `exec 3>${q(aliveB.path)}; read x <${q(fifos.path("b.go"))}; exit 3`,
  });
  for (const reader of [aliveA, aliveB]) await reader.opened();
  const supervisors: number[] = [];
  for (const id of [a, b]) {
    supervisors.push(Number((await waitForStatus(head, id, ["RUNNING"])).driver_info.pid));
  }
  assert.equal(await jobLogs(head, a), "before\n");

  const filler = `${dataDir}/filler`;
  await fill(filler);
  const refused = await head.json("/api/jobs/", {
    method: "POST",
    body: { entrypoint: "true", submission_id: "on-full-disk" },
  });
  assertError(refused, 507, "INSUFFICIENT_STORAGE", "disk of the data directory is full");
  assertError(await head.json("/api/jobs/on-full-disk"), 404, "NOT_FOUND");

  // Both jobs end while nothing can be written: their exit files stay empty, their
  // output is lost, and the store refuses their outcome until space is back.
  await fifos.send("a.go");
  await fifos.send("b.go");
  await aliveA.eof();
  await aliveB.eof();
  for (const pid of supervisors) {
    // Polled: nothing announces that a process is gone.
    await waitFor(`supervisor ${pid} to end`, async () => !await isAlive(pid));
  }
  for (const id of [a, b]) {
    const exitFile = await Deno.readTextFile(`${dataDir}/run/jobsup_${id}.exit`);
    assert.equal(exitFile, "", "the supervisor could write its exit file: the disk was not full");
    // Ended, and known to the head, which cannot store it yet.
    assert.equal((await waitForStatus(head, id, ["RUNNING"])).end_time, null);
  }
  await Deno.remove(filler);

  const jobA = await waitForStatus(head, a, ["SUCCEEDED"]);
  assert.equal(jobA.driver_exit_code, 0);
  assert.match(jobA.message, /^Job finished successfully\.\n\[jobhead: the disk of the data/);
  assert.match(jobA.message, /output the job wrote then may be missing from its log\]$/);
  const logA = await jobLogs(head, a);
  assert.ok(!logA.includes("line 4999\n"), "nothing of the output was lost: the disk was not full");
  const jobB = await waitForStatus(head, b, ["FAILED"]);
  assert.equal(jobB.driver_exit_code, 3);
  assert.equal(jobB.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
  assert.match(jobB.message, /exit code 3/);
  const later = await submitJob(head, { entrypoint: "echo fine", submission_id: "on-full-disk" });
  await waitForStatus(head, later, ["SUCCEEDED"]);
  assert.equal(await jobLogs(head, later), "fine\n");
}

/** Writes `path` until the disk is full. */
async function fill(path: string): Promise<void> {
  using file = await Deno.open(path, { write: true, createNew: true });
  const block = new Uint8Array(64 * 1024);
  try {
    for (;;) await file.write(block);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  }
  // The last blocks: smaller writes take what a block-sized one could not.
  for (const size of [4096, 512, 1]) {
    try {
      for (;;) await file.write(new Uint8Array(size));
    } catch {
      // full at this size
    }
  }
}
