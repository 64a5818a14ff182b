/** Job records and stores for tests: sensible defaults, overridden by `changes`. */
import type { KvStore } from "../storage/kv.ts";
import { KvJobStore } from "../storage/jobs.ts";
import { type Job, JOB_LIFECYCLE } from "./job_record.ts";

/** A PENDING job "job-1" running `true`, with `changes` applied. */
export function aJob(changes: Partial<Job> = {}): Job {
  return {
    id: "job-1",
    status: "PENDING",
    entrypoint: "true",
    runtime_env: {},
    metadata: {},
    entrypoint_num_cpus: 0,
    entrypoint_num_gpus: 0,
    entrypoint_memory: 0,
    entrypoint_resources: {},
    message: "",
    error_type: null,
    start_time: 1_000,
    end_time: null,
    driver_exit_code: null,
    supervisor: null,
    stop_requested_at: null,
    ...changes,
  };
}

/** A job store on `kv`, as the head builds it. */
export function aJobStore(kv: KvStore): KvJobStore<Job> {
  return new KvJobStore<Job>(kv, JOB_LIFECYCLE);
}
