/** End to end: the REST surface of the jobs API: ids, bad input, listing, deleting. */
import assert from "node:assert/strict";
import { startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertError, assertNoJobProcesses, jobLogs, q, stopJob, submitJob } from "./helpers.ts";
import { makeZip } from "./zip.ts";

Deno.test("GET /api/version speaks Ray's API level 4", async () => {
  await using head = await startHead();
  const { status, headers, body } = await head.json("/api/version");
  assert.equal(status, 200);
  assert.match(headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(body.version, "4");
  assert.equal(body.ray_version, "2.50.0");
  assert.equal(typeof body.ray_commit, "string");
  assert.equal(typeof body.session_name, "string");
  assert.match(body.jobhead_version, /^\d+\.\d+\.\d+(?:[-+][\w.-]+)?$/);
});

Deno.test("submit works with and without the trailing slash and takes job_id as an alias", async () => {
  await using head = await startHead();
  for (const path of ["/api/jobs/", "/api/jobs"]) {
    const { status, body } = await head.json(path, {
      method: "POST",
      body: { entrypoint: "true" },
    });
    assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
    assert.match(body.submission_id, /^jobhead_[A-Za-z0-9_.-]{16}$/);
    assert.equal(body.job_id, body.submission_id);
    await waitForStatus(head, body.submission_id, ["SUCCEEDED"]);
  }
  const alias = await head.json("/api/jobs/", {
    method: "POST",
    body: { entrypoint: "true", job_id: "via-job-id" },
  });
  assert.deepEqual(alias.body, { job_id: "via-job-id", submission_id: "via-job-id" });
  // Ray's SDK sends every optional field, absent ones as null.
  const ray = await head.json("/api/jobs/", {
    method: "POST",
    body: {
      entrypoint: "true",
      submission_id: "from-ray-sdk",
      runtime_env: null,
      metadata: null,
      entrypoint_num_cpus: null,
      entrypoint_num_gpus: null,
      entrypoint_memory: null,
      entrypoint_resources: null,
    },
  });
  assert.equal(ray.status, 200, JSON.stringify(ray.body));
  for (const id of ["via-job-id", "from-ray-sdk"]) await waitForStatus(head, id, ["SUCCEEDED"]);
});

Deno.test("a duplicate submission_id is a 409 with Ray's message", async () => {
  await using head = await startHead();
  await submitJob(head, { entrypoint: "true", submission_id: "dup.1" });
  for (const field of ["submission_id", "job_id"]) {
    const res = await head.json("/api/jobs/", {
      method: "POST",
      body: { entrypoint: "echo second", [field]: "dup.1" },
    });
    assertError(res, 409, "CONFLICT");
    assert.equal(
      res.body.error.message,
      "Job with submission_id dup.1 already exists. Please use a different submission_id.",
    );
  }
  const job = await waitForStatus(head, "dup.1", ["SUCCEEDED"]);
  assert.equal(job.entrypoint, "true", "the first job is untouched");
});

Deno.test("each bad submission is a 400 naming the field, and creates no job", async () => {
  await using head = await startHead();
  const cases: [string, unknown, string | RegExp][] = [
    ["missing entrypoint", {}, "entrypoint"],
    ["empty entrypoint", { entrypoint: "" }, "entrypoint"],
    ["entrypoint not a string", { entrypoint: 5 }, "entrypoint"],
    ["unknown field", { entrypoint: "true", colour: "red" }, "colour"],
    ["slash in the id", { entrypoint: "true", submission_id: "a/b" }, "submission_id"],
    ["dot-dot id", { entrypoint: "true", submission_id: ".." }, "submission_id"],
    ["id starting with a dot", { entrypoint: "true", submission_id: ".hidden" }, "submission_id"],
    ["space in the id", { entrypoint: "true", submission_id: "a b" }, "submission_id"],
    ["empty id", { entrypoint: "true", submission_id: "" }, "submission_id"],
    ["id of 129 chars", { entrypoint: "true", submission_id: "x".repeat(129) }, "submission_id"],
    ["non-ASCII id", { entrypoint: "true", submission_id: "jöb" }, "submission_id"],
    ["bad job_id", { entrypoint: "true", job_id: "../../etc" }, "job_id"],
    ["unknown runtime_env key", { entrypoint: "true", runtime_env: { pip: ["x"] } }, "pip"],
    ["runtime_env not an object", { entrypoint: "true", runtime_env: "x" }, "runtime_env"],
    ["env_vars value not a string", {
      entrypoint: "true",
      runtime_env: { env_vars: { A: 1 } },
    }, "env_vars"],
    ["metadata value not a string", { entrypoint: "true", metadata: { a: 1 } }, "metadata"],
    [
      "negative entrypoint_num_cpus",
      { entrypoint: "true", entrypoint_num_cpus: -1 },
      "entrypoint_num_cpus",
    ],
    [
      "fractional entrypoint_memory",
      { entrypoint: "true", entrypoint_memory: 1.5 },
      "entrypoint_memory",
    ],
    ["negative resource", {
      entrypoint: "true",
      entrypoint_resources: { gpu: -1 },
    }, "entrypoint_resources"],
  ];
  for (const [what, body, field] of cases) {
    const res = await head.json("/api/jobs/", { method: "POST", body });
    try {
      assertError(res, 400, "BAD_REQUEST", field);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    }
  }
  for (
    const [what, raw] of [["malformed JSON", "{"], ["an array", "[]"], ["null", "null"], [
      "a string",
      '"true"',
    ], ["empty body", ""]]
  ) {
    const res = await head.json("/api/jobs/", { method: "POST", body: raw });
    try {
      assertError(res, 400, "BAD_REQUEST");
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    }
  }
  const list = await head.json("/api/jobs/");
  assert.deepEqual(list.body, [], "no job was created");
  assert.equal((await head.json("/api/version")).status, 200, "the head is still up");
});

Deno.test("a body over the limit is a 413, with or without Content-Length", async () => {
  await using head = await startHead();
  const big = JSON.stringify({ entrypoint: `echo ${"x".repeat(32 << 20)}` });
  const res = await head.json("/api/jobs/", { method: "POST", body: big });
  assertError(res, 413, "TOO_LARGE");

  const bytes = new TextEncoder().encode(big);
  const chunked = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 1 << 20) {
        controller.enqueue(bytes.subarray(i, i + (1 << 20)));
      }
      controller.close();
    },
  });
  const streamed = await head.json("/api/jobs/", { method: "POST", body: chunked });
  assertError(streamed, 413, "TOO_LARGE");
  assert.deepEqual((await head.json("/api/jobs/")).body, [], "no job was created");
});

