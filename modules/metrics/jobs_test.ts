import assert from "node:assert/strict";
import { EventBus } from "../../kit/events.ts";
import { KvActorStore } from "../../storage/actors.ts";
import { aJob, aJobStore } from "../../kit/job_record_fixture.ts";
import { FileLogStore } from "../../storage/logs.ts";
import { JobMetrics } from "./jobs.ts";
import { MetricsRegistry } from "../../kit/metrics.ts";
import { timeStoreWrites } from "./stores.ts";

/** The value of the line `series` (name and labels as written) in `text`. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

Deno.test("JobMetrics counts the store at start, then follows changes and deletions", async () => {
  using kv = await Deno.openKv(":memory:");
  const dir = await Deno.makeTempDir({ prefix: "jobhead-metrics-" });
  try {
    const registry = new MetricsRegistry();
    const metrics = new JobMetrics(registry);
    const stores = timeStoreWrites(registry, {
      jobs: aJobStore(kv),
      actors: new KvActorStore(kv),
    }, (id, status) => metrics.deleted(id, status));
    const logs = new FileLogStore(dir);
    await stores.jobs.create(aJob({ id: "done", status: "SUCCEEDED", end_time: 2_000 }));
    await stores.jobs.create(aJob({ id: "waiting" }));
    const events = new EventBus();
    metrics.start({ jobs: stores.jobs, logs }, events);
    let text = await registry.expose();
    assert.equal(valueOf(text, 'jobhead_jobs{status="SUCCEEDED"}'), 1);
    assert.equal(valueOf(text, 'jobhead_jobs{status="PENDING"}'), 1);

    await logs.create("waiting");
    const running = await stores.jobs.update("waiting", "PENDING", { status: "RUNNING" });
    events.emit({ type: "job", job: running });
    await Deno.writeTextFile(logs.pathOf("waiting"), "12345");
    const stopped = await stores.jobs.update("waiting", "RUNNING", {
      status: "STOPPED",
      stop_requested_at: Date.now() - 2_000,
      end_time: Date.now(),
    });
    events.emit({ type: "job", job: stopped });
    await stores.jobs.delete("done");
    text = await registry.expose();
    assert.equal(valueOf(text, 'jobhead_jobs{status="PENDING"}'), 0);
    assert.equal(valueOf(text, 'jobhead_jobs{status="RUNNING"}'), 0);
    assert.equal(valueOf(text, 'jobhead_jobs{status="STOPPED"}'), 1);
    assert.equal(valueOf(text, 'jobhead_jobs{status="SUCCEEDED"}'), 0);
    assert.equal(valueOf(text, "jobhead_job_start_latency_seconds_count"), 1);
    assert.equal(valueOf(text, "jobhead_job_stop_latency_seconds_count"), 1);
    assert.equal(valueOf(text, 'jobhead_job_stop_latency_seconds_bucket{le="1"}'), 0);
    assert.equal(valueOf(text, 'jobhead_job_stop_latency_seconds_bucket{le="2.5"}'), 1);
    assert.equal(valueOf(text, "jobhead_job_log_written_bytes_total"), 5);
    assert.equal(
      valueOf(text, 'jobhead_store_write_duration_seconds_count{store="jobs",op="delete"}'),
      1,
    );
    metrics.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JobMetrics: changes made while the store is counted win over what it reads", async () => {
  using kv = await Deno.openKv(":memory:");
  const registry = new MetricsRegistry();
  const metrics = new JobMetrics(registry);
  const jobs = aJobStore(kv);
  await jobs.create(aJob({ id: "done", status: "SUCCEEDED", end_time: 2_000 }));
  await jobs.create(aJob({ id: "failed", status: "FAILED", end_time: 2_000 }));
  await jobs.create(aJob({ id: "waiting" }));
  const events = new EventBus();
  metrics.start({ jobs, logs: new FileLogStore("/nonexistent") }, events);
  // The count has not read a page yet: these happen while it runs.
  events.emit({ type: "job", job: aJob({ id: "waiting", status: "RUNNING" }) });
  events.emit({ type: "job", job: aJob({ id: "new" }) });
  metrics.deleted("done", "SUCCEEDED");
  let text = await registry.expose();
  assert.equal(valueOf(text, 'jobhead_jobs{status="PENDING"}'), 1);
  assert.equal(valueOf(text, 'jobhead_jobs{status="RUNNING"}'), 1);
  assert.equal(valueOf(text, 'jobhead_jobs{status="SUCCEEDED"}'), 0);
  assert.equal(valueOf(text, 'jobhead_jobs{status="FAILED"}'), 1);

  events.emit({ type: "job", job: aJob({ id: "waiting", status: "SUCCEEDED", end_time: 3_000 }) });
  text = await registry.expose();
  assert.equal(valueOf(text, 'jobhead_jobs{status="RUNNING"}'), 0);
  assert.equal(valueOf(text, 'jobhead_jobs{status="SUCCEEDED"}'), 1);
  metrics.stop();
});
