/** End to end: a deleted job leaves nothing behind: no run files, no actor record, no cgroup. */
import assert from "node:assert/strict";
import { startHead, waitForStatus } from "./harness.ts";
import { submitJob } from "./helpers.ts";
import { cgroupOfHead } from "./cgroups.ts";
import { waitForEvent } from "./events.ts";
import { waitFor } from "./poll.ts";

const JOBS = 50;

for (
  const [mode, extraArgs] of [["cgroups where usable", []], ["--cgroup off", ["--cgroup", "off"]]]
) {
  Deno.test(`after 50 quick jobs are deleted, nothing of them is left (${mode})`, async () => {
    await deleteQuickJobs(extraArgs as string[]);
  });
}

/** Runs 50 quick jobs, deletes them, and checks run/, the actor records and the cgroups. */
async function deleteQuickJobs(extraArgs: string[]): Promise<void> {
  await using head = await startHead({ extraArgs });
  const run = crypto.randomUUID().slice(0, 8);
  const ids = await Promise.all(
    Array.from(
      { length: JOBS },
      (_, i) => submitJob(head, { submission_id: `quick-${run}-${i}`, entrypoint: "true" }),
    ),
  );
  for (const id of ids) await waitForStatus(head, id, ["SUCCEEDED"]);
  // Their supervisors' records exist (DEAD) before the delete.
  await waitForEvent(head, "every supervisor to be recorded DEAD", async () => {
    const { body } = await head.json("/api/actors?class_name=JobSupervisor&state=DEAD&limit=1000");
    return body.length === JOBS;
  }, { types: ["actor"] });
  for (const id of ids) {
    const res = await head.fetch(`/api/jobs/${id}`, { method: "DELETE" });
    assert.equal(res.status, 200, await res.text());
  }

  const left = [];
  for await (const entry of walk(`${head.dataDir}/run`)) {
    if (ids.some((id) => entry.includes(`jobsup_${id}.`))) left.push(entry);
  }
  assert.deepEqual(left, [], "run files of deleted jobs are left");
  const parent = cgroupOfHead(head.output().stderr);
  if (parent) {
    const cgroups = [];
    for await (const entry of Deno.readDir(parent)) if (entry.isDirectory) cgroups.push(entry.name);
    assert.deepEqual(cgroups, [], "cgroups of ended jobs are left");
  }
  // Polled: the event stream does not announce deletions.
  await waitFor("the supervisors' records to be deleted with their jobs", async () => {
    const { body } = await head.json("/api/actors?class_name=JobSupervisor&limit=1000");
    return body.length === 0;
  });
  for (const id of ids.slice(0, 3)) {
    assert.equal((await head.json(`/api/actors/jobsup_${id}`)).status, 404);
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else yield path;
  }
}
