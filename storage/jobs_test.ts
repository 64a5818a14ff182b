import assert from "node:assert/strict";
import { ConflictError, InvalidStateError, NotFoundError } from "./errors.ts";
import type { Job } from "../kit/job_record.ts";
import { aJob, aJobStore } from "../kit/job_record_fixture.ts";
import { decodeCursor, encodeCursor, JobCursor } from "./jobs.ts";
import type { KvStore } from "./kv.ts";
import { openPostgresStore } from "./postgres/mod.ts";
import { createTestDatabase } from "../tests/postgres.ts";

Deno.test("KvJobStore.create() rejects an id that already exists", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  await store.create(aJob());
  await assert.rejects(
    store.create(aJob({ entrypoint: "false" })),
    (err: Error) =>
      err instanceof ConflictError &&
      err.message ===
        "Job with submission_id job-1 already exists. Please use a different submission_id.",
  );
  assert.equal((await store.get("job-1"))?.entrypoint, "true");
});

Deno.test("KvJobStore.update() lets one terminal status win", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  await store.create(aJob({ status: "RUNNING" }));
  const results = await Promise.allSettled([
    store.update("job-1", "RUNNING", { status: "SUCCEEDED" }),
    store.update("job-1", "RUNNING", { status: "STOPPED" }),
  ]);
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  const loser = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
  assert.ok(loser.reason instanceof ConflictError);
  assert.ok(["SUCCEEDED", "STOPPED"].includes((await store.get("job-1"))!.status));
});

Deno.test("KvJobStore.update() keeps a change made by another writer meanwhile", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  await store.create(aJob({ status: "RUNNING" }));
  await Promise.all([
    store.update("job-1", "RUNNING", { stop_requested_at: 5 }),
    store.update("job-1", "RUNNING", { message: "m" }),
  ]);
  const job = (await store.get("job-1"))!;
  assert.equal(job.stop_requested_at, 5);
  assert.equal(job.message, "m");
});

/**
 * `kv` whose next read, once `holdNextRead()` is called, answers only when the returned
 * `release` is called; `read` resolves once that read has been made in the store.
 */
