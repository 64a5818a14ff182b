/** The packages module: stores uploaded zips that jobs use as their working directory. */
import type { HeadModule } from "../host/module.ts";
import { packageRoutes } from "./routes.ts";

/** Creates the packages module. */
export function createModule(): HeadModule {
  return {
    name: "packages",
    minimal: true,
    routes(ctx) {
      return packageRoutes(ctx.stores.packages, { maxBytes: ctx.config.maxPackageBytes });
    },
    async start(ctx) {
      // What a head that stopped mid-extraction left, and copies of replaced packages.
      await ctx.stores.packages.prune();
    },
  };
}
