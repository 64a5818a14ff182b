import assert from "node:assert/strict";
import { WorkerPool, WorkerPoolClosedError } from "./worker_pool.ts";

const TASKS = "data:application/javascript," + encodeURIComponent(`
export function add(a, b) { return a + b; }
export function fail(message) { throw new RangeError(message); }
export function spin() { for (;;) {} }
`);

const sanitized = { sanitizeOps: true, sanitizeResources: true };

Deno.test(
  "WorkerPool.run() returns an export's value and rethrows its error",
  sanitized,
  async () => {
    const pool = new WorkerPool({ size: 2 });
    try {
      const sums = await Promise.all([1, 2, 3].map((n) => pool.run<number>(TASKS, "add", [n, 10])));
      assert.deepEqual(sums, [11, 12, 13]);
      await assert.rejects(pool.run(TASKS, "fail", ["too far"]), {
        name: "RangeError",
        message: "too far",
      });
      await assert.rejects(pool.run(TASKS, "missing"), /does not export a function "missing"/);
      assert.equal(
        await pool.run(TASKS, "add", [2, 2]),
        4,
        "a failed task leaves the pool working",
      );
    } finally {
      pool.close();
    }
  },
);

Deno.test(
  "WorkerPool.run() aborted mid-task terminates its worker; close() rejects the rest",
  sanitized,
  async () => {
    const pool = new WorkerPool({ size: 1 });
    const abort = new AbortController();
    const spinning = pool.run(TASKS, "spin", [], { signal: abort.signal });
    const queued = pool.run(TASKS, "add", [1, 1]);
    abort.abort(new Error("enough"));
    await assert.rejects(spinning, /enough/);
    assert.equal(await queued, 2, "the queue goes on in a fresh worker");

    const stuck = pool.run(TASKS, "spin");
    const waiting = pool.run(TASKS, "add", [1, 1]);
    pool.close();
    pool.close();
    await assert.rejects(stuck, WorkerPoolClosedError);
    await assert.rejects(waiting, WorkerPoolClosedError);
    await assert.rejects(pool.run(TASKS, "add", [1, 1]), WorkerPoolClosedError);
  },
);
