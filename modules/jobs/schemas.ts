/**
 * Request and response schemas of the jobs API (API.md, "Jobs"). The server parses
 * requests with them, and clients parse responses with the same schemas.
 */
import { z } from "zod";
import {
  isTerminal,
  JobErrorType,
  JobId,
  JobStatus,
  RuntimeEnv,
  TERMINAL_STATUSES,
} from "../../kit/job_record.ts";
import { ErrorResponse } from "../../kit/schemas.ts";

export { ErrorResponse, isTerminal, JobErrorType, JobId, JobStatus, RuntimeEnv, TERMINAL_STATUSES };

const StringMap = z.record(z.string(), z.string());
const NonNegative = z.number().finite().nonnegative();

/**
 * Body of `POST /api/jobs/`. Ray's SDK sends every field, absent ones as `null`,
 * so `null` is accepted wherever a field is optional.
 */
export const SubmitJobRequest = z.strictObject({
  entrypoint: z.string().min(1, "must not be empty").regex(/^[^\0]*$/, "must not contain NUL"),
  submission_id: JobId.nullish(),
  job_id: JobId.nullish(),
  runtime_env: RuntimeEnv.nullish(),
  metadata: StringMap.nullish(),
  entrypoint_num_cpus: NonNegative.nullish(),
  entrypoint_num_gpus: NonNegative.nullish(),
  entrypoint_memory: z.number().int().nonnegative().nullish(),
  entrypoint_resources: z.record(z.string(), NonNegative).nullish(),
  // Sent (as null) by recent Ray SDKs: the labels of the node to run on (Ray's syntax).
  entrypoint_label_selector: StringMap.nullish(),
  /** jobhead's addition: higher starts first; 0 by default. */
  priority: z.number().int().nullish(),
});
export type SubmitJobRequest = z.infer<typeof SubmitJobRequest>;

/** Response of `POST /api/jobs/`. */
export const SubmitJobResponse = z.object({ job_id: JobId, submission_id: JobId });
export type SubmitJobResponse = z.infer<typeof SubmitJobResponse>;

/** Where the job's driver (its entrypoint) runs. */
export const DriverInfo = z.object({
  id: z.string(),
  node_ip_address: z.string(),
  pid: z.string(),
});

/** One job as `GET /api/jobs/{id}` returns it. */
export const JobDetails = z.object({
  type: z.literal("SUBMISSION"),
  job_id: JobId,
  submission_id: JobId,
  status: JobStatus,
  entrypoint: z.string(),
  message: z.string(),
  error_type: JobErrorType.nullable(),
  start_time: z.number().nullable(),
  end_time: z.number().nullable(),
  metadata: StringMap,
  runtime_env: RuntimeEnv,
  driver_info: DriverInfo.nullable(),
  driver_node_id: z.string(),
  driver_agent_http_address: z.string(),
  driver_exit_code: z.number().int().nullable(),
  entrypoint_num_cpus: z.number(),
  entrypoint_num_gpus: z.number(),
  entrypoint_memory: z.number(),
  entrypoint_resources: z.record(z.string(), z.number()),
  /** jobhead's addition: higher starts first. */
  priority: z.number().int(),
}).meta({ id: "JobDetails" }); // a named schema in the OpenAPI document
export type JobDetails = z.infer<typeof JobDetails>;

/** Response of `POST /api/jobs/{id}/stop`. */
export const StopJobResponse = z.object({ stopped: z.boolean() });
export type StopJobResponse = z.infer<typeof StopJobResponse>;

/** Response of `DELETE /api/jobs/{id}`. */
export const DeleteJobResponse = z.object({ deleted: z.boolean() });
export type DeleteJobResponse = z.infer<typeof DeleteJobResponse>;

/** Response of `GET /api/jobs/{id}/logs`: `logs` alone for the whole log, all three for a range. */
export const JobLogsResponse = z.object({
  logs: z.string(),
  /** Ranged reads only: where the returned range starts. */
  offset: z.number().int().optional(),
  /** Ranged reads only: the log's size in bytes. */
  size: z.number().int().optional(),
});
export type JobLogsResponse = z.infer<typeof JobLogsResponse>;

/** Response of `GET /api/jobs/{id}/logs/lines`: line `line` (from 0) starts at byte `offset`. */
export const LogLineResponse = z.object({
  line: z.number().int(),
  offset: z.number().int(),
  size: z.number().int(),
});
export type LogLineResponse = z.infer<typeof LogLineResponse>;

/** Response of `GET /api/jobs/{id}/logs/search`. */
export const LogSearchResponse = z.object({
  /** Matching lines, each once: its number (from 0) and the offset of its first byte. */
  matches: z.array(z.object({ line: z.number().int(), offset: z.number().int() })),
  /** Where the next request goes on (`from`), or null when the log's edge was reached. */
  next: z.number().int().nullable(),
  size: z.number().int(),
});
export type LogSearchResponse = z.infer<typeof LogSearchResponse>;

/** Response of `GET /api/version`. */
export const VersionResponse = z.object({
  version: z.string(),
  ray_version: z.string(),
  ray_commit: z.string(),
  session_name: z.string(),
  jobhead_version: z.string(),
});
export type VersionResponse = z.infer<typeof VersionResponse>;
