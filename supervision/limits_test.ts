import assert from "node:assert/strict";
import {
  ActorLimits,
  cgroupV1MountOf,
  chooseLimitPlace,
  describeLimitPlace,
  limitWrites,
  oomFileOf,
  ownCgroupV1Path,
  parseOomKills,
} from "./limits.ts";
import { CgroupTree } from "./cgroup.ts";

const MOUNT_INFO = [
  "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  "33 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset",
  "35 31 0:32 / /sys/fs/my\\040memory rw,relatime - cgroup cgroup rw,memory",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");

Deno.test("cgroupV1MountOf() finds the v1 hierarchy of a controller, also mounted with others", () => {
  assert.equal(cgroupV1MountOf(MOUNT_INFO, "cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(cgroupV1MountOf(MOUNT_INFO, "memory"), "/sys/fs/my memory");
  assert.equal(cgroupV1MountOf(MOUNT_INFO, "pids"), undefined);
  assert.equal(cgroupV1MountOf("", "memory"), undefined);
});

Deno.test("ownCgroupV1Path() reads the controller's line of /proc/self/cgroup", () => {
  const procCgroup = "9:name=systemd:/\n4:memory:/process_api/ab\n2:cpu,cpuacct:/c\n0::/\n";
  assert.equal(ownCgroupV1Path(procCgroup, "memory"), "/process_api/ab");
  assert.equal(ownCgroupV1Path(procCgroup, "cpu"), "/c");
  assert.equal(ownCgroupV1Path(procCgroup, "cpuset"), "/");
  assert.equal(ownCgroupV1Path("0::/x\n", "memory"), "/");
});

Deno.test("parseOomKills() reads memory.events and memory.oom_control", () => {
  assert.equal(oomFileOf(2), "memory.events");
  assert.equal(oomFileOf(1), "memory.oom_control");
  assert.equal(parseOomKills("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n"), 1);
  assert.equal(parseOomKills("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 3);
  // Kernels before 4.13 do not count kills: none is claimed.
  assert.equal(parseOomKills("oom_kill_disable 0\nunder_oom 0\n"), 0);
  assert.equal(parseOomKills(""), 0);
});

Deno.test("chooseLimitPlace() prefers the v2 tree, then a v1 hierarchy, else none", () => {
  assert.deepEqual(chooseLimitPlace("/v2/j", "/v1/j"), { version: 2, path: "/v2/j" });
  assert.deepEqual(chooseLimitPlace(undefined, "/v1/j"), { version: 1, path: "/v1/j" });
  assert.equal(chooseLimitPlace(undefined, undefined), undefined);
  assert.equal(
    describeLimitPlace("memory", { version: 1, path: "/v1/j" }),
    "memory limits use cgroup v1 at /v1/j",
  );
  assert.equal(
    describeLimitPlace("memory", undefined),
    "memory limits are admission only: no writable cgroup memory controller",
  );
  assert.equal(
    describeLimitPlace("cpu", { version: 2, path: "/v2/j" }),
    "cpu limits (--enforce-cpu) use cgroup v2 at /v2/j",
  );
});

Deno.test("limitWrites() holds memory with its swap, CPUs as a quota, and nothing for 0", () => {
  const mib64 = 64 * 1024 ** 2;
  assert.deepEqual(limitWrites("memory", 2, mib64), [
    { file: "memory.max", value: "67108864" },
    { file: "memory.swap.max", value: "0", optional: true },
  ]);
  assert.deepEqual(limitWrites("memory", 1, mib64), [
    { file: "memory.limit_in_bytes", value: "67108864" },
    { file: "memory.memsw.limit_in_bytes", value: "67108864", optional: true },
  ]);
  assert.deepEqual(limitWrites("cpu", 2, 1.5), [{ file: "cpu.max", value: "150000 100000" }]);
  assert.deepEqual(limitWrites("cpu", 1, 2), [
    { file: "cpu.cfs_period_us", value: "100000" },
    { file: "cpu.cfs_quota_us", value: "200000" },
  ]);
  // The kernel's least quota is 1 ms.
  assert.deepEqual(limitWrites("cpu", 2, 0.001), [{ file: "cpu.max", value: "1000 100000" }]);
  for (const resource of ["memory", "cpu"] as const) {
    assert.deepEqual(limitWrites(resource, 2, 0), []);
    assert.deepEqual(limitWrites(resource, 1, 0), []);
  }
});

Deno.test({
  name: "ActorLimits makes an actor's cgroups with its limits, and removes them",
  sanitizeResources: true,
  fn: async (t) => {
    const name = `jobhead-unit-limits-${Deno.pid}`;
    const tree = await CgroupTree.probe(name);
    const limits = await ActorLimits.probe(name, tree, { cpu: true });
    try {
      if (!limits.memory) {
        console.warn("skipped: no writable cgroup memory controller here");
        await t.step({ name: "needs a memory controller", ignore: true, fn: () => {} });
        return;
      }
      const v2 = tree?.create("a");
      const made = limits.create("a", { memoryBytes: 64 * 1024 ** 2, cpus: 0.5 }, v2);
      assert.deepEqual(limits.find("a"), made);
      const memoryDir = limits.memory.version === 2 ? v2! : made[0];
      const limitFile = limits.memory.version === 2 ? "memory.max" : "memory.limit_in_bytes";
      assert.equal((await Deno.readTextFile(`${memoryDir}/${limitFile}`)).trim(), "67108864");
      assert.equal(await limits.outOfMemory("a", v2), false);
      // No limit, no v1 cgroup.
      assert.deepEqual(limits.create("b", {}, undefined), []);
      for (const path of made) assert.equal(await limits.remove(path), true);
      if (v2) await tree!.remove(v2);
      assert.deepEqual(limits.find("a"), []);
    } finally {
      await limits.close();
      await tree?.close();
    }
  },
});
