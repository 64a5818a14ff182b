/** JobDetails for client and CLI tests: a RUNNING job "j1", overridden by `changes`. */
import type { JobDetails } from "../modules/jobs/schemas.ts";

/** A job as the head answers it, with `changes` applied. */
export function aJobDetails(changes: Partial<JobDetails> = {}): JobDetails {
  return {
    type: "SUBMISSION",
    job_id: "j1",
    submission_id: "j1",
    status: "RUNNING",
    entrypoint: "true",
    message: "Job is currently running.",
    error_type: null,
    start_time: Date.now(),
    end_time: null,
    metadata: {},
    runtime_env: {},
    driver_info: null,
    driver_node_id: "n",
    driver_agent_http_address: "http://h",
    driver_exit_code: null,
    entrypoint_num_cpus: 0,
    entrypoint_num_gpus: 0,
    entrypoint_memory: 0,
    entrypoint_resources: {},
    priority: 0,
    ...changes,
  };
}
