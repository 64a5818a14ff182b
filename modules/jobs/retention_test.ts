import assert from "node:assert/strict";
import { aJob } from "../../kit/job_record_fixture.ts";
import type { Job } from "../../kit/job_record.ts";
import { createLogger } from "../../kit/log.ts";
import { expiredJobs, sweepJobs } from "./retention.ts";

const DAY = 86_400_000;
const NOW = 100 * DAY;

/** Finished jobs j-0 (oldest) … j-(n-1), newest first as the store lists them; j-i ended on day i. */
function finishedJobs(n: number): Job[] {
  return Array.from(
    { length: n },
    (_, i) => aJob({ id: `j-${i}`, status: "SUCCEEDED", start_time: i * DAY, end_time: i * DAY }),
  )
    .reverse();
}

Deno.test("expiredJobs() keeps everything without a policy", () => {
  assert.deepEqual(expiredJobs(finishedJobs(5), {}, { finishedSeen: 0 }, NOW), []);
});

Deno.test("expiredJobs() lets the oldest finished jobs go past maxFinished, across pages", () => {
  const jobs = finishedJobs(10);
  const state = { finishedSeen: 0 };
  const policy = { maxFinished: 4 };
  const first = expiredJobs(jobs.slice(0, 3), policy, state, NOW);
  const rest = expiredJobs(jobs.slice(3), policy, state, NOW);
  assert.deepEqual(first, []);
  assert.deepEqual(rest, ["j-5", "j-4", "j-3", "j-2", "j-1", "j-0"]);
});

Deno.test("expiredJobs() lets jobs go that ended before the retention period, by the clock given", () => {
  const jobs = finishedJobs(10); // ended on days 0..9
  assert.deepEqual(expiredJobs(jobs, { retentionDays: 3 }, { finishedSeen: 0 }, 10 * DAY), [
    "j-6",
    "j-5",
    "j-4",
    "j-3",
    "j-2",
    "j-1",
    "j-0",
  ]);
  // A day later, one more goes.
  assert.equal(expiredJobs(jobs, { retentionDays: 3 }, { finishedSeen: 0 }, 11 * DAY).length, 8);
});

Deno.test("expiredJobs() never lets a running or pending job go, nor counts it", () => {
  const jobs = [
    aJob({ id: "run", status: "RUNNING", start_time: 0 }),
    aJob({ id: "wait", status: "PENDING", start_time: 0 }),
    ...finishedJobs(3),
  ];
  assert.deepEqual(
    expiredJobs(jobs, { maxFinished: 2, retentionDays: 0 }, { finishedSeen: 0 }, NOW),
    ["j-2", "j-1", "j-0"],
  );
  assert.deepEqual(expiredJobs(jobs, { maxFinished: 2 }, { finishedSeen: 0 }, NOW), ["j-0"]);
});

Deno.test("sweepJobs() pages through the store and deletes what the policy lets go", async () => {
  const store = new Map(finishedJobs(1234).map((job) => [job.id, job]));
  const newestFirst = () => [...store.values()].sort((a, b) => b.start_time - a.start_time);
  const deleted = await sweepJobs(
    {
      list: ({ limit, cursor }) => {
        const jobs = newestFirst();
        const from = cursor === undefined ? 0 : jobs.findIndex((j) => j.id === cursor) + 1;
        const page = jobs.slice(from, from + limit);
        const more = from + limit < jobs.length;
        return Promise.resolve({ jobs: page, cursor: more ? page[page.length - 1].id : undefined });
      },
      delete: (id) => {
        store.delete(id);
        return Promise.resolve();
      },
    },
    { maxFinished: 1000 },
    { now: () => NOW, logger: createLogger("test") },
  );
  assert.equal(deleted, 234);
  assert.equal(store.size, 1000);
  assert.ok(store.has("j-1233") && store.has("j-234") && !store.has("j-233"));
});
