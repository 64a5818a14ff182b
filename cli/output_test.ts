import assert from "node:assert/strict";
import { aJobDetails } from "../client/job_details_fixture.ts";
import {
  formatBytes,
  formatCluster,
  formatDuration,
  formatJobTable,
  formatResources,
  oneLine,
  OrderedOutput,
} from "./output.ts";

Deno.test("formatBytes() and formatDuration() read well", () => {
  assert.equal(formatBytes(512), "512 bytes");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(5 * 1024 ** 3), "5.0 GiB");
  assert.equal(formatDuration(850), "850ms");
  assert.equal(formatDuration(12_340), "12.3s");
  assert.equal(formatDuration(245_000), "4m05s");
  assert.equal(formatDuration(7_380_000), "2h03m");
  assert.equal(oneLine("first\nsecond"), "first …");
  assert.equal(oneLine("abcdef", 4), "abc…");
});

Deno.test("OrderedOutput holds text back while held and keeps its order", async () => {
  const written: string[] = [];
  const output = new OrderedOutput(async (text) => {
    await Promise.resolve();
    written.push(text);
  });
  await output.write("a");
  output.hold();
  await output.write("b");
  await output.write("c");
  assert.deepEqual(written, ["a"]);
  await output.release();
  await output.write("d");
  assert.deepEqual(written, ["a", "b", "c", "d"]);
});

Deno.test("formatResources() lists what a job asks for, compactly", () => {
  assert.equal(formatResources(aJobDetails({})), "-");
  assert.equal(
    formatResources(aJobDetails({
      entrypoint_num_cpus: 2,
      entrypoint_num_gpus: 1,
      entrypoint_memory: 4 * 1024 ** 3,
      entrypoint_resources: { license: 1 },
    })),
    "2 CPU · 1 GPU · 4 GiB · 1 license",
  );
});

Deno.test("formatJobTable() shows the resources, and what a PENDING job waits for", () => {
  const table = formatJobTable([
    aJobDetails({
      submission_id: "waits",
      status: "PENDING",
      message: "Waiting for resources: CPU",
    }),
    aJobDetails({ submission_id: "runs", entrypoint_num_cpus: 0.5 }),
  ]);
  const lines = table.split("\n");
  assert.match(lines[0], /^SUBMISSION ID +STATUS +SUBMITTED +DURATION +RESOURCES +ENTRYPOINT$/);
  assert.match(lines[1], /^waits +PENDING .* - +true$/);
  assert.equal(lines[2], "  ↳ Waiting for resources: CPU");
  assert.match(lines[3], /^runs +RUNNING .* 0\.5 CPU +true$/);
});

Deno.test("formatCluster() prints each node's use, memory in GiB, and the queue", () => {
  const text = formatCluster({
    nodes: [{
      name: "head",
      state: "ALIVE",
      last_heartbeat: Date.now(),
      total: { CPU: 2, GPU: 0, memory: 16 * 1024 ** 3, license: 2 },
      used: { CPU: 1.5, memory: 4 * 1024 ** 3 },
      free: { CPU: 0.5, GPU: 0, memory: 12 * 1024 ** 3, license: 2 },
      gpus_in_use: [],
      running: 2,
      pending: 3,
    }],
    running: 2,
    pending: 3,
    max_running_jobs: 4,
    reserve_after_s: 300,
  });
  const lines = text.split("\n");
  assert.match(lines[0], /^Node head: ALIVE, last heartbeat \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.deepEqual(lines.slice(1), [
    "  CPU      1.5/2 used",
    "  GPU      none",
    "  memory   4.0/16.0 GiB used",
    "  license  0/2 used",
    "  Jobs: 2 running, 3 pending",
    "Cluster: 2 running, 3 pending (at most 4 running at a time)",
    "",
  ]);
});
