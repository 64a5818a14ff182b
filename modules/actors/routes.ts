/** HTTP routes of the actors module: list, read and kill supervised processes. */
import { Hono } from "hono";
import { parseInput } from "../host/app.ts";
import { enveloped } from "../host/envelope.ts";
import { ValidationError } from "../host/errors.ts";
import { type Actor, ActorId, ActorState, KillActorQuery, ListActorsQuery } from "./schemas.ts";
import type { ActorService } from "./service.ts";

/** The actors API as a Hono app. */
export function actorRoutes(actors: ActorService): Hono {
  const app = new Hono();

  // Before `/api/actors/:id`, which would take "kill" for an id.
  app.get(
    "/api/actors/kill",
    enveloped(async (c) => {
      const query = parseInput(KillActorQuery, c.req.query(), "query");
      if (query.actor_id === undefined) {
        throw new ValidationError("Invalid request: actor_id: required");
      }
      const msg = await actors.kill(query.actor_id, {
        force: query.force_kill,
        noRestart: query.no_restart,
      });
      return { result: true, msg, data: {} };
    }),
  );

  app.get("/api/actors", async (c) => {
    const query = parseInput(ListActorsQuery, c.req.query(), "query");
    const states = query.state?.split(",").map((s) =>
      parseInput(ActorState, s.trim().toUpperCase(), "state")
    );
    const owner = query.job_id !== undefined
      ? { kind: "job" as const, id: query.job_id }
      : query.deployment !== undefined
      ? { kind: "deployment" as const, id: query.deployment }
      : undefined;
    if (query.job_id !== undefined && query.deployment !== undefined) {
      throw new ValidationError("Invalid request: job_id and deployment exclude each other");
    }
    const list = await actors.list({
      states,
      className: query.class_name,
      namespace: query.namespace,
      owner,
      limit: query.limit,
    });
    return c.json(list satisfies Actor[]);
  });

  app.get("/api/actors/:id", async (c) => {
    const actor = await actors.get(parseInput(ActorId, c.req.param("id"), "actor id"));
    return c.json(actor satisfies Actor);
  });

  return app;
}
