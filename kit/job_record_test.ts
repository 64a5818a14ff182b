import assert from "node:assert/strict";
import { canMove, JobStatus } from "./job_record.ts";

Deno.test("canMove() allows PENDING → RUNNING → one terminal status, and staying put", () => {
  const moves = JobStatus.options.flatMap((from) =>
    JobStatus.options.filter((to) => from !== to && canMove(from, to)).map((to) => `${from}>${to}`)
  );
  assert.deepEqual(moves, [
    "PENDING>RUNNING",
    "PENDING>STOPPED",
    "PENDING>SUCCEEDED",
    "PENDING>FAILED",
    "RUNNING>STOPPED",
    "RUNNING>SUCCEEDED",
    "RUNNING>FAILED",
  ]);
  for (const status of JobStatus.options) assert.ok(canMove(status, status), status);
});
