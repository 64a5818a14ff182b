/**
 * The actor store: one record per supervised process (a job's supervisor, a serve
 * replica, …). The module that owns an actor writes its record; the head is the only
 * writer of the KV store, so records are replaced whole, in atomic batches.
 */
import { z } from "zod";
import { RuntimeEnv } from "./jobs.ts";

/** An actor id: names the supervisor's run files, so restricted to a safe character set. */
export const ActorId = z.string().regex(
  /^(?!\.)[A-Za-z0-9_.-]{1,200}$/,
  "must be 1-200 characters of A-Z a-z 0-9 _ . - and not start with '.'",
);
export type ActorId = z.infer<typeof ActorId>;

/** Actor states, as Ray names them. */
export const ActorState = z.enum(["PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"]);
export type ActorState = z.infer<typeof ActorState>;

/** What an actor works for: a job (its supervisor) or a serve deployment (a replica). */
export const ActorOwner = z.object({
  kind: z.enum(["job", "deployment"]),
  /** The job id or the deployment name. */
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

/** Options of `ActorStore.list()`; every given filter must match. */
export interface ListActorsOptions {
  states?: readonly ActorState[];
  className?: string;
  namespace?: string;
  owner?: Partial<ActorOwner>;
}

/** Durable actor records. */
export interface ActorStore {
  /** Creates or replaces the records of `actors`, all in one atomic write. */
  put(actors: readonly Actor[]): Promise<void>;
  /** The actor, or undefined. */
  get(id: string): Promise<Actor | undefined>;
  /** Actors matching every filter given, newest start first (not yet started ones first). */
  list(options?: ListActorsOptions): Promise<Actor[]>;
  /** Removes records; ids that do not exist are ignored. */
  delete(ids: readonly string[]): Promise<void>;
}

const ACTORS = "actors";
/** Mutations per atomic commit, at most. */
const BATCH = 100;
/** Bytes of records per atomic commit, at most: well inside Deno KV's limit on a commit. */
const BATCH_BYTES = 256 * 1024;

/** The actor id of a job's supervisor: names its run files and marks its processes. */
export function jobSupervisorActorId(jobId: string): string {
  return `jobsup_${jobId}`;
}

/** ActorStore on Deno KV: `["actors", id]`. */
export class KvActorStore implements ActorStore {
  #kv: Deno.Kv;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  async put(actors: readonly Actor[]): Promise<void> {
    let op = this.#kv.atomic();
    let [count, bytes] = [0, 0];
    for (const actor of actors) {
      // A record carries its runtime_env, which may be large: batches are cut by size too.
      const size = JSON.stringify(actor).length;
      if (count > 0 && (count === BATCH || bytes + size > BATCH_BYTES)) {
        await op.commit();
        [op, count, bytes] = [this.#kv.atomic(), 0, 0];
      }
      op.set([ACTORS, actor.actor_id], actor);
      [count, bytes] = [count + 1, bytes + size];
    }
    if (count > 0) await op.commit();
  }

  async get(id: string): Promise<Actor | undefined> {
    return (await this.#kv.get<Actor>([ACTORS, id])).value ?? undefined;
  }

  async list(options: ListActorsOptions = {}): Promise<Actor[]> {
    const actors: Actor[] = [];
    for await (const entry of this.#kv.list<Actor>({ prefix: [ACTORS] }, { batchSize: 500 })) {
      if (matches(entry.value, options)) actors.push(entry.value);
    }
    const startOf = (actor: Actor) => actor.start_time ?? Infinity;
    return actors.sort((a, b) => startOf(b) - startOf(a));
  }

  async delete(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) {
      const op = this.#kv.atomic();
      for (const id of ids.slice(i, i + BATCH)) op.delete([ACTORS, id]);
      await op.commit();
    }
  }
}

function matches(actor: Actor, options: ListActorsOptions): boolean {
  return (!options.states || options.states.includes(actor.state)) &&
    (options.className === undefined || actor.class_name === options.className) &&
    (options.namespace === undefined || actor.namespace === options.namespace) &&
    (options.owner?.kind === undefined || actor.owner.kind === options.owner.kind) &&
    (options.owner?.id === undefined || actor.owner.id === options.owner.id);
}
