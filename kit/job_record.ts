/**
 * The job record: what the jobs module writes to the job store and announces on the bus,
 * and what other modules read from there. Its meaning lives here; the store
 * (storage/jobs.ts) keeps it whole and looks only at its id, status and submission time.
 */
import { z } from "zod";
import { SupervisorIdentity } from "./supervision.ts";

/** A job id: names files, so restricted to a safe character set (API.md). */
export const JobId = z.string().regex(
  /^(?!\.)[A-Za-z0-9_.-]{1,128}$/,
  "must be 1-128 characters of A-Z a-z 0-9 _ . - and not start with '.'",
);
export type JobId = z.infer<typeof JobId>;

/** Job statuses; they move only forward: PENDING → RUNNING → one terminal status. */
export const JobStatus = z.enum(["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"]);
export type JobStatus = z.infer<typeof JobStatus>;

/** Statuses a job never leaves. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ["STOPPED", "SUCCEEDED", "FAILED"];

/** Whether a job in `status` has ended for good. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Whether a job may go from status `from` to `to`: forward only, or staying put. */
export function canMove(from: JobStatus, to: JobStatus): boolean {
  if (from === to) return true;
  if (isTerminal(from)) return false;
  return isTerminal(to) || (from === "PENDING" && to === "RUNNING");
}

/** The lifecycle of a job's status, as the job store enforces it (storage/jobs.ts). */
export const JOB_LIFECYCLE = { terminalStatuses: TERMINAL_STATUSES, canMove } as const;

/** Why a FAILED job failed (Ray's `JobErrorType`). */
export const JobErrorType = z.enum([
  "JOB_ENTRYPOINT_COMMAND_ERROR",
  "JOB_ENTRYPOINT_COMMAND_START_ERROR",
  "RUNTIME_ENV_SETUP_FAILURE",
  "JOB_SUPERVISOR_ACTOR_DIED",
  "JOB_SUPERVISOR_ACTOR_START_TIMEOUT",
]);
export type JobErrorType = z.infer<typeof JobErrorType>;

/** The runtime environment a job (or a replica) runs in; keys other than these are rejected. */
export const RuntimeEnv = z.strictObject({
  // Names and values end up in a process environment: no "=" in names, no NUL anywhere.
  env_vars: z.record(
    z.string().regex(/^[^=\0]+$/, "names must be non-empty, without '=' or NUL"),
    z.string().regex(/^[^\0]*$/, "values must not contain NUL"),
  ).optional(),
  working_dir: z.string().min(1).optional(),
});
export type RuntimeEnv = z.infer<typeof RuntimeEnv>;

/** A job as stored. Timestamps are epoch milliseconds. */
export const Job = z.object({
  id: JobId,
  status: JobStatus,
  entrypoint: z.string(),
  runtime_env: RuntimeEnv,
  metadata: z.record(z.string(), z.string()),
  entrypoint_num_cpus: z.number(),
  entrypoint_num_gpus: z.number(),
  entrypoint_memory: z.number(),
  entrypoint_resources: z.record(z.string(), z.number()),
  /** Higher starts first (jobhead's addition); absent (records from before it): 0. */
  priority: z.number().int().optional(),
  /** The labels its node must have (Ray's `entrypoint_label_selector`); absent: any node. */
  entrypoint_label_selector: z.record(z.string(), z.string()).optional(),
  /** GPU indices the job holds while it runs (CUDA_VISIBLE_DEVICES), once it started. */
  gpus: z.array(z.number().int()).optional(),
  message: z.string(),
  error_type: JobErrorType.nullable(),
  /** Submission time, as Ray reports `start_time`. */
  start_time: z.number(),
  end_time: z.number().nullable(),
  driver_exit_code: z.number().int().nullable(),
  supervisor: SupervisorIdentity.nullable(),
  stop_requested_at: z.number().nullable(),
  /**
   * The node it is placed on, in a cluster (PostgreSQL store): its name, Ray node id and
   * agent address; absent on a single machine and while it waits to be placed.
   */
  node: z.object({ name: z.string(), id: z.string(), address: z.string() }).optional(),
  /** When log retention removed the job's log; absent while it is kept. */
  log_removed_at: z.number().optional(),
});
export type Job = z.infer<typeof Job>;
