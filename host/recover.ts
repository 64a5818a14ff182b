/**
 * Taking back running jobs whose records were lost with the KV store (`--recover`): job
 * supervisors are found in /proc by their actor marker, each gets a RUNNING record
 * rebuilt from what its process shows, and the jobs module then adopts them as it
 * adopts any running job, and records how they really end.
 */
import { z } from "zod";
import { ACTOR_ENV, supervisedCommandOf } from "../supervision/supervisor.ts";
import { groupProcessesByEnv, readStat } from "../supervision/procfs.ts";
import { isTerminal, type Job, JobId, type JobStatus, RuntimeEnv } from "../kit/job_record.ts";
import type { Supervisor } from "../kit/supervision.ts";
import { jobsToFence, type StoredRun } from "../scheduler/liveness.ts";
import { jobIdOfSupervisor } from "../modules/jobs/supervisor_actors.ts";
import type { JobStore } from "../storage/jobs.ts";
import { ConflictError } from "../storage/errors.ts";
import type { Logger } from "../kit/module.ts";

/** Linux's USER_HZ: the unit of process start times in /proc/PID/stat. */
const CLOCK_TICKS_PER_S = 100;

/** A running supervisor, as /proc shows it. */
export interface FoundSupervisor {
  actorId: string;
  pid: number;
  startTicks: number;
  /** Its command line: /proc/PID/cmdline, split at NULs. */
  argv: string[];
  /** Where its open file descriptors lead: /proc/PID/fd/*. */
  fdTargets: string[];
  env: Record<string, string>;
}

const JobConfig = z.object({
  runtime_env: RuntimeEnv.catch({}),
  metadata: z.record(z.string(), z.string()).catch({}),
});

/**
 * Whether a supervisor works for the head of a data directory known by `dataDirs` (its
 * path as configured, and as resolved): its arguments (its script in the run directory)
 * or its open files (the log, the fifo) lie in it. Other heads' jobs are left alone.
 */
export function isOfDataDir(found: FoundSupervisor, dataDirs: string[]): boolean {
  const inside = (path: string) => dataDirs.some((dir) => path.startsWith(`${dir}/`));
  return found.argv.some(inside) || found.fdTargets.some(inside);
}

/**
 * The job id a job supervisor's actor id stands for (`jobsup_<id>`), or undefined for
 * another actor (a serve replica).
 */
export function jobIdOfActor(actorId: string): string | undefined {
  const id = jobIdOfSupervisor(actorId);
  return id !== undefined && JobId.safeParse(id).success ? id : undefined;
}

/**
 * A RUNNING record for the job a supervisor runs, rebuilt from its process: the command
 * from its environment, runtime_env and metadata from `JOBHEAD_JOB_CONFIG_JSON`, and
 * the supervisor's own start as the submission time. What was not kept (resources, the
 * submission time itself) takes defaults, and the message says the record was recovered.
 */
export function recoveredJob(found: FoundSupervisor, options: { bootTimeMs: number }): Job {
  const id = jobIdOfActor(found.actorId);
  if (id === undefined) throw new TypeError(`"${found.actorId}" is not a job supervisor`);
  let config: z.infer<typeof JobConfig> = { runtime_env: {}, metadata: {} };
  try {
    config = JobConfig.parse(JSON.parse(found.env.JOBHEAD_JOB_CONFIG_JSON ?? "{}"));
  } catch {
    // kept the defaults: the record still lets the job be watched and stopped
  }
  const entrypoint = supervisedCommandOf(found.env);
  return {
    id,
    status: "RUNNING",
    entrypoint: entrypoint ?? "",
    runtime_env: config.runtime_env,
    metadata: { job_name: id, ...config.metadata, job_submission_id: id },
    entrypoint_num_cpus: 0,
    entrypoint_num_gpus: 0,
    entrypoint_memory: 0,
    entrypoint_resources: {},
    message: "Job is currently running. Its record was lost with the KV store and recovered " +
      "from its running process (jobhead start --recover)" +
      (entrypoint === undefined ? "; its entrypoint could not be read" : ""),
    error_type: null,
    start_time: Math.round(
      options.bootTimeMs + (found.startTicks / CLOCK_TICKS_PER_S) * 1000,
    ),
    end_time: null,
    driver_exit_code: null,
    supervisor: { pid: found.pid, start_ticks: found.startTicks },
    stop_requested_at: null,
  };
}

