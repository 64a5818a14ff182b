/** Schemas of the dashboard's own API: job rows, their search, and the event stream. */
import { z } from "zod";
import { ActorId } from "../../kit/actor_record.ts";
import { DeploymentName, DeploymentStatus } from "../../kit/deployment_record.ts";
import { JobErrorType, JobId, JobStatus } from "../../kit/job_record.ts";
import { JobCursor } from "../../storage/jobs.ts";

/** A job as the dashboard's table shows it: JobDetails' fields that a row needs. */
export const JobRow = z.object({
  submission_id: JobId,
  status: JobStatus,
  entrypoint: z.string(),
  error_type: JobErrorType.nullable(),
  start_time: z.number(),
  end_time: z.number().nullable(),
  driver_exit_code: z.number().int().nullable(),
  metadata: z.record(z.string(), z.string()),
  entrypoint_num_cpus: z.number(),
  entrypoint_num_gpus: z.number(),
  entrypoint_memory: z.number(),
  entrypoint_resources: z.record(z.string(), z.number()),
  /** In a cluster, the node it is placed on; null while it waits, and on one machine. */
  node: z.string().nullable(),
});
export type JobRow = z.infer<typeof JobRow>;

/** Query of `GET /api/ui/jobs`. */
export const FindJobsQuery = z.strictObject({
  /** Comma-separated statuses, e.g. `RUNNING,PENDING`. */
  status: z.string().optional(),
  /** Words that must all be in the id, the entrypoint or a `key=value` of the metadata. */
  q: z.string().max(1000).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** `next_cursor` of the previous page. */
  cursor: JobCursor.optional(),
});
export type FindJobsQuery = z.infer<typeof FindJobsQuery>;

/** Response of `GET /api/ui/jobs`: rows newest first, and where the next page starts. */
export const FindJobsResponse = z.object({
  jobs: z.array(JobRow),
  /** Null at the end. A page may hold fewer rows than asked and still have a next one. */
  next_cursor: z.string().nullable(),
});
export type FindJobsResponse = z.infer<typeof FindJobsResponse>;

/**
 * What `GET /api/events?types=` picks: the changes of jobs (`job` and `job-deleted`
 * events), of actors (`actor`, `actor-deleted`) or of deployments (`deployment`).
 */
export const EventType = z.enum(["job", "actor", "deployment"]);
export type EventType = z.infer<typeof EventType>;

/** Query of `GET /api/events`. */
export const EventsQuery = z.strictObject({
  /** Comma-separated event types; all when absent. */
  types: z.string().optional(),
});

/** The `data:` of a `job-deleted` event: the job is gone, its log and actor record too. */
export const JobDeletedEvent = z.object({ submission_id: JobId });
export type JobDeletedEvent = z.infer<typeof JobDeletedEvent>;

/** The `data:` of an `actor-deleted` event: the actor's record is gone. */
export const ActorDeletedEvent = z.object({ actor_id: ActorId });
export type ActorDeletedEvent = z.infer<typeof ActorDeletedEvent>;

/** The `data:` of a `deployment` event: its status now, `null` once it is deleted. */
export const DeploymentEvent = z.object({
  name: DeploymentName,
  status: DeploymentStatus.nullable(),
  message: z.string(),
  updated_at: z.number(),
});
export type DeploymentEvent = z.infer<typeof DeploymentEvent>;

/** One entry of `GET /api/ui/views`: a dashboard view a module contributes. */
export const ModuleViewEntry = z.object({
  module: z.string(),
  id: z.string(),
  title: z.string(),
  /** Where the head serves its script: `/ui/modules/<module>/<id>.js`. */
  url: z.string(),
});
export type ModuleViewEntry = z.infer<typeof ModuleViewEntry>;

/** Response of `GET /api/ui/views`. */
export const ModuleViewsResponse = z.array(ModuleViewEntry);
export type ModuleViewsResponse = z.infer<typeof ModuleViewsResponse>;
