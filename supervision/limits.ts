/**
 * Resource limits of supervised processes: an actor's memory, and with `--enforce-cpu` its
 * CPUs, held by the kernel through a cgroup controller. The controllers of cgroup v2 are
 * used where the tree of stops (cgroup.ts) has them for its children, and the limits are
 * then written into each actor's cgroup of that tree; else a cgroup v1 hierarchy of the
 * controller, with one parent cgroup per data directory (named as the v2 one, below the
 * head's own cgroup) and a cgroup per actor inside it, which the supervisor joins before
 * it forks anything.
 */
import { setTimeout as delay } from "node:timers/promises";
import { dirname, join } from "node:path";
import { actorCgroupName, canJoinCgroup, type CgroupTree, parseProcs } from "./cgroup.ts";
import { sendSignal } from "./procfs.ts";
import type { ResourceLimits } from "../kit/supervision.ts";

/** A resource the head can hold an actor to, by the name of its cgroup controller. */
export type LimitedResource = "memory" | "cpu";

/** Where the limits of one resource go: the tree of stops (v2), or a v1 hierarchy's parent cgroup. */
export interface LimitPlace {
  version: 1 | 2;
  /** The parent cgroup of the data directory's actors. */
  path: string;
}

/** One write of a limit into an actor's cgroup; `optional` files may be absent (no swap accounting). */
export interface LimitWrite {
  file: string;
  value: string;
  optional?: boolean;
}

/** The CFS period of CPU quotas, the kernel's default. */
export const CPU_PERIOD_US = 100_000;

/** The shortest CPU quota the kernel takes. */
const MIN_CPU_QUOTA_US = 1_000;

/** How long the processes of a v1 cgroup may take to leave it once killed. */
const EMPTY_LIMIT_MS = 2_000;

/**
 * The place for a resource's limits: the v2 tree when it has the controller for its
 * children, else a writable v1 hierarchy of it, else none (admission only).
 */
export function chooseLimitPlace(
  v2Tree: string | undefined,
  v1Parent: string | undefined,
): LimitPlace | undefined {
  if (v2Tree) return { version: 2, path: v2Tree };
  if (v1Parent) return { version: 1, path: v1Parent };
  return undefined;
}

/**
 * What to write into an actor's cgroup to hold it to `amount` of `resource` (bytes of
 * memory, CPUs): [] for 0, no limit. Memory goes with its swap held to nothing (v2) or to
 * the same bound (v1, memory plus swap), so that the limit is real.
 */
export function limitWrites(
  resource: LimitedResource,
  version: 1 | 2,
  amount: number,
): LimitWrite[] {
  if (!(amount > 0)) return [];
  if (resource === "memory") {
    const bytes = String(Math.floor(amount));
    return version === 2
      ? [{ file: "memory.max", value: bytes }, {
        file: "memory.swap.max",
        value: "0",
        optional: true,
      }]
      : [{ file: "memory.limit_in_bytes", value: bytes }, {
        file: "memory.memsw.limit_in_bytes",
        value: bytes,
        optional: true,
      }];
  }
  const quota = String(Math.max(MIN_CPU_QUOTA_US, Math.round(amount * CPU_PERIOD_US)));
  return version === 2 ? [{ file: "cpu.max", value: `${quota} ${CPU_PERIOD_US}` }] : [
    { file: "cpu.cfs_period_us", value: String(CPU_PERIOD_US) },
    { file: "cpu.cfs_quota_us", value: quota },
  ];
}

/** The file of an actor's memory cgroup that counts its OOM kills. */
export function oomFileOf(version: 1 | 2): string {
  return version === 2 ? "memory.events" : "memory.oom_control";
}

/** The OOM kills counted in `memory.events` (v2) or `memory.oom_control` (v1); 0 if not said. */
export function parseOomKills(text: string): number {
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
}

/**
 * The mount point of the cgroup v1 hierarchy holding `controller`, from
 * /proc/self/mountinfo (super options such as `rw,cpu,cpuacct`); undefined when none.
 */
export function cgroupV1MountOf(mountInfo: string, controller: string): string | undefined {
  for (const line of mountInfo.split("\n")) {
    const [before, after] = line.split(" - ");
    const [type, , options] = after?.split(" ") ?? [];
    if (type !== "cgroup" || !options?.split(",").includes(controller)) continue;
    return before.split(" ")[4]?.replace(/\\040/g, " ");
  }
  return undefined;
}

