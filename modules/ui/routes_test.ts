import assert from "node:assert/strict";
import { EventBus } from "../../kit/events.ts";
import type { ContributedView } from "../../kit/module.ts";
import { createApp } from "../../host/app.ts";
import type { Job } from "../../kit/job_record.ts";
import { aJob, aJobStore } from "../../kit/job_record_fixture.ts";
import { Assets } from "./assets.ts";
import { uiRoutes } from "./routes.ts";
import type { FindJobsResponse } from "./schemas.ts";

async function setUp(jobs: Partial<Job>[], moduleViews: () => ContributedView[] = () => []) {
  const kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  for (const [i, changes] of jobs.entries()) {
    await store.create(
      aJob({ status: "SUCCEEDED", id: `job-${i}`, start_time: 1_000 + i, ...changes }),
    );
  }
  const events = new EventBus();
  const shutdown = new AbortController();
  const app = createApp({ maxBodyBytes: 1024 });
  app.route(
    "/",
    uiRoutes({
      jobs: store,
      events,
      assets: new Assets(new URL("./static/", import.meta.url)),
      signal: shutdown.signal,
      moduleViews,
    }),
  );
  return { kv, app, events, shutdown, [Symbol.dispose]: () => kv.close() };
}

async function find(
  app: { request: (path: string) => Response | Promise<Response> },
  query: string,
) {
  const res = await app.request(`/api/ui/jobs?${query}`);
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json() as FindJobsResponse;
}

Deno.test("GET /api/ui/jobs pages newest first and searches id, entrypoint and metadata", async () => {
  using t = await setUp(
    Array.from({ length: 25 }, (_, i) => ({
      entrypoint: i % 5 === 0 ? `python train.py --epoch ${i}` : "echo hi",
      metadata: (i === 7 ? { owner: "Alice" } : {}) as Record<string, string>,
      status: i === 24 ? "RUNNING" as const : "SUCCEEDED" as const,
    })),
  );
  const first = await find(t.app, "limit=10");
  assert.deepEqual(first.jobs.map((j) => j.submission_id).slice(0, 2), ["job-24", "job-23"]);
  assert.ok(first.next_cursor);
  const second = await find(t.app, `limit=10&cursor=${first.next_cursor}`);
  assert.equal(second.jobs[0].submission_id, "job-14");
  const third = await find(t.app, `limit=10&cursor=${second.next_cursor}`);
  assert.equal(third.jobs.length, 5);
  assert.equal(third.next_cursor, null);

  const train = await find(t.app, "q=TRAIN.py&limit=2");
  assert.deepEqual(train.jobs.map((j) => j.submission_id), ["job-20", "job-15"]);
  const rest = await find(t.app, `q=train.py&limit=2&cursor=${train.next_cursor}`);
  assert.deepEqual(rest.jobs.map((j) => j.submission_id), ["job-10", "job-5"]);
  assert.deepEqual((await find(t.app, "q=owner%3Dalice")).jobs.map((j) => j.submission_id), [
    "job-7",
  ]);
  assert.deepEqual((await find(t.app, "q=job-1%20epoch")).jobs.map((j) => j.submission_id), [
    "job-15",
    "job-10",
  ]);
  assert.deepEqual((await find(t.app, "status=running")).jobs.map((j) => j.submission_id), [
    "job-24",
  ]);
  const bad = await t.app.request("/api/ui/jobs?cursor=nonsense");
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
});

Deno.test("a job row has the resources its job asked for", async () => {
  using t = await setUp([{
    status: "PENDING",
    entrypoint_num_cpus: 2,
    entrypoint_memory: 1024,
    entrypoint_resources: { license: 1 },
  }]);
  const [row] = (await find(t.app, "")).jobs;
  assert.deepEqual(
    [row.entrypoint_num_cpus, row.entrypoint_num_gpus, row.entrypoint_memory],
    [2, 0, 1024],
  );
  assert.deepEqual(row.entrypoint_resources, { license: 1 });
});

Deno.test("GET /api/events streams job changes from the bus, latest per job", async () => {
  using t = await setUp([{}]);
  const res = await t.app.request("/api/events?types=job");
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = (await reader.read()).value ?? "";
  assert.match(text, /event: ready\n/);
  const job = (await t.kv.get<Job>(["jobs", "job-0"])).value!;
  t.events.emit({ type: "job", job: { ...job, status: "RUNNING" } });
  t.events.emit({ type: "job", job: { ...job, status: "SUCCEEDED", driver_exit_code: 0 } });
  text = (await reader.read()).value ?? "";
  const messages = text.trim().split("\n\n");
  assert.equal(messages.length, 1, "two changes of one job before a read: the latest only");
  assert.match(messages[0], /^event: job\ndata: /);
  const row = JSON.parse(messages[0].split("data: ")[1]);
  assert.equal(row.submission_id, "job-0");
  assert.equal(row.status, "SUCCEEDED");
  assert.equal(row.driver_exit_code, 0);
  assert.equal(row.message, undefined, "rows leave the (long) message out");
  t.shutdown.abort();
  assert.equal((await reader.read()).done, true, "the stream ends at shutdown");
});

