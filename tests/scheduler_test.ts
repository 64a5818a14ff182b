/**
 * End to end: the scheduler on one head. Jobs wait PENDING until what they ask for is
 * free, start first come first served (by priority), backfill, reserve after a wait,
 * time out, survive a head SIGKILL with the queue intact, and get distinct GPUs.
 *
 * Each job appends `start <id>` to a shared file as its first act and `end <id>` as its
 * last (appends of a few bytes are atomic), so the test reads the true order and
 * concurrency of starts from what the jobs themselves did, not from samples.
 */
import assert from "node:assert/strict";
import { type RunningHead, startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertError, jobLogs, q, stopJob, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";

/** A job that records its start, waits for `go` on its own FIFO, records its end. */
async function blockingJob(
  head: RunningHead,
  fifos: Fifos,
  id: string,
  request: Record<string, unknown> = {},
): Promise<string> {
  await fifos.make(`${id}.go`);
  const trace = q(fifos.path("trace"));
  return await submitJob(head, {
    submission_id: id,
    entrypoint: `echo "start ${id}" >>${trace}; read x <${q(fifos.path(`${id}.go`))}; ` +
      `echo "end ${id}" >>${trace}`,
    ...request,
  });
}

/** Lets job `id` finish and waits until it SUCCEEDED. */
async function finish(head: RunningHead, fifos: Fifos, id: string): Promise<void> {
  await fifos.send(`${id}.go`);
  await waitForStatus(head, id, ["SUCCEEDED"]);
}

/** The trace the jobs wrote: `start a`, `end a`, … */
async function trace(fifos: Fifos): Promise<string[]> {
  const text = await Deno.readTextFile(fifos.path("trace")).catch(() => "");
  return text.split("\n").filter(Boolean);
}

/** Waits until job `id` wrote its start (a file no event announces: polled). */
async function started(fifos: Fifos, id: string): Promise<void> {
  await waitFor(`${id} to start`, async () => (await trace(fifos)).includes(`start ${id}`));
}

/** The most jobs the trace shows running at once. */
function mostAtOnce(lines: string[]): number {
  let running = 0;
  let most = 0;
  for (const line of lines) {
    running += line.startsWith("start ") ? 1 : -1;
    most = Math.max(most, running);
  }
  return most;
}

/** The ids in the order the trace shows them start. */
function startOrder(lines: string[]): string[] {
  return lines.filter((line) => line.startsWith("start ")).map((line) => line.slice(6));
}

async function job(head: RunningHead, id: string) {
  const { status, body } = await head.json(`/api/jobs/${id}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

Deno.test("jobs wait for CPUs, start first come first served, and never exceed capacity", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: ["--num-cpus", "2"] });
  for (const id of ["q1", "q2", "q3", "q4", "q5", "q6"]) {
    await blockingJob(head, fifos, id, { entrypoint_num_cpus: 1 });
  }
  await waitForStatus(head, "q1", ["RUNNING"]);
  await waitForStatus(head, "q2", ["RUNNING"]);
  const waiting = await job(head, "q5");
  assert.equal(waiting.status, "PENDING");
  assert.equal(
    waiting.message,
    "Waiting for resources: needs CPU 1, 0 of 2 free; 2 jobs ahead",
  );
  const { body: cluster } = await head.json("/api/cluster");
  assert.equal(cluster.nodes.length, 1);
  assert.deepEqual(
    [cluster.nodes[0].total.CPU, cluster.nodes[0].free.CPU, cluster.running, cluster.pending],
    [2, 0, 2, 4],
  );
  // Release them in an order unlike the submits: starts still follow the queue. Each end
  // frees one CPU for exactly one more start, awaited before the next release.
  let starts = 2;
  for (const id of ["q2", "q1", "q4", "q3", "q6", "q5"]) {
    await started(fifos, id);
    await finish(head, fifos, id);
    if (starts === 6) continue;
    starts++;
    await waitFor(`start number ${starts}`, async () => {
      return startOrder(await trace(fifos)).length === starts;
    });
  }
  const lines = await trace(fifos);
  // q1 and q2 were placed together (their processes start in either order); after them,
  // each end frees one CPU, and the next in the queue takes it.
  const order = startOrder(lines);
  assert.deepEqual(order.slice(0, 2).sort(), ["q1", "q2"], lines.join("\n"));
  assert.deepEqual(order.slice(2), ["q3", "q4", "q5", "q6"], lines.join("\n"));
  assert.equal(mostAtOnce(lines), 2, lines.join("\n"));
});

Deno.test("a higher priority starts first; a smaller job backfills past one that does not fit", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: ["--num-cpus", "4"] });
  await blockingJob(head, fifos, "big", { entrypoint_num_cpus: 3 });
  await started(fifos, "big");
  await blockingJob(head, fifos, "wide", { entrypoint_num_cpus: 2 });
  await blockingJob(head, fifos, "small", { entrypoint_num_cpus: 1 });
  // 1 CPU free: "wide" waits, "small" behind it starts.
  await started(fifos, "small");
  const wide = await job(head, "wide");
  assert.equal(wide.status, "PENDING");
  assert.equal(wide.message, "Waiting for resources: needs CPU 2, 0 of 4 free; 0 jobs ahead");
  await blockingJob(head, fifos, "low", { entrypoint_num_cpus: 2 });
  await blockingJob(head, fifos, "urgent", { entrypoint_num_cpus: 2, priority: 10 });
  assert.equal((await job(head, "urgent")).priority, 10);
  assert.match((await job(head, "wide")).message, /1 job ahead$/, "urgent went ahead");
  await finish(head, fifos, "big");
  await started(fifos, "urgent");
  await finish(head, fifos, "small");
  await started(fifos, "wide");
  await finish(head, fifos, "urgent");
  await started(fifos, "low");
  await finish(head, fifos, "wide");
  await finish(head, fifos, "low");
  assert.deepEqual(startOrder(await trace(fifos)), ["big", "small", "urgent", "wide", "low"]);
});

Deno.test("a job that waited past --reserve-after-s has its CPUs set aside as they free up", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: ["--num-cpus", "4", "--reserve-after-s", "1"] });
  await blockingJob(head, fifos, "holder", { entrypoint_num_cpus: 2 });
  await blockingJob(head, fifos, "other", { entrypoint_num_cpus: 1 });
  await waitForStatus(head, "other", ["RUNNING"]);
  await blockingJob(head, fifos, "wide", { entrypoint_num_cpus: 3 });
  // No event marks the passing of the reservation wait: the message says when it has.
  await waitFor("the wide job's reservation", async () => {
    const { message } = await job(head, "wide");
    return message.endsWith("reserved as they free up");
  }, { intervalMs: 100 });
  await finish(head, fifos, "other");
  // 2 CPUs are free, but they are held for "wide": a 1-CPU job behind it waits.
  await blockingJob(head, fifos, "late", { entrypoint_num_cpus: 1 });
  const late = await job(head, "late");
  assert.equal(late.status, "PENDING", JSON.stringify(late));
  assert.equal(late.message, "Waiting for resources: needs CPU 1, 0 of 4 free; 1 job ahead");
  await finish(head, fifos, "holder");
  await waitForStatus(head, "wide", ["RUNNING"]);
  await waitForStatus(head, "late", ["RUNNING"]);
  for (const id of ["wide", "late"]) await finish(head, fifos, id);
});

Deno.test("a job still PENDING past its start timeout fails as Ray's does; a stopped one never runs", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead({ extraArgs: ["--max-running-jobs", "1"] });
  await blockingJob(head, fifos, "runner");
  await waitForStatus(head, "runner", ["RUNNING"]);
  await blockingJob(head, fifos, "stopped");
  await blockingJob(head, fifos, "patient");
  await blockingJob(head, fifos, "impatient", {
    runtime_env: { env_vars: { RAY_JOB_START_TIMEOUT_SECONDS: "0.5" } },
  });
  assert.equal(
    (await job(head, "patient")).message,
    "Waiting for a running slot: --max-running-jobs 1 reached; 1 job ahead",
  );
  const timedOut = await waitForStatus(head, "impatient", ["FAILED"]);
  assert.equal(timedOut.error_type, "JOB_SUPERVISOR_ACTOR_START_TIMEOUT");
  assert.equal(
    timedOut.message,
    "Job supervisor actor failed to start within 0.5 seconds. This timeout can be " +
      "configured by setting the environment variable RAY_JOB_START_TIMEOUT_SECONDS.",
  );
  assert.equal(await stopJob(head, "stopped"), true);
  assert.equal((await waitForStatus(head, "stopped", ["STOPPED"])).driver_exit_code, null);
  await finish(head, fifos, "runner");
  await finish(head, fifos, "patient");
  assert.deepEqual(startOrder(await trace(fifos)), ["runner", "patient"]);
  const bad = await head.json("/api/jobs/", {
    method: "POST",
    body: { entrypoint: "true", runtime_env: { env_vars: { RAY_JOB_START_TIMEOUT_SECONDS: "x" } } },
  });
  assertError(bad, 400, "BAD_REQUEST", /RAY_JOB_START_TIMEOUT_SECONDS/);
});

Deno.test("a request no node could ever hold is refused with 400 naming the resource", async () => {
  await using head = await startHead({
    extraArgs: ["--num-cpus", "2", "--num-gpus", "0", "--resources", '{"license": 1}'],
  });
  const cases: [Record<string, unknown>, string][] = [
    [{ entrypoint_num_cpus: 64 }, "entrypoint_num_cpus: 64 requested, the largest node has 2"],
    [{ entrypoint_num_gpus: 1 }, "entrypoint_num_gpus: 1 requested, the largest node has 0"],
    [
      { entrypoint_resources: { license: 2 } },
      "entrypoint_resources.license: 2 requested, the largest node has 1",
    ],
  ];
  for (const [request, message] of cases) {
    const res = await head.json("/api/jobs/", {
      method: "POST",
      body: { entrypoint: "true", ...request },
    });
    assertError(res, 400, "BAD_REQUEST", message);
  }
  const aside = await head.json("/api/jobs/", {
    method: "POST",
    body: { entrypoint: "true", entrypoint_num_cpus: 2, entrypoint_resources: { CPU: 0 } },
  });
  assertError(aside, 400, "BAD_REQUEST", "entrypoint_resources.CPU: use entrypoint_num_cpus");
  assert.deepEqual((await head.json("/api/jobs/")).body, [], "nothing was created");
});

Deno.test("the queue and its order survive a head SIGKILL; no job starts twice", async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead({ extraArgs: ["--num-cpus", "1"] });
  // r1 runs before the others are queued: on PostgreSQL a head schedules only once it holds
  // the scheduling lock, and jobs queued before that would start by priority (r4 first).
  await blockingJob(first, fifos, "r1", { entrypoint_num_cpus: 1 });
  await waitForStatus(first, "r1", ["RUNNING"]);
  for (const id of ["r2", "r3", "r4"]) {
    await blockingJob(first, fifos, id, { entrypoint_num_cpus: 1, priority: id === "r4" ? 1 : 0 });
  }
  await first.kill("SIGKILL");
  await using second = await startHead({
    dataDir: first.dataDir,
    runId: first.runId,
    extraArgs: ["--num-cpus", "1"],
  });
  await waitForStatus(second, "r1", ["RUNNING"]);
  // The first head may have died before it said why r2 waits; the second says it once it
  // schedules (on PostgreSQL, once it holds the scheduling lock).
  const why = /needs CPU 1, 0 of 1 free; 1 job ahead$/;
  await waitFor("the second head to say why r2 waits", async () => {
    return why.test((await job(second, "r2")).message);
  });
  for (const id of ["r1", "r4", "r2", "r3"]) {
    await waitForStatus(second, id, ["RUNNING"]);
    await finish(second, fifos, id);
  }
  const lines = await trace(fifos);
  assert.deepEqual(startOrder(lines), ["r1", "r4", "r2", "r3"], lines.join("\n"));
  assert.equal(mostAtOnce(lines), 1);
});

Deno.test("GPU jobs get distinct CUDA_VISIBLE_DEVICES that survive a restart", async () => {
  await using fifos = await Fifos.create();
  await using first = await startHead({ extraArgs: ["--num-gpus", "4"] });
  const gpuJob = async (head: RunningHead, id: string, gpus: number) => {
    await fifos.make(`${id}.go`);
    return await submitJob(head, {
      submission_id: id,
      entrypoint_num_gpus: gpus,
      entrypoint: `echo "gpus=\${CUDA_VISIBLE_DEVICES-unset}"; read x <${
        q(fifos.path(`${id}.go`))
      }`,
    });
  };
  await gpuJob(first, "g1", 2);
  await gpuJob(first, "g2", 1);
  await gpuJob(first, "none", 0);
  for (const id of ["g1", "g2", "none"]) await waitForStatus(first, id, ["RUNNING"]);
  const seen = async (head: RunningHead, id: string) => {
    return await waitFor(`${id}'s GPUs`, async () => {
      const match = /gpus=(\S+)/.exec(await jobLogs(head, id));
      return match?.[1];
    });
  };
  assert.equal(await seen(first, "g1"), "0,1");
  assert.equal(await seen(first, "g2"), "2");
  assert.equal(await seen(first, "none"), "unset");
  await first.kill("SIGKILL");
  await using second = await startHead({
    dataDir: first.dataDir,
    runId: first.runId,
    extraArgs: ["--num-gpus", "4"],
  });
  await waitForStatus(second, "g1", ["RUNNING"]);
  await gpuJob(second, "g3", 2);
  await waitForStatus(second, "g3", ["PENDING"]);
  await gpuJob(second, "g4", 1);
  await waitForStatus(second, "g4", ["RUNNING"]);
  assert.equal(await seen(second, "g4"), "3", "0-2 are held by jobs of the first head");
  await fifos.send("g1.go");
  await waitForStatus(second, "g3", ["RUNNING"]);
  assert.equal(await seen(second, "g3"), "0,1");
  for (const id of ["g2", "g3", "g4", "none"]) await fifos.send(`${id}.go`);
});
