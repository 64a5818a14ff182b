/** The cgroups a head made for its jobs, as its start-up line names them: for checks and cleanup. */
import { setTimeout as delay } from "node:timers/promises";
import { CgroupTree } from "../supervision/cgroup.ts";

const CGROUP_LINE = /^jobhead: stops use cgroup v2 at (\S+)$/m;
/** Every start-up line naming a parent cgroup: stops, memory and cpu limits. */
const CGROUP_LINES = /^jobhead: .* use cgroup v[12] at (\S+)$/gm;

/** Whether this machine has a cgroup v2 hierarchy a head can use (then its stops must use it). */
export async function canUseCgroups(): Promise<boolean> {
  const tree = await CgroupTree.probe(`jobhead-test-${crypto.randomUUID().slice(0, 8)}`);
  await tree?.close();
  return tree !== undefined;
}

/** The parent cgroup a head said it uses (from its stderr), or undefined in fallback mode. */
export function cgroupOfHead(stderr: string): string | undefined {
  return CGROUP_LINE.exec(stderr)?.[1];
}

/** Every parent cgroup a head said it uses (from its stderr): v2 and v1 ones. */
export function cgroupsOfHead(stderr: string): string[] {
  return [...new Set(Array.from(stderr.matchAll(CGROUP_LINES), (match) => match[1]))];
}

/**
 * Kills every process in the cgroup tree at `path` (v2 or v1) and removes the tree. Safe
 * to repeat; a missing tree is fine.
 */
export async function removeCgroupTree(path: string): Promise<void> {
  const children: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) {
      if (entry.isDirectory) children.push(`${path}/${entry.name}`);
    }
  } catch {
    return; // gone
  }
  for (const child of children) await removeCgroupTree(child);
  await Deno.writeTextFile(`${path}/cgroup.kill`, "1").catch(() => {});
  const procs = await Deno.readTextFile(`${path}/cgroup.procs`).catch(() => "");
  for (const pid of procs.split("\n").filter(Boolean)) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch {
      // gone
    }
  }
  // Killed processes take a moment to leave; the kernel announces it in cgroup.events only.
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await Deno.remove(path);
      return;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || Date.now() > deadline) return;
    }
    await delay(5);
  }
}
