/**
 * The serve store: the serve controller's state, under the serve module's KV prefix.
 * A deployment's record holds its spec and status; each of its replicas has a record
 * holding what a later head needs to re-adopt it. Each deployment's controller is the
 * only writer of its records, and writes them in order, so records are replaced whole.
 */
import { z } from "zod";
import { ActorId, ActorState } from "./actors.ts";
import { RuntimeEnv, SupervisorIdentity } from "./jobs.ts";

/** A deployment name: part of actor ids and file names, so a safe character set. */
export const DeploymentName = z.string().regex(
  /^[A-Za-z0-9_-]{1,64}$/,
  "must be 1-64 characters of A-Z a-z 0-9 _ -",
);

/** The most replicas one deployment may ask for. */
export const MAX_REPLICAS = 100;

const Seconds = z.number().finite().nonnegative();

/** How crashed replicas are restarted: up to `max_restarts` times (-1: always), with backoff. */
export const RestartPolicy = z.strictObject({
  max_restarts: z.number().int().min(-1).default(3),
  /** Wait before the first restart; it doubles with every restart, up to the maximum. */
  initial_backoff_s: Seconds.default(1),
  max_backoff_s: Seconds.default(30),
  /**
   * How long a restarted replica without a health check must stay up before it counts as
   * ready again (records stored before this field existed read as the default).
   */
  min_uptime_s: Seconds.default(10),
});
export type RestartPolicy = z.infer<typeof RestartPolicy>;

/** A replica's health check: a shell command, or an HTTP GET to its own port. */
export const HealthCheck = z.strictObject({
  /** Healthy when it exits 0; runs with the replica's environment (`$PORT` included). */
  command: z.string().min(1).optional(),
  /** Healthy when `GET http://127.0.0.1:$PORT<http_path>` answers 2xx or 3xx. */
  http_path: z.string().startsWith("/").optional(),
  period_s: z.number().finite().min(0.01).default(10),
  timeout_s: z.number().finite().min(0.01).default(5),
  /** Consecutive failures, once healthy, that get a replica restarted. */
  failure_threshold: z.number().int().min(1).default(3),
  /** How long a new replica may take to pass its first check before it is restarted. */
  startup_timeout_s: z.number().finite().min(0.01).default(30),
}).refine((check) => (check.command === undefined) !== (check.http_path === undefined), {
  message: "give exactly one of command and http_path",
});
export type HealthCheck = z.infer<typeof HealthCheck>;

/** A deployment's spec, as `POST /api/serve/deployments` takes it. */
export const DeploymentSpec = z.strictObject({
  name: DeploymentName,
  /** Run with `/bin/sh -c`; `$PORT` holds the replica's port. */
  entrypoint: z.string().min(1, "must not be empty"),
  num_replicas: z.number().int().min(0).max(MAX_REPLICAS).default(1),
  /** Replicas of another version are replaced, one at a time; derived when absent. */
  version: z.string().min(1).max(128).optional(),
  runtime_env: RuntimeEnv.default({}),
  restart_policy: RestartPolicy.prefault({}),
  health_check: HealthCheck.nullish(),
  /** Grace between SIGTERM and SIGKILL when a replica is stopped; the head's when absent. */
  graceful_shutdown_timeout_s: Seconds.nullish(),
});
export type DeploymentSpec = z.infer<typeof DeploymentSpec>;

/** A deployment's condition, as Ray Serve names it (plus DELETING). */
export const DeploymentStatus = z.enum(["UPDATING", "HEALTHY", "UNHEALTHY", "DELETING"]);
export type DeploymentStatus = z.infer<typeof DeploymentStatus>;

/** A deployment as stored. Times are epoch milliseconds. */
export const Deployment = z.object({
  name: DeploymentName,
  /** The spec last applied, its version filled in. */
  spec: DeploymentSpec.extend({ version: z.string() }),
  status: DeploymentStatus,
  message: z.string(),
  created_at: z.number(),
  updated_at: z.number(),
});
export type Deployment = z.infer<typeof Deployment>;

/** A replica as the controller keeps it. */
export const Replica = z.object({
  actor_id: ActorId,
  /** `<deployment>#<suffix>`, as Ray tags replicas. */
  replica_tag: z.string(),
  deployment: DeploymentName,
  version: z.string(),
  port: z.number().int(),
  state: ActorState,
  /** Its supervisor while ALIVE: what a later head adopts. */
  supervisor: SupervisorIdentity.nullable(),
  num_restarts: z.number().int(),
  start_time: z.number(),
  end_time: z.number().nullable(),
  /** When a RESTARTING replica is due to be spawned again. */
  restart_at: z.number().nullable(),
  /** Why it died; a DEAD replica still stored has used up its restarts. */
  death_cause: z.string().nullable(),
});
export type Replica = z.infer<typeof Replica>;

/** Durable serve controller state. */
export interface ServeStore {
  /** Creates or replaces a deployment's record. */
  putDeployment(deployment: Deployment): Promise<void>;
  /** Every deployment, by name. */
  listDeployments(): Promise<Deployment[]>;
  /** Removes a deployment and its replicas' records; safe to repeat. */
  deleteDeployment(name: string): Promise<void>;
  /** Creates or replaces a replica's record. */
  putReplica(replica: Replica): Promise<void>;
  /** The replicas of a deployment. */
  listReplicas(deployment: string): Promise<Replica[]>;
  /** Removes a replica's record; safe to repeat. */
  deleteReplica(deployment: string, actorId: string): Promise<void>;
}

/** ServeStore on Deno KV: `[...prefix, "deployments", name]`, `[...prefix, "replicas", name, id]`. */
export class KvServeStore implements ServeStore {
  #kv: Deno.Kv;
  #prefix: Deno.KvKey;

  /** `prefix`: the serve module's KV prefix, e.g. `["mod", "serve"]`. */
  constructor(kv: Deno.Kv, prefix: Deno.KvKey) {
    this.#kv = kv;
    this.#prefix = prefix;
  }

  async putDeployment(deployment: Deployment): Promise<void> {
    await this.#kv.set([...this.#prefix, "deployments", deployment.name], deployment);
  }

  async listDeployments(): Promise<Deployment[]> {
    const deployments: Deployment[] = [];
    const prefix = [...this.#prefix, "deployments"];
    for await (const entry of this.#kv.list<Deployment>({ prefix })) deployments.push(entry.value);
    return deployments;
  }

  async deleteDeployment(name: string): Promise<void> {
    const op = this.#kv.atomic().delete([...this.#prefix, "deployments", name]);
    for await (const entry of this.#kv.list({ prefix: [...this.#prefix, "replicas", name] })) {
      op.delete(entry.key);
    }
    await op.commit();
  }

  async putReplica(replica: Replica): Promise<void> {
    await this.#kv.set(
      [...this.#prefix, "replicas", replica.deployment, replica.actor_id],
      replica,
    );
  }

  async listReplicas(deployment: string): Promise<Replica[]> {
    const replicas: Replica[] = [];
    const prefix = [...this.#prefix, "replicas", deployment];
    for await (const entry of this.#kv.list<Replica>({ prefix })) replicas.push(entry.value);
    return replicas;
  }

  async deleteReplica(deployment: string, actorId: string): Promise<void> {
    await this.#kv.delete([...this.#prefix, "replicas", deployment, actorId]);
  }
}
