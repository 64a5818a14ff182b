/** Request and response schemas of the actors API, shared by the server and its clients. */
import { z } from "zod";
import { KillRequest } from "../../kit/supervision.ts";
import {
  Actor,
  ActorId,
  ActorOwner,
  ActorState,
  ServeReplicaMetadata,
} from "../../storage/actors.ts";

export { Actor, ActorId, ActorOwner, ActorState, ServeReplicaMetadata };

/** Query of `GET /api/actors`; every filter given must match. */
export const ListActorsQuery = z.strictObject({
  /** Comma-separated states, e.g. `ALIVE,RESTARTING`. */
  state: z.string().optional(),
  class_name: z.string().optional(),
  namespace: z.string().optional(),
  /** Actors owned by this job (its supervisor). */
  job_id: z.string().optional(),
  /** Actors owned by this serve deployment (its replicas). */
  deployment: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(1000),
});
export type ListActorsQuery = z.infer<typeof ListActorsQuery>;

/** Query of `GET /api/actors/kill` (API.md). */
export const KillActorQuery = z.strictObject({
  actor_id: ActorId.optional(),
  ...KillRequest.shape,
});
export type KillActorQuery = z.infer<typeof KillActorQuery>;
