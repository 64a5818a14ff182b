/**
 * HTTP routes of the serve API (`/api/serve/…`): parse, call the service, respond. In a
 * cluster a head that does not control the deployments passes each request on to the one
 * that does.
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { parseInput, readJson } from "../../kit/http.ts";
import { describeRoute } from "../../kit/route_doc.ts";
import { ActorId } from "../../kit/actor_record.ts";
import {
  DeleteDeploymentResponse,
  DeploymentDetails,
  DeploymentName,
  DeploymentSpec,
  ReplicaLogsResponse,
} from "./schemas.ts";
import type { ServeService } from "./service.ts";

const LogsQuery = z.strictObject({
  offset: z.coerce.number().int().optional(),
  limit: z.coerce.number().int().min(0).optional(),
});
const NameParams = z.object({ name: DeploymentName });

/** The serve API as a Hono app. */
export function serveRoutes(serve: ServeService): Hono {
  const app = new Hono();

  const applyDoc = describeRoute({
    summary: "Creates or updates a deployment; answers it",
    description: "Another `version` rolls the replicas one at a time; " +
      "another `num_replicas` scales.",
    body: DeploymentSpec,
    response: DeploymentDetails,
  });
  app.post("/api/serve/deployments", applyDoc, async (c) => {
    const forwarded = await serve.forward(c.req.raw);
    if (forwarded) return forwarded;
    const spec = await readJson(c, DeploymentSpec);
    return c.json((await serve.apply(spec)) satisfies DeploymentDetails);
  });

  const listDoc = describeRoute({
    summary: "Every deployment, by name",
    response: z.array(DeploymentDetails),
  });
  app.get("/api/serve/deployments", listDoc, async (c) => {
    const forwarded = await serve.forward(c.req.raw);
    if (forwarded) return forwarded;
    return c.json(serve.list() satisfies DeploymentDetails[]);
  });

  const getDoc = describeRoute({
    summary: "One deployment with its replicas",
    params: NameParams,
    response: DeploymentDetails,
  });
  app.get("/api/serve/deployments/:name", getDoc, async (c) => {
    const forwarded = await serve.forward(c.req.raw);
    if (forwarded) return forwarded;
    return c.json(serve.get(nameParam(c)) satisfies DeploymentDetails);
  });

  const deleteDoc = describeRoute({
    summary: "Stops every replica, then removes the deployment and its logs",
    params: NameParams,
    response: DeleteDeploymentResponse,
  });
  app.delete("/api/serve/deployments/:name", deleteDoc, async (c) => {
    const forwarded = await serve.forward(c.req.raw);
    if (forwarded) return forwarded;
    await serve.delete(nameParam(c));
    return c.json({ deleted: true } satisfies DeleteDeploymentResponse);
  });

  const logsDoc = describeRoute({
    summary: "A byte range of a replica's log (by default its last 16 MiB)",
    params: NameParams.extend({ actorId: ActorId }),
    query: LogsQuery,
    response: ReplicaLogsResponse,
  });
  app.get("/api/serve/deployments/:name/replicas/:actorId/logs", logsDoc, async (c) => {
    const forwarded = await serve.forward(c.req.raw);
    if (forwarded) return forwarded;
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
