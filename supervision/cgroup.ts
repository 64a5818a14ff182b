/**
 * Cgroup v2 for supervised groups: each actor's processes live in a cgroup of their own
 * under one parent cgroup per data directory, so a stop reaches every one of them, also
 * those that left the process group and cleared their environment.
 */
import { setTimeout as delay } from "node:timers/promises";
import { join } from "node:path";
import { sendSignal } from "./procfs.ts";

/** Where cgroup v2 is usually mounted: alone, or beside v1 in the "hybrid" layout. */
export const CGROUP2_MOUNT_CANDIDATES = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/**
 * How long a cgroup may take to freeze or to empty after its processes were killed.
 * Both take milliseconds; a process stuck in the kernel (uninterruptible sleep) may hold
 * them up, and then the caller goes on without waiting any longer.
 */
const SETTLE_LIMIT_MS = 2_000;

/** The cgroup v2 mount points listed in /proc/self/mountinfo, in the order given. */
export function cgroup2MountPoints(mountInfo: string): string[] {
  const mounts: string[] = [];
  for (const line of mountInfo.split("\n")) {
    const [before, after] = line.split(" - ");
    if (after?.split(" ")[0] !== "cgroup2") continue;
    const mountPoint = before.split(" ")[4];
    if (mountPoint) mounts.push(mountPoint.replace(/\\040/g, " "));
  }
  return mounts;
}

/** This process's cgroup v2 path (`0::/path` in /proc/self/cgroup), or "/" when absent. */
export function ownCgroupPath(procCgroup: string): string {
  const line = procCgroup.split("\n").find((l) => l.startsWith("0::"));
  return line?.slice(3).trim() || "/";
}

/** Reads `cgroup.events`: whether the cgroup holds processes, and whether it is frozen. */
export function parseCgroupEvents(text: string): { populated: boolean; frozen: boolean } {
  const value = (key: string) => new RegExp(`^${key} (\\d+)$`, "m").exec(text)?.[1] === "1";
  return { populated: value("populated"), frozen: value("frozen") };
}

/** The pids listed in `cgroup.procs`. */
export function parseProcs(text: string): number[] {
  return text.split("\n").filter((line) => /^\d+$/.test(line)).map(Number);
}

/** The name of an actor's cgroup: actor ids are file-safe, and no interface file is named so. */
export function actorCgroupName(actorId: string): string {
  return `actor-${actorId}`;
}

/**
 * The parent cgroup of one data directory's actors: a name derived from the run
 * directory's path, so a restarted head finds its jobs' cgroups again and two heads with
 * different data directories never share one.
 */
export async function parentCgroupName(runDir: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(runDir));
  const hex = Array.from(
    new Uint8Array(digest).slice(0, 6),
    (b) => b.toString(16).padStart(2, "0"),
  );
  return `jobhead-${hex.join("")}`;
}

/** One data directory's parent cgroup, and the cgroups of its actors inside it. */
export class CgroupTree {
  /** Path of the parent cgroup. */
  readonly path: string;
  /** Whether the kernel has `cgroup.kill` (Linux 5.14); else kills freeze and signal. */
  readonly hasKill: boolean;
  /** Controllers the parent enables for its actors' cgroups (for their limits). */
  #controllers = new Set<string>();

  constructor(path: string, options: { hasKill: boolean }) {
    this.path = path;
    this.hasKill = options.hasKill;
  }

  /** Has the actors' cgroups made with `controller` (which the parent must be offered). */
  enable(controller: string): void {
    this.#controllers.add(controller);
  }

  /** Undoes `enable()` for actors made from now on. */
  disable(controller: string): void {
    this.#controllers.delete(controller);
  }

  /**
   * Finds a writable cgroup v2 hierarchy for a parent cgroup `name` under this process's
   * own cgroup; undefined when there is none, or when a process cannot be moved into a
   * cgroup made there (checked with a real one, then removed).
   */
  static async probe(name: string): Promise<CgroupTree | undefined> {
    let mounts: string[];
    let own: string;
    try {
      mounts = cgroup2MountPoints(await Deno.readTextFile("/proc/self/mountinfo"));
      own = ownCgroupPath(await Deno.readTextFile("/proc/self/cgroup"));
    } catch {
      return undefined;
    }
    for (const mount of CGROUP2_MOUNT_CANDIDATES.filter((m) => mounts.includes(m))) {
      const base = await isDirectory(join(mount, own)) ? join(mount, own) : mount;
      const tree = await tryTree(join(base, name));
      if (tree) return tree;
    }
    return undefined;
  }

  /** Path of actor `id`'s cgroup (which may not exist). */
  pathOf(id: string): string {
    return join(this.path, actorCgroupName(id));
  }