Deno.test("unknown jobs are 404 everywhere, ids that cannot exist are 4xx", async () => {
  await using head = await startHead();
  for (
    const [method, path] of [
      ["GET", "/api/jobs/nope"],
      ["POST", "/api/jobs/nope/stop"],
      ["DELETE", "/api/jobs/nope"],
      ["GET", "/api/jobs/nope/logs"],
    ]
  ) {
    const res = await head.json(path, { method });
    assertError(res, 404, "NOT_FOUND");
    assert.equal(res.body.error.message, "Job nope does not exist", `${method} ${path}`);
  }
  for (
    const path of ["/api/jobs/.hidden", "/api/jobs/..%2F..%2Fetc", "/api/jobs/%2Fetc%2Fpasswd/logs"]
  ) {
    const res = await head.json(path);
    assert.ok(res.status === 400 || res.status === 404, `${path}: ${res.status}`);
    assert.equal(typeof res.body?.error?.message, "string", `${path}: ${JSON.stringify(res.body)}`);
  }
});

Deno.test("GET /api/jobs/ lists newest first, filters by status, and pages with a cursor", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const done: string[] = [];
  for (let i = 0; i < 5; i++) {
    done.push(await submitJob(head, { entrypoint: "true", submission_id: `list-${i}` }));
    await waitForStatus(head, done[i], ["SUCCEEDED"]);
  }
  const alive = await fifos.reader("alive");
  const running = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; exec sleep 1000`,
    submission_id: "list-running",
  });
  await alive.opened();
  await waitForStatus(head, running, ["RUNNING"]);
  const newestFirst = [running, ...done.toReversed()];

  const all = await head.json("/api/jobs/");
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.map((j: { submission_id: string }) => j.submission_id), newestFirst);
  assert.equal(all.body[0].status, "RUNNING");
  assert.equal(all.body[0].type, "SUBMISSION");

  const ids = async (query: string) => {
    const res = await head.json(`/api/jobs/?${query}`);
    assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`);
    return res.body.map((j: { submission_id: string }) => j.submission_id);
  };
  assert.deepEqual(await ids("status=RUNNING"), [running]);
  assert.deepEqual(await ids("status=RUNNING,SUCCEEDED"), newestFirst);
  assert.deepEqual(await ids("status=SUCCEEDED"), done.toReversed());
  assert.deepEqual(await ids("status=FAILED"), []);

  const paged: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10; page++) {
    const query: string = `limit=2${
      cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`
    }`;
    const res = await head.json(`/api/jobs/?${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.length <= 2, `page of ${res.body.length}`);
    paged.push(...res.body.map((j: { submission_id: string }) => j.submission_id));
    cursor = res.headers.get("x-next-cursor");
    if (cursor === null) break;
    assert.ok(res.body.length > 0, "a page with a next cursor is not empty");
  }
  assert.equal(cursor, null, "paging ends");
  assert.deepEqual(paged, newestFirst);

  const filtered = await head.json("/api/jobs/?status=SUCCEEDED&limit=3");
  assert.equal(filtered.body.length, 3);
  const next = filtered.headers.get("x-next-cursor");
  assert.ok(next, "X-Next-Cursor when more match");
  const rest = await head.json(
    `/api/jobs/?status=SUCCEEDED&limit=3&cursor=${encodeURIComponent(next)}`,
  );
  assert.deepEqual(
    [...filtered.body, ...rest.body].map((j: { submission_id: string }) => j.submission_id),
    done.toReversed(),
  );

  for (const bad of ["status=BOGUS", "limit=-1", "limit=abc"]) {
    assertError(await head.json(`/api/jobs/?${bad}`), 400, "BAD_REQUEST");
  }
  await stopJob(head, running);
  await alive.eof();
  await assertNoJobProcesses(head, running);
});

