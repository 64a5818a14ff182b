import assert from "node:assert/strict";
import {
  type AdmissionPolicy,
  admit as admitOrdered,
  impossibleDemand,
  type NodeState,
  type PendingJob,
  pickGpus,
  queueOrder,
  waitingReason,
} from "./admission.ts";
import { parseSelector } from "./labels.ts";

const GiB = 1024 ** 3;

function node(total: NodeState["total"], used: NodeState["used"] = {}, extra = {}): NodeState {
  return { name: "head", total, used, gpusInUse: [], running: 0, ...extra };
}

function job(id: string, demand: PendingJob["demand"], extra: Partial<PendingJob> = {}) {
  return { id, demand, priority: 0, seq: Number(id.replace(/\D/g, "")), queuedAt: 0, ...extra };
}

const policy = { now: 1_000, reserveAfterMs: 300_000 };

/** admit() over `pending` in queue order, with each waiting job's reason as the head says it. */
function admit(nodes: NodeState[], pending: PendingJob[], options: AdmissionPolicy) {
  const queue = pending.toSorted(queueOrder);
  const result = admitOrdered(nodes, queue, options);
  // The nodes once the placed jobs run, as a reader of a waiting job's message sees them.
  const started = nodes.map((n) => {
    const mine = result.placements.filter((p) => p.node === n.name);
    const used = { ...n.used };
    for (const p of mine) {
      for (const [name, amount] of Object.entries(queue.find((j) => j.id === p.id)!.demand)) {
        used[name] = (used[name] ?? 0) + amount;
      }
    }
    return { ...n, used, running: n.running + mine.length };
  });
  const running = started.reduce((sum, n) => sum + n.running, 0);
  const waiting = new Map<string, string>();
  const setAside = new Map<string, Record<string, number>>();
  for (
    const [ahead, job] of queue.filter((j) => !result.placements.some((p) => p.id === j.id))
      .entries()
  ) {
    const slotsFull = options.maxRunningJobs !== undefined && running >= options.maxRunningJobs
      ? options.maxRunningJobs
      : undefined;
    waiting.set(
      job.id,
      waitingReason(started, job.demand, {
        ahead,
        reserved: result.reserved.has(job.id),
        slotsFull,
        setAside: new Map(setAside),
      }),
    );
    const reservedOn = result.reserved.get(job.id);
    if (reservedOn) {
      const aside = { ...setAside.get(reservedOn) };
      for (const [name, amount] of Object.entries(job.demand)) {
        aside[name] = (aside[name] ?? 0) + amount;
      }
      setAside.set(reservedOn, aside);
    }
  }
  return { placements: result.placements, waiting };
}

Deno.test("admit() starts jobs first come first served while they fit", () => {
  const result = admit(
    [node({ CPU: 2 })],
    [job("j3", { CPU: 1 }), job("j1", { CPU: 1 }), job("j2", { CPU: 1 })],
    policy,
  );
  assert.deepEqual(result.placements.map((p) => p.id), ["j1", "j2"]);
  assert.equal(
    result.waiting.get("j3"),
    "Waiting for resources: needs CPU 1, 0 of 2 free; 0 jobs ahead",
  );
});

Deno.test("admit() lets a higher priority go first, and arrival order break ties", () => {
  const result = admit(
    [node({ CPU: 1 })],
    [job("j1", { CPU: 1 }), job("j2", { CPU: 1 }, { priority: 5 }), job("j3", { CPU: 1 })],
    policy,
  );
  assert.deepEqual(result.placements.map((p) => p.id), ["j2"]);
  assert.match(result.waiting.get("j3")!, /1 job ahead$/);
});

Deno.test("admit() backfills: a job that does not fit does not hold back smaller ones", () => {
  const result = admit(
    [node({ CPU: 8 }, { CPU: 6 }, { running: 1 })],
    [job("j1", { CPU: 4 }), job("j2", { CPU: 1 }), job("j3", { CPU: 2 })],
    policy,
  );
  assert.deepEqual(result.placements.map((p) => p.id), ["j2"]);
  assert.equal(
    result.waiting.get("j1"),
    "Waiting for resources: needs CPU 4, 1 of 8 free; 0 jobs ahead",
  );
  assert.equal(
    result.waiting.get("j3"),
    "Waiting for resources: needs CPU 2, 1 of 8 free; 1 job ahead",
  );
});