  /**
   * Makes actor `id`'s cgroup (and the parent, with the enabled controllers for its
   * children; existing ones are kept) and returns its path.
   */
  create(id: string): string {
    if (this.#controllers.size > 0) {
      Deno.mkdirSync(this.path, { recursive: true });
      const enabled = [...this.#controllers].map((c) => `+${c}`).join(" ");
      Deno.writeTextFileSync(join(this.path, "cgroup.subtree_control"), enabled);
    }
    const path = this.pathOf(id);
    Deno.mkdirSync(path, { recursive: true });
    return path;
  }

  /** Actor `id`'s cgroup if it exists: a re-adopted actor keeps the one it was spawned in. */
  async find(id: string): Promise<string | undefined> {
    const path = this.pathOf(id);
    return await isDirectory(path) ? path : undefined;
  }

  /** SIGKILLs every process of the cgroup at `path`, forks included. Safe to repeat. */
  async kill(path: string): Promise<void> {
    if (this.hasKill) {
      await Deno.writeTextFile(join(path, "cgroup.kill"), "1").catch(ignoreMissing);
    } else {
      await this.signal(path, "SIGKILL");
    }
  }

  /** The processes of the cgroup at `path` now (none once it is gone): one read, no freeze. */
  procs(path: string): number[] {
    try {
      return parseProcs(Deno.readTextFileSync(join(path, "cgroup.procs")));
    } catch {
      return [];
    }
  }

  /**
   * Sends `signal` to every process of the cgroup at `path` (those `only` accepts, when
   * given): the cgroup is frozen while its processes are listed and signalled, so none
   * can fork past the list.
   */
  async signal(
    path: string,
    signal: Deno.Signal,
    options: { only?: (pid: number) => boolean } = {},
  ): Promise<void> {
    const freeze = join(path, "cgroup.freeze");
    try {
      await Deno.writeTextFile(freeze, "1");
    } catch (err) {
      return ignoreMissing(err);
    }
    try {
      await settle(path, (events) => events.frozen || !events.populated);
      const procs = await Deno.readTextFile(join(path, "cgroup.procs")).catch(() => "");
      for (const pid of parseProcs(procs)) {
        if (options.only?.(pid) ?? true) sendSignal(pid, signal);
      }
    } finally {
      await Deno.writeTextFile(freeze, "0").catch(ignoreMissing);
    }
  }

  /**
   * Thaws the cgroup at `path`: a head that died between freezing it for a stop and
   * thawing it leaves it frozen for the next one.
   */
  async thaw(path: string): Promise<void> {
    await Deno.writeTextFile(join(path, "cgroup.freeze"), "0").catch(ignoreMissing);
  }

  /**
   * Kills what is left in the cgroup at `path`, waits for it to empty, and removes it.
   * Resolves false when it could not be removed (a process stuck in the kernel).
   */
  async remove(path: string): Promise<boolean> {
    // Most often empty already (the actor's watchdog killed what was left as it ended):
    // then one call, made at once, is all it takes (no hop to another thread and back).
    try {
      Deno.removeSync(path);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return true;
    }
    await this.kill(path);
    await settle(path, (events) => !events.populated);
    try {
      await Deno.remove(path);
      return true;
    } catch (err) {
      return err instanceof Deno.errors.NotFound;
    }
  }

  /** Removes the parent cgroup if no actor's cgroup is left in it. */
  async close(): Promise<void> {
    await Deno.remove(this.path).catch(() => {});
  }
}

async function tryTree(path: string): Promise<CgroupTree | undefined> {
  try {
    await Deno.mkdir(path, { recursive: true });
  } catch {
    return undefined;
  }
  const tree = new CgroupTree(path, {
    hasKill: await Deno.stat(join(path, "cgroup.kill")).then(() => true, () => false),
  });
  const probe = tree.create(`probe-${Deno.pid}`);
  try {
    if (await canJoinCgroup(probe)) return tree;
  } finally {
    await tree.remove(probe);
    // Made again by the first create(): a head that never spawns leaves nothing behind.
    await tree.close();
  }
  return undefined;
}

/** Whether a process can move itself into the cgroup at `path` (v1 or v2), as supervisors do. */
export async function canJoinCgroup(path: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("sh", {
      args: ["-c", 'echo $$ >"$1/cgroup.procs"', "sh", path],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false; // no shell: no supervisor either
  }
}

/**
 * Waits until the cgroup's `cgroup.events` satisfies `done`, for at most SETTLE_LIMIT_MS.
 * Polls with a growing interval rather than watching the file: an inotify instance per
 * ending job would run into the per-user limit when many end at once.
 */
async function settle(
  path: string,
  done: (events: { populated: boolean; frozen: boolean }) => boolean,
): Promise<boolean> {
  const deadline = Date.now() + SETTLE_LIMIT_MS;
  for (let wait = 1;; wait = Math.min(wait * 2, 50)) {
    let text: string;
    try {
      text = await Deno.readTextFile(join(path, "cgroup.events"));
    } catch {
      return true; // removed: nothing left to wait for
    }
    if (done(parseCgroupEvents(text))) return true;
    if (Date.now() >= deadline) return false;
    await delay(wait);
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return await Deno.stat(path).then((info) => info.isDirectory, () => false);
}

function ignoreMissing(err: unknown): void {
  if (!(err instanceof Deno.errors.NotFound)) throw err;
}
