import assert from "node:assert/strict";
import { placeReplica } from "./placement.ts";

Deno.test("placeReplica() spreads a deployment's replicas over the nodes", () => {
  assert.equal(
    placeReplica([
      { name: "a", ofDeployment: 2, total: 2 },
      { name: "b", ofDeployment: 1, total: 5 },
      { name: "c", ofDeployment: 1, total: 3 },
    ]),
    "c",
  );
});

Deno.test("placeReplica() breaks ties by name, and has no answer without nodes", () => {
  assert.equal(
    placeReplica([
      { name: "b", ofDeployment: 0, total: 1 },
      { name: "a", ofDeployment: 0, total: 1 },
    ]),
    "a",
  );
  assert.equal(placeReplica([]), undefined);
});
