/** End to end: parts of the data directory removed while the head runs are made again. */
import assert from "node:assert/strict";
import { startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { exists, jobLogs, q, stopJob, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";

for (const dir of ["logs", "run"]) {
  Deno.test({
    name: `jobs run as before after <data>/${dir} was removed under a running head`,
    sanitizeOps: true,
    sanitizeResources: true,
    fn: async () => {
      await using fifos = await Fifos.create();
      await using head = await startHead();
      const first = await submitJob(head, { entrypoint: "echo first" });
      await waitForStatus(head, first, ["SUCCEEDED"]);

      await Deno.remove(`${head.dataDir}/${dir}`, { recursive: true });
      for (const n of [1, 2]) {
        const id = await submitJob(head, { entrypoint: `echo after-${n}; exit ${n - 1}` });
        const job = await waitForStatus(head, id, n === 1 ? ["SUCCEEDED"] : ["FAILED"]);
        assert.equal(job.driver_exit_code, n - 1, JSON.stringify(job));
        assert.equal(await jobLogs(head, id), `after-${n}\n`);
      }
      // A stop still reaches the group, and its end is seen.
      const ready = await fifos.reader("ready");
      const id = await submitJob(head, {
        entrypoint: `echo ready >${q(ready.path)}; exec sleep 1000`,
      });
      await ready.text();
      await waitForStatus(head, id, ["RUNNING"]);
      assert.equal(await stopJob(head, id), true);
      await waitForStatus(head, id, ["STOPPED"]);
    },
  });
}

Deno.test({
  name: "a job that ends while <data>/run is gone still records its true outcome",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using fifos = await Fifos.create();
    await using head = await startHead();
    const alive = await fifos.reader("alive");
    await fifos.make("go");
    const id = await submitJob(head, {
      entrypoint: `exec 3>${q(alive.path)}; read x <${q(fifos.path("go"))}; echo done; exit 3`,
    });
    await alive.opened();
    await waitForStatus(head, id, ["RUNNING"]);
    // Its exit file cannot be written: the supervisor's report on the launcher's pipe tells.
    await Deno.remove(`${head.dataDir}/run`, { recursive: true });
    await fifos.send("go");
    const job = await waitForStatus(head, id, ["FAILED"]);
    assert.equal(job.error_type, "JOB_ENTRYPOINT_COMMAND_ERROR", JSON.stringify(job));
    assert.equal(job.driver_exit_code, 3);
    assert.equal(await jobLogs(head, id), "done\n");
  },
});

Deno.test({
  name: "an adopted job's end is seen after <data>/run was removed under the head",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using fifos = await Fifos.create();
    await using first = await startHead();
    const alive = await fifos.reader("alive");
    await fifos.make("go");
    const id = await submitJob(first, {
      entrypoint: `exec 3>${q(alive.path)}; read x <${q(fifos.path("go"))}; exit 0`,
    });
    await alive.opened();
    await waitForStatus(first, id, ["RUNNING"]);
    await first.kill("SIGKILL");
    // The next head adopts the job: it is not its parent, so only the exit file tells.
    await using second = await startHead({ dataDir: first.dataDir, runId: first.runId });
    await waitForStatus(second, id, ["RUNNING"]);
    const run = `${second.dataDir}/run`;
    await Deno.remove(run, { recursive: true });
    // Polled: nothing announces that a directory was made.
    await waitFor(`${run} to be made again`, () => exists(run));
    await fifos.send("go");
    await alive.eof();
    const job = await waitForStatus(second, id, ["SUCCEEDED"]);
    assert.equal(job.driver_exit_code, 0);
  },
});
