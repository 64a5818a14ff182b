/**
 * The actor record: one per supervised process (a job's supervisor, a serve replica, or
 * an actor an operator's module owns). The module that owns an actor decides what its
 * record says and records it through the registry (kit/actor_registry.ts); the actors
 * module serves the records. The store (storage/actors.ts) keeps them whole.
 */
import { z } from "zod";
import { RuntimeEnv } from "./job_record.ts";

/** An actor id: names the supervisor's run files, so restricted to a safe character set. */
export const ActorId = z.string().regex(
  /^(?!\.)[A-Za-z0-9_.-]{1,200}$/,
  "must be 1-200 characters of A-Z a-z 0-9 _ . - and not start with '.'",
);
export type ActorId = z.infer<typeof ActorId>;

/** Actor states, as Ray names them. */
export const ActorState = z.enum(["PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"]);
export type ActorState = z.infer<typeof ActorState>;

/**
 * What an actor works for. The built-in owners are a job (`kind` `job`, its supervisor) and
 * a serve deployment (`deployment`, a replica); an operator's module names its own kind.
 */
export const ActorOwner = z.object({
  kind: z.string().describe(
    "`job` (a job's supervisor), `deployment` (a serve replica), or a kind an operator's " +
      "module defines",
  ),
  /** The job id, the deployment name, or what the owner's kind identifies. */
  id: z.string(),
});
export type ActorOwner = z.infer<typeof ActorOwner>;

/** Serve's facts about a replica actor (Ray's `metadata.serve`). */
export const ServeReplicaMetadata = z.object({
  replica_tag: z.string(),
  deployment_name: z.string(),
  version: z.string(),
});
export type ServeReplicaMetadata = z.infer<typeof ServeReplicaMetadata>;

/** An actor as stored and as `GET /api/actors/{id}` returns it. Times are epoch milliseconds. */
export const Actor = z.object({
  actor_id: ActorId,
  /** `JobSupervisor`, `ServeReplica`, or a class an operator's module defines. */
  class_name: z.string(),
  name: z.string(),
  namespace: z.string(),
  state: ActorState,
  /** Pid of the supervisor process (also its process group id); null before it is spawned. */
  pid: z.number().int().nullable(),
  node_id: z.string(),
  start_time: z.number().nullable(),
  end_time: z.number().nullable(),
  resources: z.record(z.string(), z.number()),
  runtime_env: RuntimeEnv,
  owner: ActorOwner,
  /** The port the actor serves on, when it has one (serve replicas). */
  port: z.number().int().nullable(),
  num_restarts: z.number().int(),
  /** Why a DEAD actor died; null while it lives. */
  death_cause: z.string().nullable(),
  metadata: z.object({ serve: ServeReplicaMetadata.optional() }),
});
export type Actor = z.infer<typeof Actor>;
