import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../../kit/log.ts";
import { KvJobStore } from "../../storage/jobs.ts";
import { aJob } from "../../storage/jobs_fixture.ts";
import { FileLogStore } from "../../storage/logs.ts";
import { isLogExpired, LogMaintenance, trimOf } from "./log_maintenance.ts";

const DAY_MS = 86_400_000;

Deno.test("trimOf() keeps a quarter of the cap from the head and half from the tail", () => {
  assert.equal(trimOf(1000, 1000), undefined);
  assert.deepEqual(trimOf(1001, 1000), { keepHead: 250, keepTail: 500 });
  assert.deepEqual(trimOf(10_000, 1001), { keepHead: 250, keepTail: 500 });
});

Deno.test("isLogExpired() takes the logs of jobs ended before the cutoff, once", () => {
  const cutoff = 10 * DAY_MS;
  assert.equal(isLogExpired(aJob({ status: "RUNNING" }), cutoff), false);
  assert.equal(isLogExpired(aJob({ status: "FAILED", end_time: cutoff }), cutoff), false);
  assert.equal(isLogExpired(aJob({ status: "FAILED", end_time: cutoff - 1 }), cutoff), true);
  const removed = aJob({ status: "FAILED", end_time: 1, log_removed_at: 2 });
  assert.equal(isLogExpired(removed, cutoff), false);
});

Deno.test({
  name: "LogMaintenance caps a log over its cap, and expires the logs of old jobs only",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "jobhead-log-maintenance-" });
    try {
      using kv = await Deno.openKv(":memory:");
      const jobs = new KvJobStore(kv);
      const logs = new FileLogStore(join(dir, "logs"));
      const maintenance = new LogMaintenance({
        jobs,
        logs,
        logger: createLogger("test"),
        maxBytes: 16 * 1024,
        retentionDays: 7,
      });
      const now = 30 * DAY_MS;
      const old = aJob({ id: "old", status: "SUCCEEDED", start_time: 1, end_time: 2 });
      const recent = aJob({
        id: "recent",
        status: "FAILED",
        start_time: 3,
        end_time: now - DAY_MS,
      });
      const running = aJob({ id: "running", status: "RUNNING", start_time: 4 });
      for (const job of [old, recent, running]) {
        await jobs.create(job);
        await logs.create(job.id);
        await Deno.writeTextFile(logs.pathOf(job.id), "x".repeat(64 * 1024));
      }

      await maintenance.capLog("running");
      assert.deepEqual(logs.gapOf("running"), { start: 4096, end: 56 * 1024 });
      await maintenance.capLog("missing"); // no log: nothing to cap
      assert.equal(logs.gapOf("missing"), undefined);

      await maintenance.expireLogs(now);
      assert.equal(await logs.size("old"), 0);
      assert.notEqual((await jobs.get("old"))?.log_removed_at, undefined);
      assert.equal(await logs.size("recent"), 64 * 1024);
      assert.equal((await jobs.get("recent"))?.log_removed_at, undefined);
      assert.equal(await logs.size("running"), 64 * 1024);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
