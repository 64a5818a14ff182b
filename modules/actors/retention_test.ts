import assert from "node:assert/strict";
import { expiredActors } from "./retention.ts";

const MINUTE = 60_000;

Deno.test("expiredActors() takes DEAD actors that died before the period, by the clock given", () => {
  const actors = [
    { actor_id: "old", state: "DEAD" as const, end_time: 0 },
    { actor_id: "recent", state: "DEAD" as const, end_time: 50 * MINUTE },
    { actor_id: "alive", state: "ALIVE" as const, end_time: null },
    { actor_id: "restarting", state: "RESTARTING" as const, end_time: 0 },
  ];
  assert.deepEqual(expiredActors(actors, 60 * MINUTE, 30), ["old"]);
  assert.deepEqual(expiredActors(actors, 120 * MINUTE, 30), ["old", "recent"]);
  assert.deepEqual(expiredActors(actors, 1_000 * MINUTE, 0).includes("alive"), false);
});
