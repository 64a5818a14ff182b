/** What the head was configured with, as modules read it (`ModuleContext.config`); parsed in host/config.ts. */
import type { LogFormat } from "./log.ts";
import type { Labels } from "../scheduler/labels.ts";
import type { PlacementStrategy } from "../scheduler/admission.ts";

/** Everything the head is configured with. */
export interface HeadConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Holds the KV file, the logs and the supervisors' run files. */
  dataDir: string;
  /** `kv` (the data directory's Deno KV) or a PostgreSQL URL. */
  store: string;
  /** The PostgreSQL store's password when its URL has none. */
  storePassword?: string;
  /** Bearer token; required when listening on a non-loopback address. */
  token?: string;
  /** Load only the modules marked minimal. */
  minimal: boolean;
  /** Operators' modules: paths or import specifiers. */
  modules: string[];
  /** Start without an operator's module that fails to load, rather than refuse to start. */
  skipBrokenModules: boolean;
  /** Default grace between SIGTERM and SIGKILL when stopping a job. */
  stopGraceMs: number;
  /** Largest accepted JSON request body. */
  maxBodyBytes: number;
  /** A job's log past this size loses its middle, keeping its head and tail. */
  logMaxBytes: number;
  /** Logs of jobs that ended longer ago than this are deleted; 0 keeps them. */
  logRetentionDays: number;
  /** A log tail socket silent this long is pinged, and closed if no pong comes; 0: never. */
  tailIdleTimeoutS: number;
  /** Largest accepted package upload. */
  maxPackageBytes: number;
  /** How the head writes its own log lines. */
  logFormat: LogFormat;
  /** Finished jobs that ended longer ago than this are deleted; absent: kept. */
  jobRetentionDays?: number;
  /** Past this many finished jobs the oldest are deleted; absent: no limit. */
  maxFinishedJobs?: number;
  /** Packages no job names, unused this many days, are deleted; 0 keeps them. */
  packageRetentionDays: number;
  /** Records of DEAD actors are removed this long after they died; 0 keeps them. */
  actorRetentionMinutes: number;
  /** Mode of the data directory and its subdirectories; files get it without execute bits. */
  dataMode: number;
  /** Move a damaged KV file aside and take back running jobs the store lost. */
  recover: boolean;
  /** Most bytes one package may expand to. */
  maxPackageExtractBytes: number;
  /** Most bytes a package may expand to per byte of zip, past its first MiB; 0: no limit. */
  maxPackageRatio: number;
  /** Serve `GET /metrics` without the token. */
  metricsPublic: boolean;
  /** "auto": stops go through cgroup v2 where it is writable; "off": environment markers only. */
  cgroup: "auto" | "off";
  /** Open log tails at most; past it an upgrade is answered 503. */
  maxLogTails: number;
  /** Seconds a connection may take to send a request's headers; 0: no limit. */
  headerTimeoutS: number;
  /** Open client connections at most; past it new ones get 503. From the fd limit when absent. */
  maxConnections?: number;
  /** CPUs jobs may hold in all; absent: detected. */
  numCpus?: number;
  /** GPUs jobs may hold; absent: detected. */
  numGpus?: number;
  /** Bytes of memory jobs may hold; absent: detected. */
  memoryBytes?: number;
  /** Custom resources and their amounts. */
  resources: Record<string, number>;
  /** Jobs running at once at most; absent: no limit. */
  maxRunningJobs?: number;
  /** A job waiting this long has what it needs set aside as it frees up. */
  reserveAfterS: number;
  /** A job still PENDING after this long fails; a job's RAY_JOB_START_TIMEOUT_SECONDS overrides it. */
  pendingTimeoutS: number;
  /** Hold each job to its entrypoint_num_cpus with cgroup cpu.max where writable. */
  enforceCpu: boolean;
  /** A head (`jobhead start`) or a worker node (`jobhead node`). */
  role: "head" | "node";
  /** This node's name in a cluster. */
  nodeName: string;
  /** This node's labels in a cluster. */
  labels: Labels;
  /** A node silent this long is declared DEAD. */
  nodeTimeoutS: number;
  /** In a cluster, this head runs jobs too (unless `--no-local-jobs`). */
  localJobs: boolean;
  /** How the scheduler picks among the nodes a job fits. */
  placement: PlacementStrategy;
}