function withHeldRead(kv: Deno.Kv) {
  let held: { read: () => void; answer: Promise<void> } | undefined;
  const store: KvStore = new Proxy(kv, {
    get(target, name) {
      if (name === "get") {
        return async (key: Deno.KvKey) => {
          const hold = held;
          held = undefined;
          const entry = await target.get(key);
          if (hold) {
            hold.read();
            await hold.answer;
          }
          return entry;
        };
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const holdNextRead = () => {
    const read = Promise.withResolvers<void>();
    const answer = Promise.withResolvers<void>();
    held = { read: read.resolve, answer: answer.promise };
    return { read: read.promise, release: answer.resolve };
  };
  return { store, holdNextRead };
}

Deno.test("KvJobStore.update() decides again from the record another writer changed", async () => {
  using kv = await Deno.openKv(":memory:");
  const { store: heldKv, holdNextRead } = withHeldRead(kv);
  const store = aJobStore(heldKv);
  await store.create(aJob({ status: "RUNNING" }));
  const seen: (number | null)[] = [];
  const decide = (job: Job) => {
    seen.push(job.stop_requested_at);
    return { status: job.stop_requested_at === null ? "SUCCEEDED" : "STOPPED" } as const;
  };
  // The deciding update reads the job; a stop is recorded before it answers.
  const hold = holdNextRead();
  const ending = store.update("job-1", ["PENDING", "RUNNING"], decide);
  await hold.read;
  await store.update("job-1", ["PENDING", "RUNNING"], { stop_requested_at: 5 });
  hold.release();
  const ended = await ending;
  assert.deepEqual(seen, [null, 5]);
  assert.equal(ended.status, "STOPPED");
  await assert.rejects(
    store.update("job-1", ["PENDING", "RUNNING"], { stop_requested_at: 6 }),
    ConflictError,
  );
  assert.equal((await store.get("job-1"))?.stop_requested_at, 5);
  assert.equal(store.storageFull(), undefined);
});

Deno.test("KvJobStore.update() decides from the job as written here, or reads it if it changed", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  const job = aJob();
  const versionstamp = await store.create(job);
  assert.equal(versionstamp, (await kv.get(["jobs", "job-1"])).versionstamp);
  const seen: (number | null)[] = [];
  const decide = (current: Job) => {
    seen.push(current.stop_requested_at);
    return { message: "placed" };
  };
  // Unchanged since it was written: decided from it, in one write.
  const placed = await store.update("job-1", "PENDING", decide, {
    written: { job, versionstamp },
  });
  assert.deepEqual(seen, [null]);
  assert.equal(placed.message, "placed");
  // Changed since: the stale copy's write fails its check, and the stored job decides.
  await store.update("job-1", "PENDING", { stop_requested_at: 5 });
  seen.length = 0;
  await store.update("job-1", "PENDING", decide, { written: { job, versionstamp } });
  assert.deepEqual(seen, [null, 5]);
  assert.equal((await store.get("job-1"))!.stop_requested_at, 5);
  // What a stale copy would refuse is not the answer: the stored job is read.
  await store.update("job-1", "PENDING", { status: "RUNNING" });
  const running = { job: { ...job, status: "SUCCEEDED" as const }, versionstamp };
  const ended = await store.update("job-1", "RUNNING", { status: "SUCCEEDED" }, {
    written: running,
  });
  assert.equal(ended.status, "SUCCEEDED");
  assert.equal(ended.stop_requested_at, 5);
});

Deno.test("KvJobStore.update() of a missing job throws NotFoundError", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  await assert.rejects(store.update("nope", "PENDING", {}), NotFoundError);
});

Deno.test("KvJobStore.list() pages newest first and filters by status", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  for (let i = 0; i < 25; i++) {
    await store.create(aJob({
      id: `j${String(i).padStart(2, "0")}`,
      start_time: 1_000 + i,
      status: i % 2 ? "RUNNING" : "PENDING",
    }));
  }
  const first = await store.list({ limit: 10 });
  assert.deepEqual(first.jobs.map((j) => j.id).slice(0, 3), ["j24", "j23", "j22"]);
  assert.ok(first.cursor);
  const seen = [...first.jobs];
  let cursor: string | undefined = first.cursor;
  while (cursor) {
    const page = await store.list({ limit: 10, cursor });
    seen.push(...page.jobs);
    cursor = page.cursor;
  }
  assert.equal(seen.length, 25);
  assert.equal(new Set(seen.map((j) => j.id)).size, 25);
  const running = await store.list({ statuses: ["RUNNING"], limit: 5 });
  assert.equal(running.jobs.length, 5);
  assert.ok(running.jobs.every((j) => j.status === "RUNNING"));
  assert.equal(running.jobs[0].id, "j23");
  const all = await store.list({ statuses: ["RUNNING"], cursor: running.cursor });
  assert.equal(all.jobs.length, 7);
  assert.equal(all.cursor, undefined);
});

Deno.test("KvJobStore.listActive() drops jobs once terminal, and delete() removes them", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  await store.create(aJob({ id: "a", status: "RUNNING" }));
  await store.create(aJob({ id: "b", status: "RUNNING", start_time: 2_000 }));
  await store.update("a", "RUNNING", { status: "FAILED" });
  assert.deepEqual((await store.listActive()).map((j) => j.id), ["b"]);
  await store.delete("a");
  assert.equal(await store.get("a"), undefined);
  assert.deepEqual((await store.list()).jobs.map((j) => j.id), ["b"]);
  await assert.rejects(store.delete("a"), NotFoundError);
});

Deno.test("decodeCursor() rejects what it did not issue", () => {
  assert.throws(() => decodeCursor("not a cursor"), TypeError);
  assert.throws(() => decodeCursor(btoa('{"a":1}')), TypeError);
});

