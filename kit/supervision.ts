/**
 * The supervision contract: what a module asks of the head's supervisor to run a shell
 * command as a supervised process (an actor), stop or kill it, take it back after a head
 * restart, and learn how it ended. The supervisor owns the whole life of the process:
 * every process of it is gone and its cgroup and fifo released before its owner hears of
 * its end, and its exit file goes once the owner has recorded that end
 * (supervision/supervisor.ts implements it).
 */
import { z } from "zod";

/**
 * The process that supervises a running job or replica (its pid, also its process
 * group): enough for a later head to find it again and adopt it.
 */
export const SupervisorIdentity = z.object({
  pid: z.number().int(),
  /** Start time in clock ticks since boot (/proc/PID/stat field 22): guards against pid reuse. */
  start_ticks: z.number().int(),
});
export type SupervisorIdentity = z.infer<typeof SupervisorIdentity>;

/** A boolean query flag as Ray's dashboard sends it. */
const QueryFlag = z.enum(["true", "false", "1", "0", "True", "False"]).transform((v) =>
  v === "true" || v === "1" || v === "True"
);

/** How an actor is asked to die: the flags of `GET /api/actors/kill` (API.md). */
export const KillRequest = z.object({
  /** SIGKILL at once, rather than SIGTERM and SIGKILL after the grace. */
  force_kill: QueryFlag.default(false),
  /** For actors with a restart policy: stay dead. */
  no_restart: QueryFlag.default(false),
});
export type KillRequest = z.infer<typeof KillRequest>;

/**
 * How a supervised command ended. `outOfMemory` is set when the kernel killed a process of
 * it for passing its memory limit (`RunSpec.limits`), as its cgroup counted.
 */
export type ExitReason =
  /** The command exited; `code` is its status, or -N for a death by signal N. */
  | { kind: "exited"; code: number; endTime: number; outOfMemory?: boolean }
  /**
   * The supervisor died (killed, crashed) before the command ended; the group died with
   * it. `killed` is set when the actor was killed on purpose (`SupervisedProcess.kill()`).
   */
  | { kind: "died"; endTime: number; killed?: KillRequest; outOfMemory?: boolean };

/**
 * What the kernel holds a supervised process to, where a cgroup controller for it is
 * writable (the head says at start which are); 0 or absent: no limit.
 */
export interface ResourceLimits {
  /** Bytes of memory (swap included) for all its processes; past it, the kernel kills one. */
  memoryBytes?: number;
  /** CPUs' worth of time it may use (a CFS quota), where the head enforces CPUs. */
  cpus?: number;
}

/** What to run under a supervisor. */
export interface RunSpec {
  /** Actor id: unique among live actors, safe as a file name. */
  id: string;
  /** Shell command, run with `sh -c`. */
  command: string;
  /** File the command's stdout and stderr are appended to. */
  logPath: string;
  cwd?: string;
  /** Added to the head's environment (less the variables withheld from actors). */
  env?: Record<string, string>;
  limits?: ResourceLimits;
}

/**
 * The owner's part in a supervised process's end: records `reason`, called once every
 * process of it is gone and its cgroup and fifo are released. Resolves true once the end
 * is recorded: the exit file then goes too. False (its owner is shutting down) or a
 * rejection (logged) keeps the exit file, from which the next head learns the end again.
 */
export type ExitHandler = (reason: ExitReason, process: SupervisedProcess) => Promise<boolean>;

/** A supervised process group this head spawned or adopted. */
export interface SupervisedProcess {
  /** Actor id. */
  readonly id: string;
  /**
   * Its supervisor's pid (also the process group and session id) and start time: what
   * a record keeps so that a later head can adopt it.
   */
  readonly identity: SupervisorIdentity;
  /** Whether its command has ended (its owner may not have heard yet). */
  readonly settled: boolean;
  /**
   * Stops it: SIGTERM to every process of it, SIGKILL after `graceMs`, and a last kill
   * of whatever is left. Resolves with how its command ended. Safe to repeat.
   */
  stop(graceMs: number): Promise<ExitReason>;
  /**
   * Kills it, as an actor kill does: SIGKILL to every process of it at once with
   * `force_kill`, else a stop of `graceMs`. It then ends `{ kind: "died", killed }`,
   * however its command ended.
   */
  kill(request: KillRequest, graceMs: number): Promise<ExitReason>;
}

/** Runs, stops, kills and re-adopts supervised process groups; one per head. */
export interface Supervisor {
  /**
   * Runs `spec.command` under a new supervisor; `onExit` records its end. Resolves once the
   * supervisor runs (its identity known); rejects if it cannot be launched (the command's
   * own failures show in its exit code and log). The caller's event loop never waits for
   * a process to be spawned.
   */
  run(spec: RunSpec, onExit: ExitHandler): Promise<SupervisedProcess>;
  /**
   * Takes back the supervised process of actor `id` a previous head started, the one
   * `identity` (from its record) names. `onExit` records its end, at once if it ended
   * meanwhile (with its real exit code when it could record it).
   */
  adopt(id: string, identity: SupervisorIdentity, onExit: ExitHandler): Promise<SupervisedProcess>;
  /**
   * Without an identity: takes back a supervisor of actor `id` found running by its actor
   * marker (a spawn the previous head could not record); undefined when there is none.
   */
  adopt(id: string, identity: null, onExit: ExitHandler): Promise<SupervisedProcess | undefined>;
  /** The live process of actor `id` this head spawned or adopted, if any. */
  get(id: string): SupervisedProcess | undefined;
  /** How many processes this head spawned or adopted whose end is not released yet. */
  readonly liveCount: number;
}
