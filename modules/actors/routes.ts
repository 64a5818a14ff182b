/** HTTP routes of the actors module: list, read and kill supervised processes. */
import { Hono } from "hono";
import { z } from "zod";
import { parseInput, parseListInput } from "../../kit/http.ts";
import { enveloped } from "../../kit/envelope.ts";
import { ValidationError } from "../../kit/errors.ts";
import { describeRoute } from "../../kit/route_doc.ts";
import { Envelope, EnvelopeError } from "../../kit/schemas.ts";
import { Actor, ActorId, ActorState, KillActorQuery, ListActorsQuery } from "./schemas.ts";
import type { ActorService } from "./service.ts";

/** The actors API as a Hono app. */
export function actorRoutes(actors: ActorService): Hono {
  const app = new Hono();

  // Before `/api/actors/:id`, which would take "kill" for an id.
  const killDoc = describeRoute({
    summary: "Kills an actor: SIGTERM, then SIGKILL after the grace; at once with force_kill",
    description: "Ray's dashboard envelope. `no_restart` keeps a killed serve replica dead.",
    query: KillActorQuery,
    response: Envelope,
    errorBody: EnvelopeError,
  });
  app.get(
    "/api/actors/kill",
    killDoc,
    enveloped(async (c) => {
      const { actor_id, ...request } = parseInput(KillActorQuery, c.req.query(), "query");
      if (actor_id === undefined) {
        throw new ValidationError("Invalid request: actor_id: required");
      }
      const msg = await actors.kill(actor_id, request);
      return { result: true, msg, data: {} };
    }),
  );

  const listDoc = describeRoute({
    summary: "Actors matching every filter given, newest first",
    description: "`state` is a comma-separated list; `job_id` and `deployment` exclude each other.",
    query: ListActorsQuery,
    response: z.array(Actor),
  });
  app.get("/api/actors", listDoc, async (c) => {
    const query = parseInput(ListActorsQuery, c.req.query(), "query");
    const states = parseListInput(ActorState, query.state?.toUpperCase(), "state");
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

  const getDoc = describeRoute({
    summary: "One actor",
    params: z.object({ id: ActorId }),
    response: Actor,
  });
  app.get("/api/actors/:id", getDoc, async (c) => {
    const actor = await actors.get(parseInput(ActorId, c.req.param("id"), "actor id"));
    return c.json(actor satisfies Actor);
  });

  return app;
}
