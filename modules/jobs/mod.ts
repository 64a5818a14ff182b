/** The jobs module: submits, stops and tails shell-command jobs. */
import type { HeadModule } from "../../kit/module.ts";
import { isTerminal } from "../../kit/job_record.ts";
import { LogFollowers } from "./log_follower.ts";
import { LogWatcher } from "./log_watcher.ts";
import { keepRetention } from "./retention.ts";
import { jobRoutes, toDetails } from "./routes.ts";
import { JobService } from "./service.ts";
import { SupervisorActors } from "./supervisor_actors.ts";

/** Creates the jobs module. */
export function createModule(): HeadModule {
  let service: JobService | undefined;
  let supervisorActors: SupervisorActors | undefined;
  let logWatcher: LogWatcher | undefined;
  let snapshotJobs: (() => Promise<unknown>) | undefined;
  return {
    name: "jobs",
    minimal: true,
    routes(ctx) {
      service = new JobService(ctx);
      supervisorActors = new SupervisorActors(ctx);
      supervisorActors.follow(); // before any module starts: no job event is missed
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
      const followerCount = ctx.metrics.gauge({
        name: "log_followers",
        help: "Followers of job logs (live tails), across all followed jobs.",
        collect: () => followerCount.set(followers.followerCount),
      });
      return jobRoutes(service, {
        info: ctx.info,
        followers,
        tailsOpen: ctx.metrics.gauge({
          name: "log_tail_sockets_open",
          help: "WebSocket log tails (GET /api/jobs/{id}/logs/tail) open.",
        }),
        idleTimeoutS: ctx.config.tailIdleTimeoutS,
        maxTails: ctx.config.maxLogTails,
        signal: ctx.signal,
      });
    },
    async start(ctx) {
      service?.joinCluster(); // in a cluster: other processes' changes, scheduling
      await service?.adoptRunningJobs(); // jobs the previous head left running
      await supervisorActors?.resync(); // what a previous head left unrecorded
      service?.maintainLogs(ctx.signal);
      if (service) {
        keepRetention(service, {
          retentionDays: ctx.config.jobRetentionDays,
          maxFinished: ctx.config.maxFinishedJobs,
        }, {
          now: Date.now,
          logger: ctx.logger,
          signal: ctx.signal,
          onJobFinished: (listener) =>
            ctx.events.on((event) => {
              if (event.type === "job" && isTerminal(event.job.status)) listener();
            }),
        });
      }
    },
    async stop() {
      service?.close(); // running jobs keep running
      logWatcher?.close();
      await supervisorActors?.close(); // once the records of the last changes are written
    },
    snapshot() {
      return snapshotJobs?.() ?? {};
    },
  };
}