Deno.test("admit() sets aside what a job waiting past reserveAfterMs needs", () => {
  const nodes = [node({ CPU: 8 }, { CPU: 6 }, { running: 1 })];
  const pending = [
    job("j1", { CPU: 4 }, { queuedAt: 0 }),
    job("j2", { CPU: 1 }, { queuedAt: 200_000 }),
  ];
  const early = admit(nodes, pending, { now: 299_999, reserveAfterMs: 300_000 });
  assert.deepEqual(early.placements.map((p) => p.id), ["j2"], "backfill before the wait");
  const late = admit(nodes, pending, { now: 300_000, reserveAfterMs: 300_000 });
  assert.deepEqual(late.placements, [], "the 2 free CPUs are held for j1");
  assert.match(late.waiting.get("j1")!, /reserved as they free up$/);
  assert.match(late.waiting.get("j2")!, /needs CPU 1, 0 of 8 free; 1 job ahead$/);
});

Deno.test("admit() keeps at most maxRunningJobs running", () => {
  const result = admit(
    [node({ CPU: 8 }, { CPU: 1 }, { running: 1 })],
    [job("j1", {}), job("j2", {}), job("j3", {})],
    { ...policy, maxRunningJobs: 2 },
  );
  assert.deepEqual(result.placements.map((p) => p.id), ["j1"]);
  assert.equal(
    result.waiting.get("j2"),
    "Waiting for a running slot: --max-running-jobs 2 reached; 0 jobs ahead",
  );
});

Deno.test("admit() needs every resource of a job free, memory and custom ones too", () => {
  const nodes = [node({ CPU: 4, memory: 8 * GiB, license: 1 }, { memory: 7 * GiB })];
  const result = admit(
    nodes,
    [job("j1", { CPU: 1, memory: 2 * GiB }), job("j2", { license: 1 }), job("j3", { license: 1 })],
    policy,
  );
  assert.deepEqual(result.placements.map((p) => p.id), ["j2"]);
  assert.equal(
    result.waiting.get("j1"),
    "Waiting for resources: needs memory 2 GiB, 1 GiB of 8 GiB free; 0 jobs ahead",
  );
  assert.match(result.waiting.get("j3")!, /needs license 1, 0 of 1 free/);
});

Deno.test("admit() hands out distinct free GPU indices", () => {
  const result = admit(
    [node({ GPU: 4 }, { GPU: 2 }, { gpusInUse: [0, 2], running: 1 })],
    [job("j1", { GPU: 1 }), job("j2", { GPU: 1 }), job("j3", { GPU: 1 })],
    policy,
  );
  assert.deepEqual(result.placements, [
    { id: "j1", node: "head", gpus: [1] },
    { id: "j2", node: "head", gpus: [3] },
  ]);
  assert.ok(result.waiting.has("j3"));
});

Deno.test("admit() places on the node with the most CPU free, and pins by node resource", () => {
  const nodes = [
    node({ CPU: 4, "node:a": 1 }, { CPU: 3 }, { name: "a" }),
    node({ CPU: 4, "node:b": 1 }, { CPU: 1 }, { name: "b" }),
  ];
  const result = admit(nodes, [job("j1", { CPU: 1 }), job("j2", { "node:a": 0.001 })], policy);
  assert.deepEqual(result.placements.map((p) => [p.id, p.node]), [["j1", "b"], ["j2", "a"]]);
});

Deno.test("admit() adds fractional amounts without drift", () => {
  const pending = Array.from({ length: 10 }, (_, i) => job(`j${i}`, { CPU: 0.1 }));
  assert.equal(admit([node({ CPU: 1 })], pending, policy).placements.length, 10);
});

Deno.test("pickGpus() takes the lowest free indices, one for a fraction", () => {
  assert.deepEqual(pickGpus(4, new Set([1]), 2), [0, 2]);
  assert.deepEqual(pickGpus(2, new Set([0]), 0.5), [1]);
  assert.deepEqual(pickGpus(2, new Set(), 0), []);
});

