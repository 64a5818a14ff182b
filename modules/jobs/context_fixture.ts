/** A module context for the jobs module's tests: in-memory KV, a temp data dir, a real supervisor. */
import { join } from "node:path";
import { isTerminal, type Job, type JobStatus } from "../../kit/job_record.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { ShellSupervisor } from "../../supervision/supervisor.ts";
import { testContext } from "../../tests/module_context.ts";

/**
 * Runs `fn` with a context whose supervisor spawns real processes (without cgroups), then
 * closes everything and removes the data directory.
 */
export async function withContext(fn: (ctx: ModuleContext) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-jobs-" });
  using kv = await Deno.openKv(":memory:");
  const supervisor = new ShellSupervisor(join(dir, "run"), { cgroup: "off" });
  await supervisor.start();
  const { ctx, close } = testContext({ kv, dir, module: "jobs", supervisor });
  try {
    await fn(ctx);
  } finally {
    close();
    await supervisor.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves with the job once the bus announces it in one of `statuses`. */
export function nextStatus(
  ctx: ModuleContext,
  id: string,
  statuses: (status: JobStatus) => boolean = isTerminal,
): Promise<Job> {
  return new Promise((resolve) => {
    const off = ctx.events.on((event) => {
      if (event.type === "job" && event.job.id === id && statuses(event.job.status)) {
        off();
        resolve(event.job);
      }
    });
  });
}
