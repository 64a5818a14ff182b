import assert from "node:assert/strict";
import { startTimeoutMessage, startTimeoutProblem, startTimeoutS } from "./start_timeout.ts";

Deno.test("startTimeoutS() takes a job's RAY_JOB_START_TIMEOUT_SECONDS over the head's", () => {
  assert.equal(startTimeoutS(undefined, 900), 900);
  assert.equal(startTimeoutS({ RAY_JOB_START_TIMEOUT_SECONDS: "0.5" }, 900), 0.5);
  assert.equal(startTimeoutS({ OTHER: "1" }, 900), 900);
});

Deno.test("startTimeoutProblem() refuses what is not a number of seconds above 0", () => {
  assert.equal(startTimeoutProblem({ RAY_JOB_START_TIMEOUT_SECONDS: "30" }), undefined);
  assert.equal(startTimeoutProblem(undefined), undefined);
  for (const bad of ["", "x", "0", "-1", "Infinity"]) {
    assert.match(
      startTimeoutProblem({ RAY_JOB_START_TIMEOUT_SECONDS: bad }) ?? "",
      /RAY_JOB_START_TIMEOUT_SECONDS: must be a number of seconds above 0/,
      bad,
    );
  }
});

Deno.test("startTimeoutMessage() words it as Ray does", () => {
  assert.equal(
    startTimeoutMessage(900),
    "Job supervisor actor failed to start within 900 seconds. This timeout can be configured " +
      "by setting the environment variable RAY_JOB_START_TIMEOUT_SECONDS.",
  );
});
