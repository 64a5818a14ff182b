/** HTTP routes of the serve API (`/api/serve/…`): parse, call the service, respond. */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { parseInput, readJson } from "../host/app.ts";
import { ActorId } from "../../storage/actors.ts";
import {
  type DeleteDeploymentResponse,
  type DeploymentDetails,
  DeploymentName,
  DeploymentSpec,
  type ReplicaLogsResponse,
} from "./schemas.ts";
import type { ServeService } from "./service.ts";

const LogsQuery = z.strictObject({
  offset: z.coerce.number().int().optional(),
  limit: z.coerce.number().int().min(0).optional(),
});

/** The serve API as a Hono app. */
export function serveRoutes(serve: ServeService): Hono {
  const app = new Hono();

  app.post("/api/serve/deployments", async (c) => {
    const spec = await readJson(c, DeploymentSpec);
    return c.json((await serve.apply(spec)) satisfies DeploymentDetails);
  });

  app.get("/api/serve/deployments", (c) => {
    return c.json(serve.list() satisfies DeploymentDetails[]);
  });

  app.get("/api/serve/deployments/:name", (c) => {
    return c.json(serve.get(nameParam(c)) satisfies DeploymentDetails);
  });

  app.delete("/api/serve/deployments/:name", async (c) => {
    await serve.delete(nameParam(c));
    return c.json({ deleted: true } satisfies DeleteDeploymentResponse);
  });

  app.get("/api/serve/deployments/:name/replicas/:actorId/logs", async (c) => {
    const query = parseInput(LogsQuery, c.req.query(), "query");
    const actorId = parseInput(ActorId, c.req.param("actorId"), "actor id");
    const range = await serve.readLogs(nameParam(c), actorId, query);
    return c.json(range satisfies ReplicaLogsResponse);
  });

  return app;
}

function nameParam(c: Context): string {
  return parseInput(DeploymentName, c.req.param("name"), "deployment name");
}
