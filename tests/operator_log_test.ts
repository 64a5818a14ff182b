/** The head's log is for operators: one line per event, no stack traces for what clients do. */
import assert from "node:assert/strict";
import { HANG_GUARD_MS, withTimeout } from "./fifos.ts";
import { type RunningHead, startHead } from "./harness.ts";
import { sendUpgrade, submitJob } from "./helpers.ts";

/** Opens a log tail over a raw socket, reads the 101, and closes the socket mid-stream. */
async function openAndDrop(head: RunningHead, id: string): Promise<string> {
  using conn = await sendUpgrade(head, `/api/jobs/${id}/logs/tail`);
  const buffer = new Uint8Array(1024);
  // The head is busy reading a fast writer's log: give it time on a loaded machine.
  const n = await withTimeout(conn.read(buffer), HANG_GUARD_MS, "an answer to a tail's upgrade");
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0];
}

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
      const tails = await Promise.all(Array.from({ length: 5 }, () => openAndDrop(head, id)));
      for (const status of tails) assert.match(status, /^HTTP\/1\.1 101 /);
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
