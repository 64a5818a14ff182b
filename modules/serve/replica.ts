/** A replica's record in the serve store: what a later head needs to re-adopt it. */
import { z } from "zod";
import { ActorId, ActorState } from "../../kit/actor_record.ts";
import { DeploymentName } from "../../kit/deployment_record.ts";
import { SupervisorIdentity } from "../../kit/supervision.ts";

/** A replica as the controller keeps it. */
export const Replica = z.object({
  actor_id: ActorId,
  /** `<deployment>#<suffix>`, as Ray tags replicas. */
  replica_tag: z.string(),
  deployment: DeploymentName,
  version: z.string(),
  port: z.number().int(),
  /** In a cluster, the node it runs on; absent on one machine (the head's own node). */
  node: z.string().optional(),
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
