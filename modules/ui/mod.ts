/**
 * The ui module: the web dashboard at `/` (with the views other modules contribute), its
 * job search, and the live event stream.
 */
import type { HeadModule } from "../../kit/module.ts";
import { Assets } from "./assets.ts";
import { uiRoutes } from "./routes.ts";
import { VENDOR_FILES } from "./vendor.ts";

/** Creates the ui module. */
export function createModule(): HeadModule {
  return {
    name: "ui",
    minimal: false,
    routes(ctx) {
      return uiRoutes({
        jobs: ctx.stores.jobs,
        events: ctx.events,
        assets: new Assets(new URL("./static/", import.meta.url), VENDOR_FILES),
        signal: ctx.signal,
        moduleViews: ctx.moduleViews,
      });
    },
  };
}
