import assert from "node:assert/strict";
import { jobsToFence, overdueNodes } from "./liveness.ts";

Deno.test("overdueNodes() names the ALIVE nodes silent past the timeout", () => {
  const nodes = [
    { name: "fresh", state: "ALIVE" as const, lastHeartbeat: 9_500 },
    { name: "edge", state: "ALIVE" as const, lastHeartbeat: 0 },
    { name: "late", state: "ALIVE" as const, lastHeartbeat: -1 },
    { name: "gone", state: "DEAD" as const, lastHeartbeat: -50_000 },
  ];
  assert.deepEqual(overdueNodes(nodes, 10_000, 10_000), ["late"]);
  assert.deepEqual(overdueNodes(nodes, 19_000, 10_000), ["edge", "late"]);
  assert.deepEqual(overdueNodes([], 20_000, 10_000), []);
});

Deno.test("jobsToFence() kills what was ended, deleted or moved while the node was away", () => {
  const terminal = (status: string) => ["FAILED", "STOPPED", "SUCCEEDED"].includes(status);
  const running = new Map([
    ["failed", { status: "FAILED", node: "n1" }],
    ["deleted", {}],
    ["moved", { status: "RUNNING", node: "n2" }],
    ["mine", { status: "RUNNING", node: "n1" }],
    ["placed", { status: "PENDING", node: "n1" }],
  ]);
  assert.deepEqual(jobsToFence("n1", running, terminal), ["failed", "deleted", "moved"]);
});