Deno.test("impossibleDemand() names what no node could ever hold", () => {
  const nodes = [node({ CPU: 8, GPU: 0, memory: 16 * GiB })];
  assert.equal(impossibleDemand(nodes, { CPU: 8 }), undefined);
  assert.deepEqual(impossibleDemand(nodes, { CPU: 64 }), {
    resource: "CPU",
    message: "64 requested, the largest node has 8",
  });
  assert.deepEqual(impossibleDemand(nodes, { memory: 32 * GiB }), {
    resource: "memory",
    message: "32 GiB requested, the largest node has 16 GiB",
  });
  assert.equal(
    impossibleDemand(nodes, { license: 1 })?.message,
    "1 requested, the largest node has 0",
  );
  const two = [node({ CPU: 8 }, {}, { name: "a" }), node({ GPU: 1 }, {}, { name: "b" })];
  assert.match(impossibleDemand(two, { CPU: 1, GPU: 1 })!.message, /no node has all/);
});

Deno.test("admit() spreads jobs over nodes by default and packs them with pack", () => {
  const nodes = [node({ CPU: 4 }, {}, { name: "a" }), node({ CPU: 4 }, {}, { name: "b" })];
  const queue = [job("j1", { CPU: 1 }), job("j2", { CPU: 1 }), job("j3", { CPU: 1 })];
  const spread = admitOrdered(nodes, queue, policy).placements.map((p) => p.node);
  assert.deepEqual(spread, ["a", "b", "a"]);
  const packed = admitOrdered(nodes, queue, { ...policy, placement: "pack" }).placements
    .map((p) => p.node);
  assert.deepEqual(packed, ["a", "a", "a"]);
  // Pack still moves on when the fullest node cannot hold the job.
  const full = [node({ CPU: 4 }, { CPU: 4 }, { name: "a" }), node({ CPU: 4 }, {}, { name: "b" })];
  assert.deepEqual(
    admitOrdered(full, [job("j1", { CPU: 1 })], { ...policy, placement: "pack" }).placements
      .map((p) => p.node),
    ["b"],
  );
});

Deno.test("admit() places a job with a label selector only on nodes whose labels match", () => {
  const nodes = [
    node({ CPU: 8 }, {}, { name: "a", labels: { region: "us" } }),
    node({ CPU: 2 }, {}, { name: "b", labels: { region: "eu" } }),
  ];
  const selector = parseSelector({ region: "eu" });
  const result = admitOrdered(nodes, [
    job("j1", { CPU: 1 }, { selector }),
    job("j2", { CPU: 1 }, { selector }),
    job("j3", { CPU: 1 }, { selector }),
    job("j4", { CPU: 1 }),
  ], policy);
  assert.deepEqual(result.placements.map((p) => [p.id, p.node]), [
    ["j1", "b"],
    ["j2", "b"],
    ["j4", "a"],
  ]);
  assert.equal(
    waitingReason(nodes, { CPU: 1 }, { ahead: 0, reserved: false, selector }),
    "Waiting for resources: needs CPU 1, 2 of 2 free; 0 jobs ahead",
  );
  assert.equal(
    waitingReason(nodes, { CPU: 1 }, {
      ahead: 2,
      reserved: false,
      selector: parseSelector({ region: "in(ap, sa)" }),
    }),
    "Waiting for a node with labels region in(ap, sa): no node has them; 2 jobs ahead",
  );
  assert.equal(
    waitingReason([], { CPU: 1 }, { ahead: 0, reserved: false }),
    "Waiting for a node: none is alive; 0 jobs ahead",
  );
});

Deno.test("admit() honours a node:<name> pin like any resource", () => {
  const nodes = [
    node({ CPU: 8, "node:a": 1 }, {}, { name: "a" }),
    node({ CPU: 2, "node:b": 1 }, {}, { name: "b" }),
  ];
  const result = admitOrdered(nodes, [
    job("j1", { CPU: 1, "node:b": 0.001 }),
    job("j2", { CPU: 1, "node:b": 0.001 }),
    job("j3", { CPU: 1, "node:b": 0.001 }),
  ], policy);
  assert.deepEqual(result.placements.map((p) => p.node), ["b", "b"]);
});
