/**
 * End to end: a stop racing a job's own exit gets an answer that matches the outcome, one
 * at a time and many at once.
 */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { startHead, TERMINAL, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertNoJobProcesses, jobLogs, q, stopJob, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";

const RACES = 1_000;
const CLIENTS = 20;

Deno.test({
  name: "1,000 stops racing their jobs' exits: true always ends STOPPED, false only once ended",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using head = await startHead();
    const counts = { stoppedTrue: 0, stoppedFalse: 0, stoppedWhilePending: 0 };
    const violations: string[] = [];
    let next = 0;
    const client = async () => {
      while (next < RACES) {
        const i = next++;
        // Jobs that end within milliseconds, and stops spread over their short lives.
        const id = await submitJob(head, {
          entrypoint: i % 2 === 0 ? "true" : `sleep 0.0${i % 10}`,
        });
        await delay(i % 7);
        const stopped = await stopJob(head, id);
        if (!stopped) {
          counts.stoppedFalse++;
          const now = await head.json(`/api/jobs/${id}`);
          if (!TERMINAL.includes(now.body.status) || now.body.status === "STOPPED") {
            violations.push(`"${id}": stop answered false, then the job was ${now.body.status}`);
          }
          continue;
        }
        counts.stoppedTrue++;
        const job = await waitForStatus(head, id, TERMINAL);
        if (job.driver_info === null) counts.stoppedWhilePending++;
        if (job.status !== "STOPPED") {
          violations.push(`"${id}": stop answered true, the job ended ${job.status}`);
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `${RACES} races, ${CLIENTS} clients, ${seconds} s: ${counts.stoppedTrue} true ` +
        `(${counts.stoppedWhilePending} while PENDING), ${counts.stoppedFalse} false, ` +
        `${violations.length} violations`,
    );
    assert.deepEqual(violations, []);
    // Both answers occurred: the stops did race the exits.
    assert.ok(counts.stoppedFalse > 0 && counts.stoppedTrue > 0, JSON.stringify(counts));
  },
});

Deno.test({
  name: "100 stops at once, racing their jobs' exits: each answer matches its job's end",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async () => {
    await using fifos = await Fifos.create();
    await using head = await startHead();
    // Every job says it is up, then waits on the gate: once the test has opened and closed
    // it, each job that reached it ends on its own (exit 0).
    const gate = await fifos.make("gate");
    const ids = await Promise.all(
      Array.from(
        { length: 100 },
        () => submitJob(head, { entrypoint: `echo up; read x <${q(gate)}; exit 0` }),
      ),
    );
    await Promise.all(
      ids.map((id) =>
        waitFor(`job "${id}" to be up`, async () => (await jobLogs(head, id)) === "up\n")
      ),
    );
    // The stops go all at once (their writes share commits), and the gate opens as they
    // go: they race the jobs' exits.
    const [answers] = await Promise.all([
      Promise.all(ids.map((id) => stopJob(head, id))),
      Deno.open(gate, { read: true, write: true }).then((file) => file.close()),
    ]);
    const violations: string[] = [];
    for (const [i, id] of ids.entries()) {
      const job = await waitForStatus(head, id, TERMINAL);
      const expected = answers[i] ? "STOPPED" : "SUCCEEDED";
      if (job.status !== expected) {
        violations.push(`"${id}": stop answered ${answers[i]}, the job ended ${job.status}`);
      }
    }
    const stoppedTrue = answers.filter(Boolean).length;
    console.log(
      `${ids.length} stops at once: ${stoppedTrue} true, ${ids.length - stoppedTrue} false`,
    );
    assert.deepEqual(violations, []);
    for (const id of ids) await assertNoJobProcesses(head, id);
  },
});
