import assert from "node:assert/strict";
import { StoreUnavailableError } from "../errors.ts";
import { waitFor } from "../../tests/poll.ts";
import { Guard, isUnreachable, maskUrl } from "./connection.ts";

Deno.test("maskUrl() hides the password, and only it", () => {
  assert.equal(maskUrl("postgres://u:s3cret@db:5432/jh"), "postgres://u:***@db:5432/jh");
  assert.equal(maskUrl("postgres://u@db/jh"), "postgres://u@db/jh");
  assert.equal(maskUrl("postgres://u:p%40ss@db/jh?x=1"), "postgres://u:***@db/jh?x=1");
  assert.doesNotMatch(maskUrl("not a url u:s3cret@db"), /s3cret/);
});

Deno.test("isUnreachable() tells a server away from a refused call", () => {
  for (const code of ["ECONNREFUSED", "CONNECTION_CLOSED", "57P01", "57P03", "08006"]) {
    assert.ok(isUnreachable(Object.assign(new Error("x"), { code })), code);
  }
  for (const code of ["28P01", "23505", "40001", "42P01", "CONNECTION_ENDED"]) {
    assert.ok(!isUnreachable(Object.assign(new Error("x"), { code })), code);
  }
  assert.ok(!isUnreachable(new TypeError("bad key")));
});

Deno.test("Guard: an unreachable server fails fast until its back-off passes, then is tried again", async () => {
  const changes: boolean[] = [];
  const guard = new Guard("postgres://db/jh", (available) => changes.push(available));
  let calls = 0;
  const refused = () => {
    calls++;
    return Promise.reject(
      Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    );
  };
  await assert.rejects(guard.run(refused), (err: Error) => {
    assert.ok(err instanceof StoreUnavailableError);
    assert.equal(err.message, "The store postgres://db/jh is unavailable: connect ECONNREFUSED");
    return true;
  });
  await assert.rejects(guard.run(refused), StoreUnavailableError);
  assert.equal(calls, 1, "within the back-off the server is not tried");
  assert.equal(guard.available, false);
  // Polled: the back-off (50 ms first) is the guard's own clock.
  const answer = await waitFor("the guard to try the server again", () => {
    return guard.run(() => Promise.resolve("back")).catch(() => undefined);
  });
  assert.equal(answer, "back");
  assert.equal(guard.available, true);
  assert.deepEqual(changes, [false, true]);
  // Other errors pass through as they are; a conflict is tried again when asked.
  await assert.rejects(guard.run(() => Promise.reject(new TypeError("bad"))), TypeError);
  let attempts = 0;
  const result = await guard.run(() => {
    attempts++;
    if (attempts < 3) return Promise.reject(Object.assign(new Error("x"), { code: "40P01" }));
    return Promise.resolve("committed");
  }, { retryConflicts: true });
  assert.equal(result, "committed");
  assert.equal(attempts, 3);
});

Deno.test("Guard: a call that meets a connection the server ended is tried once more, on another", async () => {
  const changes: boolean[] = [];
  const guard = new Guard("postgres://db/jh", (available) => changes.push(available));
  const ended = () =>
    Object.assign(new Error("terminating connection due to administrator command"), {
      code: "57P01",
    });
  // A pooled connection ended while idle, the server back: the second try answers.
  let calls = 0;
  const answer = await guard.run(() => {
    calls++;
    return calls === 1 ? Promise.reject(ended()) : Promise.resolve("answered");
  });
  assert.deepEqual([answer, calls, changes], ["answered", 2, []]);
  // The server still going away: the second try meets it too, and the store is unavailable.
  calls = 0;
  await assert.rejects(
    guard.run(() => {
      calls++;
      return Promise.reject(ended());
    }),
    StoreUnavailableError,
  );
  assert.equal(calls, 2);
  assert.deepEqual(changes, [false]);
});
