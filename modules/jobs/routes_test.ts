import assert from "node:assert/strict";
import { testContext } from "../../tests/module_context.ts";
import { join } from "node:path";
import { ShellSupervisor } from "../../supervision/supervisor.ts";
import { createApp } from "../../host/app.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { aJob } from "../../kit/job_record_fixture.ts";
import { createModule } from "./mod.ts";

/** The jobs module mounted on the head's app, over in-memory KV; nothing is spawned. */
async function withApp(
  options: { token?: string },
  fn: (
    request: (path: string, init?: RequestInit) => Promise<Response>,
    ctx: ModuleContext,
  ) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-routes-" });
  using kv = await Deno.openKv(":memory:");
  const maxBodyBytes = 1024;
  const { ctx, close } = testContext({
    kv,
    dir,
    module: "jobs",
    supervisor: new ShellSupervisor(join(dir, "run")),
    config: { maxBodyBytes },
  });
  const app = createApp({ token: options.token, maxBodyBytes });
  const module = createModule();
  app.route("/", module.routes!(ctx));
  try {
    await fn((path, init) => Promise.resolve(app.request(path, init)), ctx);
  } finally {
    await module.stop?.();
    close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function expectError(res: Response, status: number, code: string, pattern: RegExp) {
  assert.equal(res.status, status);
  const body = await res.json();
  assert.equal(body.error.code, code);
  assert.match(body.error.message, pattern);
}

const post = (body: string): RequestInit => ({ method: "POST", body });

Deno.test("POST /api/jobs/ rejects bad input with a 400 naming the field", async () => {
  await withApp({}, async (request) => {
    await expectError(await request("/api/jobs/", post("{")), 400, "BAD_REQUEST", /not valid JSON/);
    await expectError(await request("/api/jobs/", post("{}")), 400, "BAD_REQUEST", /entrypoint/);
    await expectError(
      await request("/api/jobs/", post('{"entrypoint": ""}')),
      400,
      "BAD_REQUEST",
      /entrypoint: must not be empty/,
    );
    await expectError(
      await request("/api/jobs", post('{"entrypoint": "true", "colour": 1}')),
      400,
      "BAD_REQUEST",
      /unknown field "colour"/,
    );
    await expectError(
      await request("/api/jobs/", post('{"entrypoint": "true", "submission_id": "../x"}')),
      400,
      "BAD_REQUEST",
      /submission_id/,
    );
    await expectError(
      await request("/api/jobs/", post('{"entrypoint": "true", "runtime_env": {"pip": []}}')),
      400,
      "BAD_REQUEST",
      /unknown field "runtime_env.pip"/,
    );
    await expectError(
      await request("/api/jobs/", post('{"entrypoint": "true", "metadata": {"a": 1}}')),
      400,
      "BAD_REQUEST",
      /metadata.a/,
    );
    const list = await request("/api/jobs/");
    assert.deepEqual(await list.json(), []); // nothing was created
  });
});

Deno.test("POST /api/jobs/ answers 413 for a body over the limit", async () => {
  await withApp({}, async (request) => {
    const body = JSON.stringify({ entrypoint: "x".repeat(2048) });
    await expectError(await request("/api/jobs/", post(body)), 413, "TOO_LARGE", /limit/);
  });
});

Deno.test("job routes answer 404 for unknown jobs and 400 for bad ids and queries", async () => {
  await withApp({}, async (request) => {
    await expectError(
      await request("/api/jobs/nope"),
      404,
      "NOT_FOUND",
      /^Job nope does not exist$/,
    );
    await expectError(await request("/api/jobs/nope/stop", post("")), 404, "NOT_FOUND", /nope/);
    await expectError(
      await request("/api/jobs/nope", { method: "DELETE" }),
      404,
      "NOT_FOUND",
      /nope/,
    );
    await expectError(await request("/api/jobs/nope/logs"), 404, "NOT_FOUND", /nope/);
    await expectError(await request("/api/jobs/nope/logs/tail"), 404, "NOT_FOUND", /nope/);
    await expectError(await request("/api/jobs/.hidden"), 400, "BAD_REQUEST", /job id/);
    await expectError(await request("/api/jobs/?status=DONE"), 400, "BAD_REQUEST", /status/);
    await expectError(await request("/api/jobs/?limit=0"), 400, "BAD_REQUEST", /limit/);
    await expectError(await request("/api/jobs/?cursor=zz"), 400, "BAD_REQUEST", /cursor/);
    await expectError(await request("/api/nothing"), 404, "NOT_FOUND", /No route/);
  });
});

Deno.test("with a token, API routes need it as a bearer token", async () => {
  await withApp({ token: "s3cret" }, async (request) => {
    await expectError(await request("/api/version"), 401, "UNAUTHORIZED", /token/);
    const wrong = await request("/api/version", { headers: { Authorization: "Bearer nope" } });
    await expectError(wrong, 403, "FORBIDDEN", /token/);
    const ok = await request("/api/version", { headers: { Authorization: "Bearer s3cret" } });
    assert.equal((await ok.json()).version, "4");
    const ray = await request("/api/jobs/", {
      headers: { "X-Ray-Authorization": "Bearer s3cret" },
    });
    assert.equal(ray.status, 200);
    await ray.body?.cancel();
  });
});

Deno.test("env var names with '=' and NUL bytes are refused before anything runs", async () => {
  await withApp({}, async (request) => {
    const bad = [
      { entrypoint: "true", runtime_env: { env_vars: { "A=B": "x" } } },
      { entrypoint: "true", runtime_env: { env_vars: { "": "x" } } },
      { entrypoint: "true", runtime_env: { env_vars: { A: "x\0y" } } },
      { entrypoint: "echo \0" },
    ];
    for (const body of bad) {
      await expectError(
        await request("/api/jobs/", post(JSON.stringify(body))),
        400,
        "BAD_REQUEST",
        /entrypoint|env_vars/,
      );
    }
  });
});

Deno.test("GET /api/jobs/ without a limit streams every job, as Ray's list_jobs() expects", async () => {
  await withApp({}, async (request, ctx) => {
    const count = 5_000; // many pages of the store, and more than the old cap of 1,000
    for (let i = 0; i < count; i++) {
      await ctx.stores.jobs.create(
        aJob({ id: `j-${i}`, status: i % 3 ? "SUCCEEDED" : "FAILED", start_time: 1_000 + i }),
      );
    }
    const all = await request("/api/jobs/");
    assert.equal(all.status, 200);
    assert.equal(all.headers.get("x-next-cursor"), null);
    const jobs = await all.json();
    assert.equal(jobs.length, count);
    assert.equal(jobs[0].submission_id, `j-${count - 1}`, "newest first");
    assert.equal(jobs[count - 1].submission_id, "j-0");
    assert.equal(new Set(jobs.map((j: { job_id: string }) => j.job_id)).size, count);
    // What Ray's SDK builds from each entry: JobDetails(**entry), a pydantic model that
    // needs type, status and entrypoint and ignores keys it does not know.
    for (const job of jobs) {
      assert.equal(job.type, "SUBMISSION");
      assert.ok(["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"].includes(job.status));
      assert.equal(typeof job.entrypoint, "string");
      assert.ok(Number.isInteger(job.start_time));
      assert.ok(job.driver_info === null || typeof job.driver_info.pid === "string");
    }

    const failed = await (await request("/api/jobs?status=FAILED")).json();
    assert.equal(failed.length, Math.ceil(count / 3));

    const page = await request("/api/jobs/?limit=10");
    assert.equal((await page.json()).length, 10);
    assert.ok(page.headers.get("x-next-cursor"), "a limited list still pages");
  });
});

Deno.test("GET /api/jobs/ of an empty store is an empty array", async () => {
  await withApp({}, async (request) => {
    const res = await request("/api/jobs/");
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), []);
  });
});
