import assert from "node:assert/strict";
import { type QueuedJob, type QueueExit, Scheduler } from "./scheduler.ts";

/** A scheduler on one node of `total`, and the jobs it places and expires. */
function setUp(total: Record<string, number>, options: { maxRunningJobs?: number } = {}) {
  const placed: { id: string; gpus: number[] }[] = [];
  const expired: string[] = [];
  let wake = () => {};
  const scheduler = new Scheduler({
    nodes: [{ name: "head", total }],
    reserveAfterMs: 300_000,
    ...options,
  });
  /** Resolves at the next placement or expiry. */
  const next = () => new Promise<void>((resolve) => wake = resolve);
  let seq = 0;
  /** A queued job that records its placement or expiry. */
  const queued = (id: string, demand: Record<string, number>, extra = {}): QueuedJob => ({
    id,
    demand,
    priority: 0,
    seq: ++seq,
    queuedAt: Date.now(),
    onPlace: (placement) => {
      placed.push({ id: placement.id, gpus: placement.gpus });
      wake();
    },
    onExpire: () => {
      expired.push(id);
      wake();
    },
    ...extra,
  });
  return { scheduler, placed, expired, next, queued };
}

Deno.test("Scheduler places in order as capacity frees, and says why the rest wait", async () => {
  const { scheduler, placed, next, queued } = setUp({ CPU: 2 });
  for (const id of ["a", "b", "c", "d"]) scheduler.enqueue(queued(id, { CPU: 1 }));
  await next();
  assert.deepEqual(placed.map((p) => p.id), ["a", "b"]);
  assert.equal(
    scheduler.reasonFor("d"),
    "Waiting for resources: needs CPU 1, 0 of 2 free; 1 job ahead",
  );
  assert.equal(scheduler.reasonFor("a"), undefined, "a runs");
  scheduler.release("b");
  await next();
  assert.deepEqual(placed.map((p) => p.id), ["a", "b", "c"]);
  assert.match(scheduler.reasonFor("d")!, /0 jobs ahead$/);
  const state = scheduler.state();
  assert.deepEqual(state.nodes[0].total, { CPU: 2 });
  assert.deepEqual(state.nodes[0].free, { CPU: 0 });
  assert.equal(state.nodes[0].running, 2);
  assert.equal(state.pending, 1);
  scheduler.close();
});

Deno.test("Scheduler.cancel() frees a waiting job's place, and hold() counts adopted jobs", async () => {
  const { scheduler, placed, next, queued } = setUp({ CPU: 1, GPU: 2 });
  scheduler.hold({ id: "adopted", node: "head", demand: { CPU: 1, GPU: 1 }, gpus: [0] });
  scheduler.enqueue(queued("x", { CPU: 1 }));
  scheduler.enqueue(queued("y", { GPU: 1 }));
  await next();
  assert.deepEqual(placed, [{ id: "y", gpus: [1] }], "GPU 0 is the adopted job's");
  assert.equal(scheduler.cancel("x"), true);
  assert.equal(scheduler.cancel("x"), false);
  assert.equal(scheduler.isQueued("x"), false);
  scheduler.close();
});

Deno.test("Scheduler expires a job that waits past its deadline", async () => {
  const { scheduler, expired, next, queued } = setUp({ CPU: 1 }, { maxRunningJobs: 0 });
  scheduler.enqueue(queued("late", {}, { deadline: Date.now() + 20 }));
  scheduler.enqueue(queued("never", {}));
  assert.match(scheduler.reasonFor("late")!, /^Waiting for a running slot/);
  await next();
  assert.deepEqual(expired, ["late"]);
  assert.equal(scheduler.isQueued("late"), false);
  assert.equal(scheduler.isQueued("never"), true);
  scheduler.close();
});

Deno.test("Scheduler.refusal() names the submit field and the largest node", () => {
  const { scheduler } = setUp({ CPU: 8, GPU: 0, memory: 1024 });
  assert.equal(
    scheduler.refusal({ CPU: 64 }),
    "entrypoint_num_cpus: 64 requested, the largest node has 8",
  );
  assert.equal(
    scheduler.refusal({ GPU: 1 }),
    "entrypoint_num_gpus: 1 requested, the largest node has 0",
  );
  assert.equal(
    scheduler.refusal({ license: 2 }),
    "entrypoint_resources.license: 2 requested, the largest node has 0",
  );
  assert.equal(scheduler.refusal({ "node:head": 0.01, CPU: 8 }), undefined);
  scheduler.close();
});

Deno.test("Scheduler tells of jobs that leave the queue to start or expire, with their wait", async () => {
  const { scheduler, next, queued } = setUp({ CPU: 1 });
  const exits: QueueExit[] = [];
  const unsubscribe = scheduler.onQueueExit((exit) => exits.push(exit));
  const waitedSince = Date.now() - 5_000;
  scheduler.enqueue(queued("first", { CPU: 1 }, { queuedAt: waitedSince }));
  scheduler.enqueue(queued("cancelled", { CPU: 1 }));
  scheduler.enqueue(queued("late", { CPU: 1 }, { deadline: Date.now() + 20 }));
  assert.equal(scheduler.queueLength, 3);
  await next(); // "first" starts
  assert.equal(scheduler.queueLength, 2);
  scheduler.cancel("cancelled");
  await next(); // "late" expires
  assert.equal(scheduler.queueLength, 0);
  assert.deepEqual(exits.map(({ id, outcome }) => [id, outcome]), [
    ["first", "placed"],
    ["late", "expired"],
  ]);
  assert.ok(exits[0].waitedMs >= 5_000, `waited ${exits[0].waitedMs} ms`);
  unsubscribe();
  scheduler.release("first");
  scheduler.enqueue(queued("unheard", { CPU: 1 }));
  await next();
  assert.equal(exits.length, 2);
  scheduler.close();
});
