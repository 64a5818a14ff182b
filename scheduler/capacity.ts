/**
 * What this machine offers the scheduler by default: the CPUs this process may use
 * (affinity, cgroup `cpu.max` or v1 quota, cpuset), the NVIDIA GPUs in /dev, and memory
 * (MemTotal, or the cgroup limit when lower). The parsers are pure; `detectCapacity()`
 * reads the files.
 */
import { availableParallelism } from "node:os";
import type { Resources } from "./resources.ts";

/** Where cgroup hierarchies are mounted on the machines we run on. */
const CGROUP_ROOT = "/sys/fs/cgroup";

/** A cgroup limit at or above this means "no limit" (v1 writes 2^63 rounded to a page). */
const NO_LIMIT_BYTES = 2 ** 62;

/** This machine's capacity as detected, and where each figure came from. */
export interface DetectedCapacity {
  resources: Resources;
  /** One line per resource: `CPU 2 (cgroup cpu.max)`. */
  sources: string[];
}

/** CPUs a `cpu.max` line ("max 100000" or "200000 100000") allows; undefined: no limit. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === "max") return undefined;
  const cpus = Number(quota) / Number(period ?? 100_000);
  return Number.isFinite(cpus) && cpus > 0 ? cpus : undefined;
}

/** CPUs a v1 quota allows (`cfs_quota_us` -1 is no limit); undefined: no limit. */
export function parseCfsQuota(quotaText: string, periodText: string): number | undefined {
  const quota = Number(quotaText.trim());
  const period = Number(periodText.trim());
  if (!(quota > 0) || !(period > 0)) return undefined;
  return quota / period;
}

/** The number of CPUs in a cpuset list such as `0-3,6,8-9`; undefined when unreadable. */
export function parseCpuList(text: string): number | undefined {
  let count = 0;
  for (const part of text.trim().split(",")) {
    if (part === "") continue;
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!match) return undefined;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) return undefined;
    count += last - first + 1;
  }
  return count > 0 ? count : undefined;
}

/** MemTotal from /proc/meminfo, in bytes; undefined when missing. */
export function parseMemTotal(meminfo: string): number | undefined {
  const match = /^MemTotal:\s+(\d+)\s*kB$/m.exec(meminfo);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** A memory limit file's bytes ("max" or a huge v1 value: undefined, no limit). */
export function parseMemoryLimit(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "max") return undefined;
  const bytes = Number(trimmed);
  return Number.isFinite(bytes) && bytes > 0 && bytes < NO_LIMIT_BYTES ? bytes : undefined;
}

/**
 * This process's cgroup paths from /proc/self/cgroup: `""` for the v2 hierarchy, and each
 * v1 controller by name (`memory`, `cpu`, `cpuset`).
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!match) continue;
    for (const controller of match[1].split(",")) paths.set(controller, match[2]);
  }
  return paths;
}

/** The GPU count: `/dev/nvidia0`, `/dev/nvidia1`, … (not nvidiactl or nvidia-uvm). */
export function countNvidiaDevices(names: Iterable<string>): number {
  let count = 0;
  for (const name of names) if (/^nvidia\d+$/.test(name)) count++;
  return count;
}

/** Detects this machine's capacity; never throws (what cannot be read is left out). */
export async function detectCapacity(): Promise<DetectedCapacity> {
  const cgroups = parseProcCgroup(await readOr("/proc/self/cgroup"));
  const sources: string[] = [];

  const v2 = cgroups.get("");
  const v2Dir = v2 === undefined ? undefined : await cgroupV2Dir(v2);
  let cpus = availableParallelism();
  let cpuSource = "CPUs this process may run on";
  const limits: [number | undefined, string][] = [
    [
      v2Dir ? parseCpuMax(await readOr(`${v2Dir}/cpu.max`)) : undefined,
      "cgroup cpu.max",
    ],
    [
      v2Dir ? parseCpuList(await readOr(`${v2Dir}/cpuset.cpus.effective`)) : undefined,
      "cgroup cpuset",
    ],
    [
      cgroups.has("cpu")
        ? parseCfsQuota(
          await readOr(`${CGROUP_ROOT}/cpu${cgroups.get("cpu")}/cpu.cfs_quota_us`),
          await readOr(`${CGROUP_ROOT}/cpu${cgroups.get("cpu")}/cpu.cfs_period_us`),
        )
        : undefined,
      "cgroup v1 cpu quota",
    ],
    [
      cgroups.has("cpuset")
        ? parseCpuList(await readOr(`${CGROUP_ROOT}/cpuset${cgroups.get("cpuset")}/cpuset.cpus`))
        : undefined,
      "cgroup v1 cpuset",
    ],
  ];
  for (const [limit, source] of limits) {
    if (limit !== undefined && limit < cpus) [cpus, cpuSource] = [limit, source];
  }
  sources.push(`CPU ${cpus} (${cpuSource})`);

  let gpus = 0;
  try {
    const names: string[] = [];
    for await (const entry of Deno.readDir("/dev")) names.push(entry.name);
    gpus = countNvidiaDevices(names);
  } catch {
    // no /dev to read: no GPUs
  }
  sources.push(`GPU ${gpus} (/dev/nvidia*)`);

  let memory = parseMemTotal(await readOr("/proc/meminfo"));
  let memorySource = "MemTotal";
  const memoryLimits: [number | undefined, string][] = [
    [v2Dir ? parseMemoryLimit(await readOr(`${v2Dir}/memory.max`)) : undefined, "cgroup"],
    [
      cgroups.has("memory")
        ? parseMemoryLimit(
          await readOr(`${CGROUP_ROOT}/memory${cgroups.get("memory")}/memory.limit_in_bytes`),
        )
        : undefined,
      "cgroup v1",
    ],
  ];
  for (const [limit, source] of memoryLimits) {
    if (limit !== undefined && (memory === undefined || limit < memory)) {
      [memory, memorySource] = [limit, `${source} memory limit`];
    }
  }
  const resources: Resources = { CPU: cpus, GPU: gpus };
  if (memory !== undefined) {
    resources.memory = memory;
    sources.push(`memory ${memory} bytes (${memorySource})`);
  }
  return { resources, sources };
}

/** The directory of v2 cgroup `path`: under /sys/fs/cgroup, or its `unified` mount. */
async function cgroupV2Dir(path: string): Promise<string | undefined> {
  for (const root of [CGROUP_ROOT, `${CGROUP_ROOT}/unified`]) {
    try {
      await Deno.stat(`${root}/cgroup.controllers`);
      return `${root}${path === "/" ? "" : path}`;
    } catch {
      // not a v2 mount
    }
  }
  return undefined;
}

async function readOr(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}
