import assert from "node:assert/strict";
import { STOP_WAIT_ENV, stopGraceMs, stopWaitProblem } from "./stop_grace.ts";

Deno.test("stopGraceMs() takes a process's own seconds, else the head's grace", () => {
  assert.equal(stopGraceMs(undefined, 3_000), 3_000);
  assert.equal(stopGraceMs({}, 3_000), 3_000);
  assert.equal(stopGraceMs({ [STOP_WAIT_ENV]: "0.5" }, 3_000), 500);
  assert.equal(stopGraceMs({ [STOP_WAIT_ENV]: "0" }, 3_000), 0);
  for (const bad of ["", " ", "-1", "soon", "Infinity"]) {
    assert.equal(stopGraceMs({ [STOP_WAIT_ENV]: bad }, 3_000), 3_000, bad);
  }
});

Deno.test("stopWaitProblem() accepts exactly what stopGraceMs() uses", () => {
  assert.equal(stopWaitProblem(undefined), undefined);
  assert.equal(stopWaitProblem({ [STOP_WAIT_ENV]: "2" }), undefined);
  for (const bad of ["", " ", "-1", "soon", "Infinity"]) {
    assert.equal(
      stopWaitProblem({ [STOP_WAIT_ENV]: bad }),
      `runtime_env.env_vars.${STOP_WAIT_ENV}: must be a number of seconds >= 0`,
      bad,
    );
  }
});
