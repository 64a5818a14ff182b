import assert from "node:assert/strict";
import type { NodeState, PlacementStrategy } from "./admission.ts";
import { freeOnNode, NodeIndex } from "./node_index.ts";
import { fits, type Resources } from "./resources.ts";

function node(name: string, total: Resources, used: Resources = {}, extra = {}): NodeState {
  return { name, total, used, gpusInUse: [], running: 0, ...extra };
}

Deno.test("NodeIndex.find() takes the most CPU free (spread) or the least that fits (pack)", () => {
  const nodes = [
    node("a", { CPU: 4 }, { CPU: 1 }),
    node("b", { CPU: 4 }),
    node("c", { CPU: 4 }, { CPU: 3 }),
    node("d", { CPU: 4 }),
  ];
  const spread = NodeIndex.of(nodes);
  assert.equal(spread.find({ CPU: 1 })?.name, "b", "ties go to the node added first");
  assert.equal(spread.find({ CPU: 5 }), undefined);
  const pack = NodeIndex.of(nodes, "pack");
  assert.equal(pack.find({ CPU: 1 })?.name, "c");
  assert.equal(pack.find({ CPU: 2 })?.name, "a");
  assert.equal(pack.find({ CPU: 4 })?.name, "b");
  assert.equal(pack.find({ CPU: 1 }, (n) => n.name !== "c")?.name, "a", "accept filters");
});

Deno.test("NodeIndex.take() moves a node in the order, and trial() gives everything back", () => {
  const index = NodeIndex.of([node("a", { CPU: 2 }), node("b", { CPU: 2 })]);
  const placed = index.trial(() => {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const chosen = index.find({ CPU: 1 })!;
      index.take(chosen.name, { CPU: 1 });
      names.push(chosen.name);
    }
    assert.equal(index.find({ CPU: 1 }), undefined, "all taken");
    assert.deepEqual(index.freeOn("a"), {});
    return names;
  });
  assert.deepEqual(placed, ["a", "b", "a", "b"]);
  assert.deepEqual(index.freeOn("a"), { CPU: 2 });
  assert.equal(index.find({ CPU: 2 })?.name, "a");
  assert.throws(() => index.take("a", { CPU: 1 }), /outside a trial/);
});

Deno.test("NodeIndex looks at the nodes of a pin only, and keeps a replaced node's place", () => {
  const index = NodeIndex.of([
    node("a", { CPU: 8, "node:a": 1 }),
    node("b", { CPU: 2, "node:b": 1 }, {}, { running: 1 }),
  ]);
  assert.equal(index.find({ CPU: 1, "node:b": 0.001 })?.name, "b");
  assert.equal(index.find({ CPU: 3, "node:b": 0.001 }), undefined);
  assert.equal(index.find({ "node:z": 0.001 }), undefined, "no node has the pin");
  assert.equal(index.running, 1);
  index.set(node("a", { CPU: 2, "node:a": 1 }, {}, { running: 2 }));
  assert.equal(index.running, 3);
  assert.deepEqual(index.nodes.map((n) => n.name), ["a", "b"], "a keeps its place");
  assert.equal(index.find({ CPU: 1 })?.name, "a", "a tie: a was added first");
  assert.ok(index.delete("a"));
  assert.equal(index.delete("a"), false);
  assert.equal(index.find({ "node:a": 0.001 }), undefined);
  assert.equal(index.running, 1);
  assert.deepEqual(index.nodes.map((n) => n.name), ["b"]);
});

/** A small deterministic generator (mulberry32), so a failure can be run again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("NodeIndex.find() agrees with a walk of every node as takes change what is free", () => {
  for (const strategy of ["spread", "pack"] as PlacementStrategy[]) {
    const next = random(strategy === "spread" ? 1 : 2);
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)];
    const nodes = Array.from({ length: 40 }, (_, i) =>
      node(`n${i}`, {
        CPU: pick([1, 2, 4, 8]),
        ...(next() < 0.3 && { GPU: pick([1, 2]) }),
        [`node:n${i}`]: 1,
      }, next() < 0.5 ? { CPU: pick([0.5, 1, 2]) } : {}));
    const index = NodeIndex.of(nodes, strategy);
    /** The expected choice: among the nodes it fits, by CPU free, then by the nodes' order. */
    const walk = (demand: Resources) => {
      const order = index.nodes.map((n, position) => ({ n, position }))
        .filter(({ n }) => fits(index.freeOn(n.name)!, demand));
      const cpu = (n: NodeState) => index.freeOn(n.name)!.CPU ?? 0;
      order.sort((x, y) =>
        (strategy === "spread" ? cpu(y.n) - cpu(x.n) : cpu(x.n) - cpu(y.n)) ||
        x.position - y.position
      );
      return order[0]?.n.name;
    };
    index.trial(() => {
      for (let step = 0; step < 300; step++) {
        const demand: Resources = { CPU: pick([0.25, 0.5, 1, 2, 3]) };
        if (next() < 0.2) demand.GPU = 1;
        if (next() < 0.2) demand[`node:n${Math.floor(next() * 40)}`] = 0.001;
        const found = index.find(demand)?.name;
        assert.equal(found, walk(demand), `step ${step}: ${JSON.stringify(demand)}`);
        if (found) index.take(found, demand);
      }
    });
    for (const n of nodes) assert.deepEqual(index.freeOn(n.name), freeOnNode(n));
  }
});
