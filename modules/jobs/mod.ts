/** The jobs module: submits, stops and tails shell-command jobs. */
import { DEFAULT_MAX_LOG_TAILS } from "../host/config.ts";
import type { HeadModule } from "../host/module.ts";
import { isTerminal } from "../../storage/jobs.ts";
import { LogFollowers } from "./log_follower.ts";
import { LogWatcher } from "./log_watcher.ts";
import { jobRoutes, toDetails } from "./routes.ts";
import { JobService } from "./service.ts";

/** Creates the jobs module. */
export function createModule(): HeadModule {
  let service: JobService | undefined;
  let logWatcher: LogWatcher | undefined;
  let snapshotJobs: (() => Promise<unknown>) | undefined;
  return {
    name: "jobs",
    minimal: true,
    routes(ctx) {
      service = new JobService(ctx);
      logWatcher = new LogWatcher();
      const jobs = service;
      snapshotJobs = async () => {
        const page = await jobs.list({ limit: 1000 });
        return Object.fromEntries(page.jobs.map((job) => [job.id, toDetails(job, ctx.info)]));
      };
      const followers = new LogFollowers({
        pathOf: (id) => jobs.logPath(id),
        isFinished: (id) => jobs.isFinished(id),
        onFinished: (id, listener) =>
          ctx.events.on((event) => {
            if (event.type === "job" && event.job.id === id && isTerminal(event.job.status)) {
              listener();
            }
          }),
        gapOf: (id) => ctx.stores.logs.gapOf(id),
        watcher: logWatcher,
      });
      return jobRoutes(service, {
        info: ctx.info,
        followers,
        idleTimeoutS: ctx.config.tailIdleTimeoutS,
        maxTails: ctx.config.maxLogTails ?? DEFAULT_MAX_LOG_TAILS,
        signal: ctx.signal,
      });
    },
    async start(ctx) {
      await service?.adoptRunningJobs(); // jobs the previous head left running
      service?.maintainLogs(ctx.signal);
    },
    stop() {
      service?.close(); // running jobs keep running
      logWatcher?.close();
    },
    snapshot() {
      return snapshotJobs?.() ?? {};
    },
  };
}
