import assert from "node:assert/strict";
import {
  countNvidiaDevices,
  detectCapacity,
  parseCfsQuota,
  parseCpuList,
  parseCpuMax,
  parseMemoryLimit,
  parseMemTotal,
  parseProcCgroup,
} from "./capacity.ts";
import { demandOf, parseByteSize } from "./resources.ts";

Deno.test("parseCpuMax() and parseCfsQuota() read CPU quotas, no limit as undefined", () => {
  assert.equal(parseCpuMax("200000 100000\n"), 2);
  assert.equal(parseCpuMax("50000 100000"), 0.5);
  assert.equal(parseCpuMax("max 100000"), undefined);
  assert.equal(parseCpuMax(""), undefined);
  assert.equal(parseCfsQuota("150000", "100000"), 1.5);
  assert.equal(parseCfsQuota("-1", "100000"), undefined);
});

Deno.test("parseCpuList() counts cpuset lists", () => {
  assert.equal(parseCpuList("0-3,6,8-9\n"), 7);
  assert.equal(parseCpuList("0"), 1);
  assert.equal(parseCpuList(""), undefined);
  assert.equal(parseCpuList("3-1"), undefined);
});

Deno.test("parseMemTotal() and parseMemoryLimit() read bytes; huge v1 limits mean none", () => {
  assert.equal(parseMemTotal("MemFree: 1 kB\nMemTotal:       24684096 kB\n"), 24684096 * 1024);
  assert.equal(parseMemTotal("nothing"), undefined);
  assert.equal(parseMemoryLimit("1073741824\n"), 1073741824);
  assert.equal(parseMemoryLimit("max\n"), undefined);
  assert.equal(parseMemoryLimit("9223372036854771712"), undefined);
});

Deno.test("parseProcCgroup() maps v2 as '' and v1 controllers by name", () => {
  const paths = parseProcCgroup("4:memory:/a/b\n3:cpu,cpuacct:/c\n0::/d\n");
  assert.equal(paths.get(""), "/d");
  assert.equal(paths.get("memory"), "/a/b");
  assert.equal(paths.get("cpu"), "/c");
  assert.equal(paths.get("cpuacct"), "/c");
});

Deno.test("countNvidiaDevices() counts nvidiaN, not the control devices", () => {
  assert.equal(countNvidiaDevices(["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"]), 2);
});

Deno.test("detectCapacity() finds at least one CPU and this machine's memory", async () => {
  const { resources, sources } = await detectCapacity();
  assert.ok(resources.CPU > 0 && resources.CPU <= navigator.hardwareConcurrency, sources.join());
  assert.ok(resources.memory > 0, sources.join());
  assert.equal(typeof resources.GPU, "number");
});

Deno.test("parseByteSize() takes binary suffixes, and refuses what is not a size", () => {
  assert.equal(parseByteSize("16G"), 16 * 1024 ** 3);
  assert.equal(parseByteSize("512Mi"), 512 * 1024 ** 2);
  assert.equal(parseByteSize("2gb"), 2 * 1024 ** 3);
  assert.equal(parseByteSize("1000"), 1000);
  assert.equal(parseByteSize("1.5K"), 1536);
  assert.equal(parseByteSize("lots"), undefined);
  assert.equal(parseByteSize("-1G"), undefined);
});

Deno.test("demandOf() keeps the nonzero amounts of Ray's request fields", () => {
  assert.deepEqual(
    demandOf({
      entrypoint_num_cpus: 2,
      entrypoint_num_gpus: 0,
      entrypoint_memory: null,
      entrypoint_resources: { license: 1, other: 0 },
    }),
    { CPU: 2, license: 1 },
  );
});