/** This process's cgroup in the v1 hierarchy of `controller` (`4:memory:/path`), or "/". */
export function ownCgroupV1Path(procCgroup: string, controller: string): string {
  for (const line of procCgroup.split("\n")) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers?.split(",").includes(controller)) return path.trim() || "/";
  }
  return "/";
}

/** The start-up line that says how `resource` limits are held. */
export function describeLimitPlace(
  resource: LimitedResource,
  place: LimitPlace | undefined,
): string {
  const what = resource === "memory" ? "memory limits" : "cpu limits (--enforce-cpu)";
  return place
    ? `${what} use cgroup v${place.version} at ${place.path}`
    : `${what} are admission only: no writable cgroup ${resource} controller`;
}

/** The limits of one data directory's actors: where each resource's go, and their cgroups. */
export class ActorLimits {
  readonly memory?: LimitPlace;
  readonly cpu?: LimitPlace;

  constructor(places: { memory?: LimitPlace; cpu?: LimitPlace }) {
    this.memory = places.memory;
    this.cpu = places.cpu;
  }

  /**
   * Finds where memory limits (and with `cpu`, CPU limits) can go for the parent cgroup
   * `name`: the v2 `tree` if it can enable the controller for its children, else a v1
   * hierarchy where a probe cgroup took a limit and a process (checked with real ones,
   * then removed). The tree then enables the controllers it got for the actors it makes.
   */
  static async probe(
    name: string,
    tree: CgroupTree | undefined,
    options: { cpu: boolean },
  ): Promise<ActorLimits> {
    const find = async (resource: LimitedResource) =>
      chooseLimitPlace(
        tree && await probeV2(tree, resource) ? tree.path : undefined,
        await probeV1(name, resource),
      );
    const memory = await find("memory");
    const cpu = options.cpu ? await find("cpu") : undefined;
    return new ActorLimits({ memory, cpu });
  }

  /** The start-up lines: how memory limits are held, and CPU limits when asked for. */
  describe(options: { cpu: boolean }): string[] {
    const lines = [describeLimitPlace("memory", this.memory)];
    if (options.cpu) lines.push(describeLimitPlace("cpu", this.cpu));
    return lines;
  }

  /** The v1 cgroups of actor `id` (which may not exist), one per hierarchy. */
  pathsOf(id: string): string[] {
    const parents = [this.memory, this.cpu].filter((p) => p?.version === 1).map((p) => p!.path);
    return [...new Set(parents)].map((parent) => join(parent, actorCgroupName(id)));
  }

  /**
   * Writes `limits` into actor `id`'s cgroups: `v2Cgroup` (its cgroup in the tree of
   * stops) for the controllers the tree has, else a v1 cgroup made for each limit (none
   * for no limit); returns those for its supervisor to join. Throws, leaving none behind,
   * when a limit is refused.
   */
  create(id: string, limits: ResourceLimits, v2Cgroup: string | undefined): string[] {
    const made: string[] = [];
    const amounts = { memory: limits.memoryBytes ?? 0, cpu: limits.cpus ?? 0 };
    try {
      for (const resource of ["memory", "cpu"] as const) {
        const place = this[resource];
        const writes = place ? limitWrites(resource, place.version, amounts[resource]) : [];
        if (!place || writes.length === 0) continue;
        let dir = v2Cgroup;
        if (place.version === 1) {
          dir = join(place.path, actorCgroupName(id));
          Deno.mkdirSync(dir, { recursive: true });
          if (!made.includes(dir)) made.push(dir);
        }
        if (dir) writeLimits(dir, writes);
      }
    } catch (err) {
      for (const path of made) Deno.removeSync(path);
      throw err;
    }
    return made;
  }

  /** Actor `id`'s v1 cgroups that exist: a re-adopted actor keeps those it was spawned in. */
  find(id: string): string[] {
    return this.pathsOf(id).filter((path) => {
      try {
        return Deno.statSync(path).isDirectory;
      } catch {
        return false;
      }
    });
  }