/**
 * Every running supervisor of this data directory's head: the session leader among the
 * processes that carry an actor marker.
 */
export async function findSupervisors(dataDir: string): Promise<FoundSupervisor[]> {
  const dataDirs = [dataDir, await Deno.realPath(dataDir)];
  const found: FoundSupervisor[] = [];
  for (const [actorId, pids] of await groupProcessesByEnv(ACTOR_ENV)) {
    for (const pid of pids) {
      const stat = readStat(pid);
      if (stat?.sid !== pid) continue;
      try {
        const supervisor = {
          actorId,
          pid,
          startTicks: stat.startTicks,
          argv: splitNul(await Deno.readTextFile(`/proc/${pid}/cmdline`)),
          fdTargets: await fdTargets(pid),
          env: parseEnviron(await Deno.readTextFile(`/proc/${pid}/environ`)),
        };
        if (isOfDataDir(supervisor, dataDirs)) found.push(supervisor);
      } catch {
        // ended meanwhile
      }
      break;
    }
  }
  return found;
}

/**
 * Recreates the records of the jobs still running under this data directory's
 * supervisors that the job store does not know; returns their ids. Supervisors of
 * other actors (serve replicas) have no record to rebuild: they are only reported.
 */
export async function recoverRunningJobs(
  jobs: JobStore<Job>,
  dataDir: string,
  logger: Logger,
): Promise<string[]> {
  const bootTimeMs = await readBootTimeMs();
  const recovered: string[] = [];
  const others: string[] = [];
  for (const found of await findSupervisors(dataDir)) {
    const id = jobIdOfActor(found.actorId);
    if (id === undefined) {
      others.push(`"${found.actorId}" (pid ${found.pid})`);
      continue;
    }
    if (await jobs.get(id)) continue;
    try {
      await jobs.create(recoveredJob(found, { bootTimeMs }));
      recovered.push(id);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  logger.info(
    recovered.length === 0
      ? "recover: no running job was missing from the store"
      : `recover: took back ${recovered.length} running job(s) whose records were lost: ` +
        recovered.map((id) => `"${id}"`).join(", "),
  );
  if (others.length > 0) {
    logger.warn(
      `recover: these supervised processes have no job and are left running; stop them by ` +
        `hand if their deployments are gone: ${others.join(", ")}`,
    );
  }
  return recovered;
}

async function fdTargets(pid: number): Promise<string[]> {
  const targets: string[] = [];
  for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
    try {
      targets.push(await Deno.readLink(`/proc/${pid}/fd/${entry.name}`));
    } catch {
      // closed meanwhile
    }
  }
  return targets;
}

/** Boot time in epoch ms, from the `btime` line of /proc/stat. */
async function readBootTimeMs(): Promise<number> {
  const match = /^btime (\d+)$/m.exec(await Deno.readTextFile("/proc/stat"));
  return match ? Number(match[1]) * 1000 : Date.now();
}

function splitNul(text: string): string[] {
  const parts = text.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

function parseEnviron(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of splitNul(text)) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/**
 * In a cluster, at a node's start: kills the supervised jobs of this data directory that
 * the store ended, deleted or gave to another node while the node was away (it was
 * declared DEAD and its jobs FAILED): fencing. Returns their ids.
 */
export async function fenceStrayJobs(
  jobs: JobStore<Job>,
  supervisor: Supervisor,
  options: { dataDir: string; node: string; logger: Logger },
): Promise<string[]> {
  const found = new Map<string, FoundSupervisor>();
  const stored = new Map<string, StoredRun>();
  for (const supervised of await findSupervisors(options.dataDir)) {
    const id = jobIdOfActor(supervised.actorId);
    if (id === undefined) continue;
    const job = await jobs.get(id);
    found.set(id, supervised);
    stored.set(id, { status: job?.status, node: job?.node?.name });
  }
  const stray = jobsToFence(options.node, stored, (status) => isTerminal(status as JobStatus));
  for (const id of stray) {
    const { actorId, pid, startTicks } = found.get(id)!;
    // Its end is the store's already: nothing to record.
    const ended = () => Promise.resolve(true);
    const process = await supervisor.adopt(actorId, { pid, start_ticks: startTicks }, ended);
    options.logger.warn(
      `job "${id}" ended or moved while this node was away: killing its processes (pid ${pid})`,
    );
    await process.stop(0);
  }
  return stray;
}