Deno.test("GET /api/events stops following the bus when its reader goes away", async () => {
  using t = await setUp([]);
  const unsubscribed = Promise.withResolvers<void>();
  const on = t.events.on.bind(t.events);
  t.events.on = (listener) => {
    const off = on(listener);
    return () => {
      unsubscribed.resolve();
      return off();
    };
  };
  const res = await t.app.request("/api/events");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.match((await reader.read()).value ?? "", /event: ready\n/);
  await reader.cancel();
  await unsubscribed.promise;
});

Deno.test("the page and its files are served with a strict content security policy", async () => {
  using t = await setUp([]);
  const page = await t.app.request("/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  assert.match(page.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
  assert.match(await page.text(), /<script type="module" src="\/ui\/js\/main.js">/);
  const script = await t.app.request("/ui/js/main.js");
  assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
  const etag = script.headers.get("etag")!;
  await script.body?.cancel();
  const again = await t.app.request("/ui/js/main.js", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  const missing = await t.app.request("/ui/../mod.ts");
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("GET /api/events streams deployment changes, and their deletion", async () => {
  using t = await setUp([]);
  const res = await t.app.request("/api/events?types=deployment");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.match((await reader.read()).value ?? "", /event: ready\n/);
  t.events.emit({ type: "deployment", name: "web", deployment: null });
  const text = (await reader.read()).value ?? "";
  assert.match(text, /^event: deployment\ndata: /);
  const data = JSON.parse(text.split("data: ")[1]);
  assert.equal(data.name, "web");
  assert.equal(data.status, null, "deleted");
  t.shutdown.abort();
  assert.equal((await reader.read()).done, true);
});

Deno.test("a module's view is listed and served by its id; no other file is", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-views-" });
  try {
    await Deno.writeTextFile(`${dir}/page.js`, "export function mount(el) { el.textContent = 1; }");
    await Deno.writeTextFile(`${dir}/secret.js`, "TOP-SECRET-CONTENT");
    const file = new URL(`file://${dir}/page.js`);
    using t = await setUp(
      [],
      () => [{ module: "hello", view: { id: "greeter", title: "Hi", file } }],
    );
    const list = await t.app.request("/api/ui/views");
    assert.deepEqual(await list.json(), [
      { module: "hello", id: "greeter", title: "Hi", url: "/ui/modules/hello/greeter.js" },
    ]);
    const script = await t.app.request("/ui/modules/hello/greeter.js");
    assert.equal(script.status, 200);
    assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.match(script.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    assert.match(await script.text(), /export function mount/);
    for (
      const path of [
        "/ui/modules/hello/secret.js",
        "/ui/modules/hello/page.js",
        "/ui/modules/other/greeter.js",
        "/ui/modules/hello/..%2Fsecret.js",
        "/ui/modules/hello/%2E%2E%2Fsecret.js",
        "/ui/modules/hello/greeter.js/../../secret.js",
      ]
    ) {
      const res = await t.app.request(path);
      const body = await res.text();
      assert.equal(res.status, 404, `${path}: ${body}`);
      assert.doesNotMatch(body, /TOP-SECRET/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GET /api/events streams deletions of jobs and actors as their latest change", async () => {
  using t = await setUp([{}]);
  const res = await t.app.request("/api/events?types=job,actor");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  assert.match((await reader.read()).value ?? "", /event: ready\n/);
  const job = (await t.kv.get<Job>(["jobs", "job-0"])).value!;
  t.events.emit({ type: "job", job: { ...job, status: "SUCCEEDED" } });
  t.events.emit({ type: "job-deleted", jobId: "job-0" });
  t.events.emit({ type: "actor-deleted", actorId: "jobsup_job-0" });
  t.events.emit({ type: "deployment", name: "web", deployment: null }); // not asked for
  // Each message is a write of its own: read until two have come.
  let text = "";
  while (text.split("\n\n").length < 3) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended after ${JSON.stringify(text)}`);
    text += value;
  }
  assert.deepEqual(text.trim().split("\n\n"), [
    'event: job-deleted\ndata: {"submission_id":"job-0"}',
    'event: actor-deleted\ndata: {"actor_id":"jobsup_job-0"}',
  ]);
  t.shutdown.abort();
  assert.equal((await reader.read()).done, true);
});
