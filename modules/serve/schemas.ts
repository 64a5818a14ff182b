/**
 * Request and response schemas of the serve API (`/api/serve/…`), shared by the server
 * and its clients.
 */
import { z } from "zod";
import { ActorId, ActorState } from "../../kit/actor_record.ts";
import {
  Deployment,
  DeploymentName,
  DeploymentSpec,
  DeploymentStatus,
  HealthCheck,
  RestartPolicy,
} from "../../kit/deployment_record.ts";

export { DeploymentName, DeploymentSpec, DeploymentStatus, HealthCheck, RestartPolicy };

/** One replica as the serve API shows it. */
export const ReplicaDetails = z.object({
  actor_id: ActorId,
  replica_tag: z.string(),
  version: z.string(),
  state: ActorState,
  /** Its supervisor's pid (also its process group); null while it is not running. */
  pid: z.number().int().nullable(),
  /** `$PORT` of the replica: where it is meant to serve. */
  port: z.number().int(),
  /** In a cluster, the node it runs on; null on one machine. */
  node: z.string().nullable(),
  num_restarts: z.number().int(),
  start_time: z.number(),
  /** Passed its first health check since it last started (at once without a check). */
  ready: z.boolean(),
  death_cause: z.string().nullable(),
});
export type ReplicaDetails = z.infer<typeof ReplicaDetails>;

/** One deployment as `GET /api/serve/deployments/{name}` returns it. */
export const DeploymentDetails = z.object({
  name: DeploymentName,
  status: DeploymentStatus,
  message: z.string(),
  created_at: z.number(),
  updated_at: z.number(),
  spec: Deployment.shape.spec,
  replicas: z.array(ReplicaDetails),
}).meta({ id: "DeploymentDetails" }); // a named schema in the OpenAPI document
export type DeploymentDetails = z.infer<typeof DeploymentDetails>;

/** Response of `DELETE /api/serve/deployments/{name}`. */
export const DeleteDeploymentResponse = z.object({ deleted: z.boolean() });
export type DeleteDeploymentResponse = z.infer<typeof DeleteDeploymentResponse>;

/** Response of `GET /api/serve/deployments/{name}/replicas/{actor_id}/logs`. */
export const ReplicaLogsResponse = z.object({
  logs: z.string(),
  offset: z.number().int(),
  size: z.number().int(),
});
export type ReplicaLogsResponse = z.infer<typeof ReplicaLogsResponse>;