Deno.test("DELETE removes a terminal job and its log, and refuses a running one", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const alive = await fifos.reader("alive");
  const id = await submitJob(head, {
    submission_id: "to-delete",
    entrypoint: `echo some output; exec 3>${q(alive.path)}; exec sleep 1000`,
  });
  await alive.opened();
  await waitForStatus(head, id, ["RUNNING"]);
  assertError(await head.json(`/api/jobs/${id}`, { method: "DELETE" }), 409, "CONFLICT");
  assert.equal((await waitForStatus(head, id, ["RUNNING"])).status, "RUNNING");

  await stopJob(head, id);
  await alive.eof();
  await waitForStatus(head, id, ["STOPPED"]);
  const logFiles = await filesNamed(head.dataDir, id);
  assert.ok(logFiles.length > 0, `no file named after "${id}" in the data dir`);

  const res = await head.json(`/api/jobs/${id}`, { method: "DELETE" });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, { deleted: true });
  assertError(await head.json(`/api/jobs/${id}`), 404, "NOT_FOUND");
  assertError(await head.json(`/api/jobs/${id}/logs`), 404, "NOT_FOUND");
  assert.deepEqual(await filesNamed(head.dataDir, id), [], "the log file is gone");
  assert.deepEqual((await head.json("/api/jobs/")).body, []);
  assertError(await head.json(`/api/jobs/${id}`, { method: "DELETE" }), 404, "NOT_FOUND");

  // The id is free again.
  await submitJob(head, { submission_id: id, entrypoint: "true" });
  await waitForStatus(head, id, ["SUCCEEDED"]);
});

Deno.test("metadata is returned as submitted; the job's own config adds its id and name", async () => {
  await using head = await startHead();
  const config = 'printf %s "$JOBHEAD_JOB_CONFIG_JSON"';
  const plain = await submitJob(head, { submission_id: "meta-1", entrypoint: config });
  const named = await submitJob(head, {
    submission_id: "meta-2",
    entrypoint: config,
    metadata: { job_name: "mine", owner: "me" },
  });
  assert.deepEqual((await waitForStatus(head, plain, ["SUCCEEDED"])).metadata, {});
  assert.deepEqual((await waitForStatus(head, named, ["SUCCEEDED"])).metadata, {
    job_name: "mine",
    owner: "me",
  });
  const listed = (await head.json("/api/jobs/")).body;
  assert.deepEqual(listed.find((job: { job_id: string }) => job.job_id === plain).metadata, {});
  assert.deepEqual(JSON.parse(await jobLogs(head, plain)).metadata, {
    job_name: "meta-1",
    job_submission_id: "meta-1",
  });
  assert.deepEqual(JSON.parse(await jobLogs(head, named)).metadata, {
    job_name: "mine",
    owner: "me",
    job_submission_id: "meta-2",
  });
});

Deno.test("a job stopped while PENDING, deleted and submitted again under its id runs", async () => {
  await using head = await startHead();
  const id = "stopped-pending";
  // A job stays PENDING while its working_dir package is extracted: a package of many
  // files (a new one per try, so nothing is reused) holds it there for the stop.
  let stoppedWhilePending = false;
  for (let attempt = 0; attempt < 5 && !stoppedWhilePending; attempt++) {
    const files: Record<string, Uint8Array | string> = { "attempt.txt": String(attempt) };
    for (let i = 0; i < 1000; i++) files[`data/${i}.bin`] = new Uint8Array(1024);
    const name = `slow-${attempt}.zip`;
    const put = await head.fetch(`/api/packages/pkg/${name}`, {
      method: "PUT",
      body: await makeZip(files),
    });
    assert.equal(put.status, 200, await put.text());
    await submitJob(head, {
      submission_id: id,
      entrypoint: "echo first",
      runtime_env: { working_dir: `pkg://${name}` },
    });
    assert.equal(await stopJob(head, id), true);
    const job = await waitForStatus(head, id, ["STOPPED"]);
    stoppedWhilePending = job.driver_info === null;
    const res = await head.json(`/api/jobs/${id}`, { method: "DELETE" });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }
  assert.ok(stoppedWhilePending, "no stop landed while the job was PENDING in 5 tries");

  await submitJob(head, { submission_id: id, entrypoint: "echo again" });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  assert.equal(await jobLogs(head, id), "again\n");
});

/** Paths under `dir` whose file name contains `id`. */
async function filesNamed(dir: string, id: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) found.push(...await filesNamed(path, id));
    else if (entry.name.includes(id)) found.push(path);
  }
  return found;
}
