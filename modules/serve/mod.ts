/** The serve module: long-running replicated deployments next to batch jobs. */
import type { HeadModule } from "../../kit/module.ts";
import { serveRoutes } from "./routes.ts";
import { ServeService } from "./service.ts";

/** Creates the serve module. */
export function createModule(): HeadModule {
  let service: ServeService | undefined;
  return {
    name: "serve",
    minimal: false,
    snapshotKey: "deployments",
    routes(ctx) {
      service = new ServeService(ctx);
      return serveRoutes(service);
    },
    async start() {
      await service?.adoptDeployments(); // replicas the previous head left running
    },
    async stop() {
      await service?.close(); // replicas keep running
    },
    snapshot() {
      return service?.snapshot() ?? {};
    },
  };
}