Deno.test("KvJobStore.update() moves statuses only forward", async () => {
  using kv = await Deno.openKv(":memory:");
  const store = aJobStore(kv);
  await store.create(aJob({ status: "RUNNING" }));
  await assert.rejects(
    store.update("job-1", "RUNNING", { status: "PENDING" }),
    (err: Error) =>
      err instanceof InvalidStateError &&
      err.message === 'Cannot move job "job-1" from RUNNING to PENDING: statuses only move forward',
  );
  await store.update("job-1", "RUNNING", { status: "FAILED" });
  await assert.rejects(store.update("job-1", "FAILED", { status: "SUCCEEDED" }), InvalidStateError);
  // A terminal job still takes changes that keep its status.
  const marked = await store.update("job-1", "FAILED", { log_removed_at: 7 });
  assert.deepEqual([marked.status, marked.log_removed_at], ["FAILED", 7]);
  assert.equal((await store.get("job-1"))?.status, "FAILED");
});

Deno.test("JobCursor takes the cursors encodeCursor() makes, and nothing else", () => {
  assert.ok(JobCursor.safeParse(encodeCursor(aJob())).success);
  for (const bad of ["", "abc", btoa("[1]"), btoa('["x","y"]')]) {
    const result = JobCursor.safeParse(bad);
    assert.equal(result.error?.issues[0].message, "not a cursor this server issued", bad);
  }
});

/** Registers `body` once per backend: Deno KV in memory, and a fresh PostgreSQL database. */
function bothBackends(name: string, body: (kv: KvStore) => Promise<void>): void {
  Deno.test(`${name} (Deno KV)`, async () => {
    using kv = await Deno.openKv(":memory:");
    await body(kv);
  });
  Deno.test(`${name} (PostgreSQL)`, async () => {
    const db = await createTestDatabase();
    const store = await openPostgresStore(db.url, { password: db.password });
    try {
      await body(store.kv);
    } finally {
      await store.close();
    }
  });
}

bothBackends(
  "KvJobStore.update(): stops and exits of many jobs at once, batched, each decided as if alone",
  async (kv) => {
    const store = aJobStore(kv);
    const ids = Array.from({ length: 240 }, (_, i) => `job-${i}`);
    await Promise.all(ids.map((id) => store.create(aJob({ id, status: "RUNNING" }))));
    // For each job a stop (stored once, or refused once the job has ended) and its exit
    // (STOPPED if a stop is stored first), all in flight together: batches hold writes
    // whose checks went stale while an earlier batch committed.
    const exit = (job: Job) =>
      ({ status: job.stop_requested_at === null ? "SUCCEEDED" : "STOPPED" }) as const;
    const results = await Promise.all(ids.map(async (id, i) => {
      const stop = () =>
        store.update(id, ["PENDING", "RUNNING"], { stop_requested_at: 5 }, { once: true }).then(
          () => true,
          (err) => {
            if (err instanceof ConflictError) return false;
            throw err;
          },
        );
      const end = () => store.update(id, ["PENDING", "RUNNING"], exit);
      // Half the stops go first, half the exits.
      const [stopped] = i % 2 === 0
        ? await Promise.all([stop(), end()])
        : await Promise.all([end().then(stop), Promise.resolve()]).then(([s]) => [s]);
      return { id, stopped };
    }));
    for (const { id, stopped } of results) {
      const job = (await store.get(id))!;
      if (stopped) {
        assert.equal(job.status, "STOPPED", `the stored stop of "${id}" lost`);
        assert.equal(job.stop_requested_at, 5);
      } else {
        assert.equal(job.status, "SUCCEEDED", `the refused stop of "${id}" was kept`);
        assert.equal(job.stop_requested_at, null);
      }
    }
    assert.ok(results.some((r) => r.stopped), "no stop was stored");
    assert.ok(results.some((r) => !r.stopped), "no exit came first");
    assert.deepEqual((await store.listActive()).map((job) => job.id), []);
  },
);

bothBackends(
  "KvJobStore.update(): writes too large to commit together each land alone",
  async (kv) => {
    const store = aJobStore(kv);
    const ids = Array.from({ length: 40 }, (_, i) => `job-${i}`);
    await Promise.all(ids.map((id) => store.create(aJob({ id, status: "RUNNING" }))));
    // 40 records of 60 kB each pass KV's 800 kB per commit: a batch of them cannot land.
    const message = "x".repeat(60_000);
    await Promise.all(
      ids.map((id) => store.update(id, "RUNNING", { status: "FAILED", message }, { once: true })),
    );
    for (const id of ids) assert.equal((await store.get(id))?.status, "FAILED");
  },
);