  /**
   * Whether the kernel OOM-killed a process of actor `id`, from its memory cgroup's count
   * (`v2Cgroup` is its cgroup in the tree of stops); false when it has none (no limit).
   */
  async outOfMemory(id: string, v2Cgroup: string | undefined): Promise<boolean> {
    const place = this.memory;
    const dir = place?.version === 2 ? v2Cgroup : place && join(place.path, actorCgroupName(id));
    if (!place || !dir) return false;
    const text = await Deno.readTextFile(join(dir, oomFileOf(place.version))).catch(() => "");
    return parseOomKills(text) > 0;
  }

  /**
   * Kills what is left in the v1 cgroup at `path`, waits for it to empty, and removes it.
   * Resolves false when it could not be removed (a process stuck in the kernel).
   */
  async remove(path: string): Promise<boolean> {
    const deadline = Date.now() + EMPTY_LIMIT_MS;
    for (let wait = 1;; wait = Math.min(wait * 2, 50)) {
      let procs: number[];
      try {
        procs = parseProcs(await Deno.readTextFile(join(path, "cgroup.procs")));
      } catch {
        return true; // gone
      }
      if (procs.length === 0) {
        try {
          await Deno.remove(path);
          return true;
        } catch (err) {
          if (err instanceof Deno.errors.NotFound) return true;
        }
      }
      for (const pid of procs) sendSignal(pid, "SIGKILL");
      if (Date.now() >= deadline) return false;
      await delay(wait);
    }
  }

  /** Removes the v1 parent cgroups that no actor's cgroup is left in. */
  async close(): Promise<void> {
    for (const place of [this.memory, this.cpu]) {
      if (place?.version === 1) await Deno.remove(place.path).catch(() => {});
    }
  }
}

function writeLimits(dir: string, writes: LimitWrite[]): void {
  for (const { file, value, optional } of writes) {
    try {
      Deno.writeTextFileSync(join(dir, file), value);
    } catch (err) {
      if (optional && err instanceof Deno.errors.NotFound) continue;
      throw new Error(`cannot write ${value} to ${join(dir, file)}: ${err}`);
    }
  }
}

/** A sample limit a probe writes: a real one, far from what a probe cgroup uses. */
const PROBE_AMOUNTS: Record<LimitedResource, number> = { memory: 1024 ** 3, cpu: 1 };

/**
 * Whether the tree of stops can hold its actors to `resource`: its parent has the
 * controller for its children, it can pass it on, and a probe cgroup takes a limit.
 */
async function probeV2(tree: CgroupTree, resource: LimitedResource): Promise<boolean> {
  const offered = await Deno.readTextFile(join(dirname(tree.path), "cgroup.subtree_control"))
    .catch(() => "");
  if (!offered.split(/\s+/).includes(resource)) return false;
  const probe = `probe-${resource}-${Deno.pid}`;
  try {
    tree.enable(resource);
    writeLimits(tree.create(probe), limitWrites(resource, 2, PROBE_AMOUNTS[resource]));
    return true;
  } catch {
    tree.disable(resource);
    return false;
  } finally {
    await tree.remove(tree.pathOf(probe));
    await tree.close();
  }
}

/**
 * The parent cgroup `name` in the v1 hierarchy of `resource`, below this process's own
 * cgroup there, if a probe cgroup made in it takes a limit and a process; undefined else.
 * The parent is removed again: the first actor's cgroup makes it anew.
 */
async function probeV1(name: string, resource: LimitedResource): Promise<string | undefined> {
  let mount: string | undefined;
  let own: string;
  try {
    mount = cgroupV1MountOf(await Deno.readTextFile("/proc/self/mountinfo"), resource);
    own = ownCgroupV1Path(await Deno.readTextFile("/proc/self/cgroup"), resource);
  } catch {
    return undefined;
  }
  if (!mount) return undefined;
  const base = await Deno.stat(join(mount, own)).then((s) => s.isDirectory, () => false)
    ? join(mount, own)
    : mount;
  const parent = join(base, name);
  const probe = join(parent, `probe-${Deno.pid}`);
  const limits = new ActorLimits({ [resource]: { version: 1, path: parent } });
  try {
    await Deno.mkdir(probe, { recursive: true });
    writeLimits(probe, limitWrites(resource, 1, PROBE_AMOUNTS[resource]));
    return await canJoinCgroup(probe) ? parent : undefined;
  } catch {
    return undefined;
  } finally {
    await limits.remove(probe);
    await limits.close();
  }
}
