/** The head's log is for operators: one line per event, no stack traces for what clients do. */
import assert from "node:assert/strict";
import { startHead } from "./harness.ts";
import { rawUpgrade, submitJob } from "./helpers.ts";

Deno.test({
  name: "followers that leave early and event streams that are dropped print no stack trace",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using head = await startHead();
    // A job that writes far more than a follower takes: the hub is mid-read when it closes.
    const id = await submitJob(head, {
      entrypoint: "yes 'a line of the log' | head -c 2000000000",
    });
    for (let round = 0; round < 40; round++) {
      // rawUpgrade reads the 101 answer and closes the socket at once, mid-stream.
      const tails = await Promise.all(
        Array.from({ length: 5 }, () => rawUpgrade(head, `/api/jobs/${id}/logs/tail`)),
      );
      for (const tail of tails) assert.equal(tail.status, 101);
    }
    for (let i = 0; i < 3; i++) {
      const drop = new AbortController();
      const res = await head.fetch("/api/events", { signal: drop.signal });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      assert.match(new TextDecoder().decode((await reader.read()).value), /event: ready/);
      drop.abort();
      await reader.closed.catch(() => {});
    }
    assert.equal((await head.json(`/api/jobs/${id}/stop`, { method: "POST" })).status, 200);
    await head.kill("SIGTERM"); // all it printed is in once it has exited
    const { stderr } = head.output();
    assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace on stderr:\n${stderr.slice(0, 2000)}`);
    assert.doesNotMatch(stderr, /legacy/i, `a legacy warning on stderr:\n${stderr}`);
  },
});
