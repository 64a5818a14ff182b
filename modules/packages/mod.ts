/** The packages module: stores uploaded zips that jobs use as their working directory. */
import type { HeadModule } from "../../kit/module.ts";
import { isTerminal } from "../../storage/jobs.ts";
import { packageUri } from "../../storage/package_uri.ts";
import { keepPackageRetention, packagesNamedByJobs } from "./retention.ts";
import { packageRoutes } from "./routes.ts";

/** Creates the packages module. */
export function createModule(): HeadModule {
  return {
    name: "packages",
    minimal: true,
    routes(ctx) {
      return packageRoutes(ctx.stores.packages, {
        maxBytes: ctx.config.maxPackageBytes,
        usersOf: async (ref) => {
          const uri = packageUri(ref);
          const running = await packagesNamedByJobs(ctx.stores.jobs, (job) => {
            return !isTerminal(job.status) && job.runtime_env.working_dir === uri;
          });
          return running.size > 0;
        },
      });
    },
    async start(ctx) {
      // What a head that stopped mid-extraction left, and copies of replaced packages.
      await ctx.stores.packages.prune();
      if (ctx.config.packageRetentionDays > 0) {
        keepPackageRetention(ctx.stores.packages, ctx.stores.jobs, {
          retentionDays: ctx.config.packageRetentionDays,
          now: Date.now,
          logger: ctx.logger,
          signal: ctx.signal,
        });
      }
    },
  };
}
