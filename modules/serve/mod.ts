/** The serve module: long-running replicated deployments next to batch jobs. */
import type { HeadModule } from "../../kit/module.ts";
import { Hono } from "hono";
import { agentRoutes } from "./agent.ts";
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
      const serve = service = new ServeService(ctx);
      return new Hono().route("/", agentRoutes(() => serve.agent)).route("/", serveRoutes(serve));
    },
    async start() {
      await service?.start(); // takes back the replicas the previous head left running
    },
    async stop() {
      await service?.close(); // replicas keep running
    },
    snapshot() {
      return service?.snapshot() ?? {};
    },
  };
}
