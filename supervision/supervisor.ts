/**
 * Supervised processes (actors): a shell command run under a small `sh` supervisor
 * (supervisor.sh) in its own session and process group, its output appended straight to a
 * log file, its exit recorded in a file the head reads, and the whole group fate-shared
 * with the supervisor through a watchdog. Supervisors are forked by a launcher process
 * (launcher.ts), so that starting one costs the head's event loop a line, not a spawn. The head may die and come back: the processes
 * do not notice, and `adopt()` picks them up again. `ShellSupervisor` implements the
 * contract of kit/supervision.ts, and owns each process's life to its end: see `#follow()`.
 */
import { makeFifo, removeFileIfThere } from "../kit/libc.ts";
import { createLogger, type Logger } from "../kit/log.ts";
import type {
  ExitHandler,
  ExitReason,
  KillRequest,
  RunSpec,
  SupervisedProcess,
  Supervisor,
  SupervisorIdentity,
} from "../kit/supervision.ts";
import { setTimeout as delay } from "node:timers/promises";
import { join } from "node:path";
import { CgroupTree, parentCgroupName } from "./cgroup.ts";
import { ActorLimits } from "./limits.ts";
import { SpareFiles } from "./spare_files.ts";
import { runsAsOneProgram, shellWantsExec } from "./entrypoint.ts";
import { type EndReport, Launcher, LauncherLostError, writeIfChanged } from "./launcher.ts";
import { groupProcessesByEnv, isSameLiveProcess, readStat, sendSignal } from "./procfs.ts";
import SUPERVISOR_SCRIPT from "./supervisor.sh" with { type: "text" };

/** The environment variable every process of an actor carries; stops sweep by it. */
export const ACTOR_ENV = "JOBHEAD_ACTOR_ID";

/**
 * The supervisor script's name in the run directory: `ps` shows each supervisor as
 * `sh <run dir>/jobhead-supervisor <actor id>`.
 */
export const SUPERVISOR_NAME = "jobhead-supervisor";

/** The variables that pass the supervisor what supervisor.sh reads; it unsets them. */
const SCRIPT_ENV = {
  exitFile: "JOBHEAD_SUPERVISOR_EXIT_FILE",
  fifo: "JOBHEAD_SUPERVISOR_FIFO",
  logFile: "JOBHEAD_SUPERVISOR_LOG",
  command: "JOBHEAD_SUPERVISOR_COMMAND",
  execCommand: "JOBHEAD_SUPERVISOR_EXEC",
  cgroups: "JOBHEAD_SUPERVISOR_CGROUPS",
  resetsSignals: "JOBHEAD_SUPERVISOR_RESETS_SIGNALS",
  cwd: "JOBHEAD_SUPERVISOR_CWD",
} as const;

/**
 * The command a supervisor runs, from its environment (/proc/PID/environ: the one it
 * started with); undefined when it has none.
 */
export function supervisedCommandOf(env: Record<string, string>): string | undefined {
  return env[SCRIPT_ENV.command];
}

/**
 * Fifos live apart from the watched exit files: the file watcher must never open a
 * fifo, which blocks until a writer appears.
 */
const FIFO_DIR = "fifo";
/**
 * How long a launch whose launcher was lost waits for the end report of a supervisor that
 * ran to its end meanwhile (it wrote its exit file, then the report, as its last acts).
 */
const END_REPORT_WAIT_MS = 5_000;

/**
 * How often every live process is checked for an end no file event told: a missed event,
 * or a supervisor killed together with its watchdog (a kill of the whole group from outside).
 */
const SAFETY_CHECK_MS = 5_000;

/** How a ShellSupervisor is set up. */
export interface SupervisorOptions {
  /** Variables of the head's environment that actors must not inherit (its configuration). */
  withheldEnv?: readonly string[];
  /**
   * "auto": put each actor in a cgroup of its own where cgroup v2 is writable, and hold it
   * to its limits where a controller is; "off": never.
   */
  cgroup?: "auto" | "off";
  /** Hold actors to their `limits.cpus` where a cgroup cpu controller is writable. */
  enforceCpu?: boolean;
  /** Where faults of signalling and watching are told; `[supervisor]` lines by default. */
  logger?: Logger;
}

/** What a look at an exit file knows besides the file: see ShellSupervisor.#settleFromFile. */
interface SettleOptions {
  final: boolean;
  status?: number;
  /** The exit file's line as the supervisor reported it: the file need not be read. */
  end?: string;
  fileTime?: boolean;
}

/** How a process's owner asks it to end; the supervisor carries it out. */
interface Stopper {
  stop(process: SupervisedGroup, graceMs: number): Promise<ExitReason>;
  kill(process: SupervisedGroup, request: KillRequest, graceMs: number): Promise<ExitReason>;
}

/** A supervised process group, spawned or adopted by this head. */
class SupervisedGroup implements SupervisedProcess {
  readonly id: string;
  readonly identity: SupervisorIdentity;
  /** The actor's cgroup, when it runs in one: stops and kills go through it. */
  readonly cgroup?: string;
  /** The cgroup v1 cgroups that hold it to its limits. */
  readonly limitCgroups: readonly string[];
  /** Settles once, with how the command ended. */
  readonly exited: Promise<ExitReason>;
  /**
   * Launched by this head: its end comes on the launcher's pipe (the supervisor's report,
   * or its watchdog's), so the file events of its exit file need no look.
   */
  reports = false;
  /** Whether it may have been held to a memory limit (unknown for an adopted one: true). */
  memoryLimited = true;
  /** A look at its exit file under way, and the one asked for meanwhile (see #settleFromFile). */
  checking?: Promise<void>;
  nextCheck?: SettleOptions & { done: PromiseWithResolvers<void> };
  #resolve!: (reason: ExitReason) => void;
  #settled = false;
  #killed?: KillRequest;
  #stopper: Stopper;

  constructor(
    id: string,
    identity: SupervisorIdentity,
    stopper: Stopper,
    cgroups: { cgroup?: string; limitCgroups?: readonly string[] },
  ) {
    this.id = id;
    this.identity = identity;
    this.cgroup = cgroups.cgroup;
    this.limitCgroups = cgroups.limitCgroups ?? [];
    this.#stopper = stopper;
    this.exited = new Promise((resolve) => this.#resolve = resolve);
  }

  /** Pid of the supervisor: also the process group and session id. */
  get pid(): number {
    return this.identity.pid;
  }

  get settled(): boolean {
    return this.#settled;
  }

  stop(graceMs: number): Promise<ExitReason> {
    return this.#stopper.stop(this, graceMs);
  }

  kill(request: KillRequest, graceMs: number): Promise<ExitReason> {
    return this.#stopper.kill(this, request, graceMs);
  }

  /**
   * Settles `exited`; later calls are ignored. After `markKilled()`, any end reads as
   * a death: a command that ended on the kill's SIGTERM was still killed.
   */
  settle(reason: ExitReason): void {
    if (this.#settled) return;
    this.#settled = true;
    const killed = this.#killed;
    this.#resolve(killed ? { kind: "died", endTime: reason.endTime, killed } : reason);
  }

  /** Records that the actor is being killed on purpose; ignored once settled. */
  markKilled(request: KillRequest): void {
    if (!this.#settled) this.#killed ??= request;
  }
}

/**
 * Spawns, watches, stops and re-adopts supervised process groups, and sees each through
 * to its end. One instance per head; `start()` before use, `close()` at shutdown
 * (supervised processes keep running).
 */
export class ShellSupervisor implements Supervisor {
  #runDir: string;
  #options: SupervisorOptions;
  #baseEnv: Record<string, string> = {};
  #cgroups?: CgroupTree;
  #limits?: ActorLimits;
  #programs = new Map<string, string>();
  /** Fifos of ended actors, for the next launches. */
  #fifos: SpareFiles;
  /** Whether entrypoints that are one program run as `exec <entrypoint>`: found once. */
  #execsOnePrograms: boolean | undefined;
  #log: Logger;
  #resetsSignals = false;
  #live = new Map<string, SupervisedGroup>();
  #launcher?: Launcher;
  /** Ends reported before the launcher's answer with the pid was read, by pid. */
  #earlyEnds = new Map<number, EndReport | undefined>();
  /** Actors being launched. */
  #launching = new Set<string>();
  /** Pids of supervisors that reported their end while their actor was being launched. */
  #endsWhileLaunching = new Map<string, PromiseWithResolvers<number>>();
  #abort = new AbortController();
  #watcher?: Deno.FsWatcher;
  /** Whether #watchExitFiles runs. */
  #watching = false;
  /** Live processes that do not report their end on the launcher's pipe (adopted ones). */
  #unreported = new Set<SupervisedGroup>();
  #scan?: Promise<Map<string, number[]>>;
  #nextScan?: Promise<Map<string, number[]>>;
  #stopper: Stopper = {
    stop: (process, graceMs) => this.#stop(process, graceMs),
    kill: (process, request, graceMs) => this.#kill(process, request, graceMs),
  };

  /**
   * `runDir` holds the supervisor script, each actor's fifo until it ends, and its exit
   * file until its end is recorded.
   */
  constructor(runDir: string, options: SupervisorOptions = {}) {
    this.#runDir = runDir;
    this.#fifos = new SpareFiles(join(runDir, FIFO_DIR), {
      prefix: ".spare-fifo-",
      make: (path) => makeFifo(path, 0o600),
    });
    this.#options = options;
    this.#log = options.logger ?? createLogger("supervisor");
  }

  /**
   * How stops reach an actor's processes, for the head's start-up line: through cgroups,
   * or through the environment marker only.
   */
  get stopMode(): string {
    return this.#cgroups
      ? `stops use cgroup v2 at ${this.#cgroups.path}`
      : "stops use environment markers only: processes that clear their environment and " +
        "leave the group can escape";
  }

  /**
   * How actors are held to their limits, for the head's start-up lines: memory, and CPUs
   * when enforced; each through a cgroup controller, or admission only.
   */
  get limitModes(): string[] {
    const cpu = this.#options.enforceCpu ?? false;
    if (this.#limits) return this.#limits.describe({ cpu });
    const off = ["memory limits are admission only: --cgroup off"];
    if (cpu) off.push("cpu limits (--enforce-cpu) are admission only: --cgroup off");
    return off;
  }

  /**
   * Writes the supervisor script, starts watching exit files and finds out what the
   * system offers (a writable cgroup v2 hierarchy, `env --default-signal`); call once
   * before spawning or adopting.
   */
  async start(): Promise<void> {
    this.#makeRunDir();
    // An earlier head's spares: this one does not know them.
    this.#fifos.clear();
    this.#baseEnv = withoutKeys(Deno.env.toObject(), this.#options.withheldEnv ?? []);
    if (this.#options.cgroup !== "off") {
      const name = await parentCgroupName(await Deno.realPath(this.#runDir));
      this.#cgroups = await CgroupTree.probe(name);
      this.#limits = await ActorLimits.probe(name, this.#cgroups, {
        cpu: this.#options.enforceCpu ?? false,
      });
    }
    this.#resetsSignals = await (async () => {
      try {
        const out = await new Deno.Command("env", {
          args: ["--default-signal=INT,QUIT", "true"],
          stdout: "null",
          stderr: "null",
        }).output();
        return out.success;
      } catch {
        return false; // no env on the head's PATH: spawns will say what is missing
      }
    })();
    this.#safetyCheck();
  }

  /**
   * Stops watching; supervised processes keep running. Removes the parent cgroup when no
   * actor's cgroup is left in it. Safe to call twice.
   */
  async close(): Promise<void> {
    this.#abort.abort();
    closeWatcher(this.#watcher);
    await this.#launcher?.close();
    await this.#cgroups?.close();
    await this.#limits?.close();
  }

  /**
   * Makes the run directory and its fifo directory, and writes the supervisor script
   * unless it is there. The script is replaced whole (a new file renamed over the old):
   * supervisors still reading the old one keep it.
   */
  #makeRunDir(): void {
    Deno.mkdirSync(join(this.#runDir, FIFO_DIR), { recursive: true });
    writeIfChanged(this.#scriptPath(), SUPERVISOR_SCRIPT);
  }

  /** Whether the head's `sh` is a shell that entrypoints are prefixed `exec` for. */
  #shellWantsExec(): boolean {
    if (this.#execsOnePrograms === undefined) {
      let realPath = "";
      try {
        realPath = Deno.realPathSync(this.#program("sh"));
      } catch {
        // no sh: the launch says what is missing
      }
      this.#execsOnePrograms = shellWantsExec(realPath);
    }
    return this.#execsOnePrograms;
  }

  /** A program's path on the head's PATH, looked up once; throws while it is missing. */
  #program(name: string): string {
    let path = this.#programs.get(name);
    if (!path) this.#programs.set(name, path = findProgram(name, this.#baseEnv.PATH));
    return path;
  }

  async run(spec: RunSpec, onExit: ExitHandler): Promise<SupervisedProcess> {
    // Found on the head's PATH, not the job's: a job's own PATH must not stop it starting.
    for (const name of ["setsid", "sh"]) this.#program(name);
    const exitPath = this.#exitPath(spec.id);
    // A stale exit file from an earlier actor of the same id would end this one at once.
    removeFileIfThere(exitPath);
    // Where libc cannot be loaded, the supervisor script makes it itself.
    if (!this.#fifos.take(this.#fifoPath(spec.id))) {
      // The run directory may have been removed under the running head: make it again.
      this.#makeRunDir();
      makeFifo(this.#fifoPath(spec.id), 0o600);
    }
    const limits = { ...spec.limits, cpus: this.#options.enforceCpu ? spec.limits?.cpus : 0 };
    const cgroup = this.#cgroups?.create(spec.id);
    let limitCgroups: string[] = [];
    let pid: number;
    this.#launching.add(spec.id);
    try {
      limitCgroups = this.#limits?.create(spec.id, limits, cgroup) ?? [];
      pid = await this.#launch(spec, [cgroup ?? [], limitCgroups].flat(), exitPath);
    } catch (err) {
      // Nothing ever ran in them: they are empty. Nor is the fifo anyone's now.
      for (const path of [...limitCgroups, cgroup ?? []].flat()) removeEmptyCgroup(path);
      removeFileIfThere(this.#fifoPath(spec.id));
      throw err;
    } finally {
      this.#launching.delete(spec.id);
      this.#endsWhileLaunching.delete(spec.id);
    }
    const identity = { pid, start_ticks: readStat(pid)?.startTicks ?? 0 };
    const process = new SupervisedGroup(spec.id, identity, this.#stopper, {
      cgroup,
      limitCgroups,
    });
    process.reports = true;
    process.memoryLimited = (limits.memoryBytes ?? 0) > 0;
    this.#live.set(spec.id, process);
    // Its end may have been told before it was registered.
    if (this.#earlyEnds.has(pid)) this.#settleReported(process, this.#earlyEnds.get(pid));
    this.#earlyEnds.delete(pid);
    this.#follow(process, onExit);
    return process;
  }

  /**
   * Has the launcher start the supervisor of `spec`, which joins `cgroups` first; resolves
   * with its pid. Where the launcher died meanwhile, a supervisor it may have forked is
   * looked for by its marker, and if there is none, a new launcher is asked once more.
   */
  async #launch(spec: RunSpec, cgroups: string[], exitPath: string): Promise<number> {
    this.#launcher ??= new Launcher(
      this.#runDir,
      this.#baseEnv,
      () => ({
        setsid: this.#program("setsid"),
        sh: this.#program("sh"),
        env: this.#program("env"),
        script: this.#scriptPath(),
      }),
      (id, pid, report) => this.#ended(id, pid, report),
    );
    const env = {
      ...spec.env,
      [ACTOR_ENV]: spec.id,
      [SCRIPT_ENV.exitFile]: exitPath,
      [SCRIPT_ENV.fifo]: this.#fifoPath(spec.id),
      [SCRIPT_ENV.logFile]: spec.logPath,
      [SCRIPT_ENV.command]: spec.command,
      [SCRIPT_ENV.execCommand]: this.#shellWantsExec() && runsAsOneProgram(spec.command) ? "1" : "",
      [SCRIPT_ENV.cgroups]: cgroups.join("\n"),
      [SCRIPT_ENV.resetsSignals]: this.#resetsSignals ? "1" : "",
      [SCRIPT_ENV.cwd]: spec.cwd ?? "",
    };
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#launcher.launch(spec.id, env);
      } catch (err) {
        if (!(err instanceof LauncherLostError)) throw err;
        const found = await this.#find(spec.id);
        if (found) return found.pid;
        // Gone before the search, its exit file written: it ran, and its end report (its
        // last act, on the launcher's pipe) is on its way. Launched again, it would run
        // twice: without its report it fails instead.
        const ended = await this.#endReportedWhileLost(spec.id, exitPath);
        if (typeof ended === "number") return ended;
        if (ended === "unreported" || attempt === 2) throw err;
      }
    }
  }

  /**
   * A supervisor this head launched reported its end (its last act), or its watchdog that
   * it died without a word (no report).
   */
  #ended(id: string, pid: number, report: EndReport | undefined): void {
    const process = this.#live.get(id);
    if (process?.pid === pid) this.#settleReported(process, report);
    else if (this.#launching.has(id)) {
      this.#earlyEnds.set(pid, report);
      this.#endOfLaunching(id).resolve(pid);
    }
  }

  #endOfLaunching(id: string): PromiseWithResolvers<number> {
    let end = this.#endsWhileLaunching.get(id);
    if (!end) this.#endsWhileLaunching.set(id, end = Promise.withResolvers());
    return end;
  }

  /**
   * The pid of actor `id`'s supervisor that ended while its launcher was lost, once its
   * end report is read; "not run" at once where there is no exit file, "unreported" when
   * no report comes within END_REPORT_WAIT_MS.
   */
  async #endReportedWhileLost(
    id: string,
    exitPath: string,
  ): Promise<number | "not run" | "unreported"> {
    const ran = await Deno.stat(exitPath).then(() => true, () => false);
    if (!ran) return "not run";
    const timer = new AbortController();
    try {
      return await Promise.race([
        this.#endOfLaunching(id).promise,
        delay(END_REPORT_WAIT_MS, "unreported" as const, { signal: timer.signal })
          .catch(() => "unreported" as const),
      ]);
    } finally {
      timer.abort();
    }
  }

  /**
   * Settles a process from its report: the exit file's line it carries (or, where a full
   * disk kept the supervisor from writing the file, its exit status) says how the command
   * ended; without a report, the exit file says it.
   */
  #settleReported(process: SupervisedGroup, report: EndReport | undefined): void {
    this.#settleFromFile(process, { final: true, status: report?.status, end: report?.end });
  }

  adopt(id: string, identity: SupervisorIdentity, onExit: ExitHandler): Promise<SupervisedProcess>;
  adopt(id: string, identity: null, onExit: ExitHandler): Promise<SupervisedProcess | undefined>;
  async adopt(
    id: string,
    identity: SupervisorIdentity | null,
    onExit: ExitHandler,
  ): Promise<SupervisedProcess | undefined> {
    identity ??= await this.#find(id) ?? null;
    if (!identity) return undefined;
    const cgroup = await this.#cgroups?.find(id);
    if (cgroup) await this.#cgroups!.thaw(cgroup);
    const process = new SupervisedGroup(id, identity, this.#stopper, {
      cgroup,
      limitCgroups: this.#limits?.find(id),
    });
    // Register and watch first, so an exit file written from now on is seen.
    this.#live.set(id, process);
    this.#unreported.add(process);
    this.#watchIfNeeded();
    await this.#settleFromFile(process, { final: false, fileTime: true });
    if (!process.settled && !isSameLiveProcess(identity.pid, identity.start_ticks)) {
      await this.#settleFromFile(process, { final: true, fileTime: true });
    }
    this.#follow(process, onExit);
    return process;
  }

  get liveCount(): number {
    return this.#live.size;
  }

  get(id: string): SupervisedProcess | undefined {
    return this.#live.get(id);
  }

  /**
   * The life of a process after its command ends, the one place it is decided: what is
   * left of it is killed (after its supervisor died, the processes that left its group),
   * its cgroup and fifo are released, its owner records the end, and then its exit file
   * goes. The owner hears of the end only after `run()` or `adopt()` has handed it the
   * process (the release waits on the file system first).
   */
  async #follow(process: SupervisedGroup, onExit: ExitHandler): Promise<void> {
    const reason = await process.exited;
    try {
      if (reason.kind === "died") await this.#killLeftovers(process);
      await this.#release(process);
    } catch (err) {
      this.#log.error(`releasing the processes of "${process.id}" failed:`, err);
    }
    let recorded = false;
    try {
      recorded = await onExit(reason, process);
    } catch (err) {
      if (this.#abort.signal.aborted) {
        // The head is shutting down (its store may be closed already): no fault of the job.
        this.#log.info(`the end of "${process.id}" is left to the next head, in its exit file`);
      } else {
        this.#log.error(
          `recording the end of "${process.id}" failed; its exit file is kept for the next head:`,
          err,
        );
      }
    }
    // A new actor of the same id removed the file when it started, and owns it now.
    // Never written where the supervisor died without a word, or removed with the run dir.
    if (recorded && !this.#live.has(process.id)) removeFileIfThere(this.#exitPath(process.id));
  }

  /**
   * Forgets a settled process and releases all of it but its exit file: waits until its
   * supervisor is reaped (the exit file is written by then), empties and removes its
   * cgroup (the watchdog goes with it, so it can write no file after this), and removes
   * its fifo, or keeps it as a spare once its cgroup is emptied (none of its processes is
   * left to open it).
   */
  async #release(process: SupervisedGroup): Promise<void> {
    if (this.#live.get(process.id) === process) this.#live.delete(process.id);
    if (this.#unreported.delete(process) && this.#unreported.size === 0) {
      closeWatcher(this.#watcher);
    }
    await this.#launcher?.reap(process.pid, process.identity.start_ticks);
    // An emptied cgroup proves that none of the actor's processes holds its fifo any more.
    const emptied = process.cgroup !== undefined && await this.#cgroups!.remove(process.cgroup);
    if (process.cgroup && !emptied) {
      this.#log.error(`the cgroup ${process.cgroup} could not be emptied and removed`);
    }
    for (const path of process.limitCgroups) {
      if (!await this.#limits!.remove(path)) {
        this.#log.error(`the cgroup ${path} could not be emptied and removed`);
      }
    }
    const fifo = this.#fifoPath(process.id);
    if (emptied) this.#fifos.give(fifo);
    else removeFileIfThere(fifo);
    // Supervisors an earlier version of the head started wrote a ".code" file.
    if (!process.reports) removeFileIfThere(`${fifo}.code`);
  }

  /**
   * Stops a supervised group: SIGTERM to the group at once, then to every process of its
   * cgroup (else carrying its marker) that left the group, SIGKILL after `graceMs`, and a
   * last kill of whatever is left. Resolves once the command has ended. Safe to repeat.
   */
  async #stop(process: SupervisedGroup, graceMs: number): Promise<ExitReason> {
    const timer = new AbortController();
    if (!process.settled) {
      // One call reaches every process of the group (a fork racing with it is held until
      // the signal is in, so no child is missed), with no wait. The sweep is for those
      // that left the group, and does not signal its members twice; the cgroup is frozen
      // for it (several reads and a wait) only when one of its processes is outside.
      sendSignal(-process.pid, "SIGTERM");
      const outside = (pid: number) => {
        const stat = readStat(pid);
        return stat !== undefined && stat.state !== "Z" && stat.pgid !== process.pid;
      };
      const cgroup = process.cgroup;
      const terminated = !cgroup
        ? this.#signalEscapees(process.id, "SIGTERM", outside)
        : this.#cgroups!.procs(cgroup).some(outside)
        ? this.#cgroups!.signal(cgroup, "SIGTERM", { only: outside })
        : Promise.resolve();
      terminated.catch((err) => {
        this.#log.error(`signalling the processes of "${process.id}" failed:`, err);
      });
      delay(graceMs, undefined, { signal: timer.signal }).then(
        () => this.#killGroup(process),
        () => {}, // cancelled: the command ended in time
      );
    }
    const reason = await process.exited;
    timer.abort();
    await this.#killLeftovers(process);
    return reason;
  }

  /**
   * Kills an actor: SIGKILL to its whole group at once with `force_kill`, else a stop of
   * `graceMs`. It ends a death whatever its command did (see `markKilled()`).
   */
  async #kill(
    process: SupervisedGroup,
    request: KillRequest,
    graceMs: number,
  ): Promise<ExitReason> {
    process.markKilled({ force_kill: request.force_kill, no_restart: request.no_restart });
    if (request.force_kill) this.#killGroup(process);
    else await this.#stop(process, graceMs);
    return process.exited;
  }

  /**
   * Finds a running supervisor of actor `id` by its processes' environment: for a
   * spawn a previous head made but could not record before it died.
   */
  async #find(id: string): Promise<SupervisorIdentity | undefined> {
    for (const pid of (await this.#scanProcesses()).get(id) ?? []) {
      const stat = readStat(pid);
      if (stat && stat.sid === pid) return { pid, start_ticks: stat.startTicks };
    }
    return undefined;
  }

  #scriptPath(): string {
    return join(this.#runDir, SUPERVISOR_NAME);
  }

  #exitPath(id: string): string {
    return join(this.#runDir, `${id}.exit`);
  }

  #fifoPath(id: string): string {
    return join(this.#runDir, FIFO_DIR, `${id}.fifo`);
  }

  #killGroup(process: SupervisedGroup): void {
    sendSignal(-process.pid, "SIGKILL");
    if (process.cgroup) {
      this.#cgroups!.kill(process.cgroup).catch((err) => {
        this.#log.error(`killing the cgroup ${process.cgroup} failed:`, err);
      });
    }
    // SIGKILL cannot be caught: the group is gone, even when no one is left to record it.
    this.#settleFromFile(process, { final: true });
  }

  /**
   * SIGKILLs every process of an actor that outlived its group: all of its cgroup, or
   * else every process still carrying its marker.
   */
  async #killLeftovers(process: SupervisedGroup): Promise<void> {
    if (process.cgroup) await this.#cgroups!.kill(process.cgroup);
    else await this.#signalEscapees(process.id, "SIGKILL");
  }

  async #signalEscapees(
    id: string,
    signal: Deno.Signal,
    only: (pid: number) => boolean = () => true,
  ): Promise<void> {
    for (const pid of (await this.#scanProcesses()).get(id) ?? []) {
      if (only(pid)) sendSignal(pid, signal);
    }
  }

  /**
   * Every live process carrying an actor marker, by actor. Concurrent callers share
   * one pass over /proc (it reads every process's environment): a caller that arrives
   * during a pass waits for the next one, which starts after its request.
   */
  #scanProcesses(): Promise<Map<string, number[]>> {
    this.#nextScan ??= (this.#scan ?? Promise.resolve()).catch(() => {}).then(() => {
      this.#nextScan = undefined;
      this.#scan = groupProcessesByEnv(ACTOR_ENV);
      return this.#scan;
    });
    return this.#nextScan;
  }

  /**
   * Settles `process` from its exit file. Without `final`, a missing or incomplete file
   * means "not yet"; with it (the supervisor is known to be gone), it means it died.
   * With the exit `status` a supervisor this head launched reported: a file that is there
   * but does not say how the command exited means the supervisor ran to its end and could
   * not write it (a full disk), so its own exit status says how. The end time is now, or
   * with `fileTime` (an end a previous head may have missed) the file's.
   *
   * One look at a time per process: the file events of one write come in bursts, and the
   * looks asked for during one are merged into one more after it.
   */
  #settleFromFile(process: SupervisedGroup, options: SettleOptions): Promise<void> {
    if (process.settled) return Promise.resolve();
    if (process.checking) {
      const next = process.nextCheck ??= { final: false, done: Promise.withResolvers() };
      next.final ||= options.final;
      next.status ??= options.status;
      next.fileTime ||= options.fileTime;
      return next.done.promise;
    }
    process.checking = this.#checkExitFile(process, options).finally(() => {
      process.checking = undefined;
      const next = process.nextCheck;
      process.nextCheck = undefined;
      if (next) this.#settleFromFile(process, next).then(next.done.resolve, next.done.reject);
    });
    return process.checking;
  }

  async #checkExitFile(process: SupervisedGroup, options: SettleOptions): Promise<void> {
    if (process.settled) return;
    const path = this.#exitPath(process.id);
    let text = options.end ? `${options.end}\n` : undefined;
    let endTime = Date.now();
    try {
      text ??= await Deno.readTextFile(path);
      if (options.fileTime) endTime = (await Deno.stat(path)).mtime?.getTime() ?? endTime;
    } catch {
      // no file yet
    }
    const reason = parseExitFile(text ?? "", endTime);
    const status = options.status;
    let ended: ExitReason | undefined;
    if (reason?.kind === "exited") ended = reason;
    else if (text !== undefined && status !== undefined) {
      ended = exitReasonOfStatus(status, endTime);
    } else if (reason) ended = reason;
    else if (options.final) {
      // It ended without a word: its watchdog may be about to note that in the exit file,
      // after #follow() has removed it, leaving a stray file behind. It dies now, as it was
      // going to kill the group anyway. (With a cgroup, #release() empties it, watchdog
      // too, before the exit file goes.)
      if (status !== undefined && !process.cgroup) sendSignal(-process.pid, "SIGKILL");
      ended = { kind: "died", endTime };
    }
    if (!ended) return;
    // Counted by its memory cgroup, which is removed only once the process is settled.
    if (process.memoryLimited && await this.#limits?.outOfMemory(process.id, process.cgroup)) {
      ended.outOfMemory = true;
    }
    process.settle(ended);
  }

  /**
   * Watches the run directory while an adopted process lives (one this head launched
   * reports its end on the launcher's pipe); the watcher is made before this returns, so
   * an exit file written from then on is seen.
   */
  #watchIfNeeded(): void {
    if (this.#watching || this.#unreported.size === 0 || this.#abort.signal.aborted) return;
    this.#watching = true;
    let first: Deno.FsWatcher | undefined;
    try {
      first = Deno.watchFs(this.#runDir, { recursive: false });
      // One adopted while the previous watcher was closing had no watcher for a moment.
      this.#lookAtUnreported();
    } catch {
      // the run directory is missing: #watchExitFiles makes it again
    }
    this.#watchExitFiles(first).finally(() => {
      this.#watching = false;
      this.#watchIfNeeded();
    });
  }

  /**
   * Looks once at every adopted process's exit file, as a new watcher starts: one may have
   * been written while none watched (or no head ran): its time is the end's.
   */
  #lookAtUnreported(): void {
    for (const process of this.#unreported) {
      this.#settleFromFile(process, { final: false, fileTime: true });
    }
  }

  /**
   * Settles adopted processes as their exit files appear, until none is left. When the run
   * directory was removed under the head (the safety check closes the watcher then), it
   * is made again, watched anew, and every adopted process checked for an exit file
   * written meanwhile.
   */
  async #watchExitFiles(first: Deno.FsWatcher | undefined): Promise<void> {
    const signal = this.#abort.signal;
    let watcher = first;
    while (!signal.aborted && this.#unreported.size > 0) {
      try {
        if (!watcher) {
          await Deno.mkdir(join(this.#runDir, FIFO_DIR), { recursive: true });
          watcher = Deno.watchFs(this.#runDir, { recursive: false });
          this.#lookAtUnreported();
        }
        this.#watcher = watcher;
        for await (const event of watcher) {
          for (const path of event.paths) {
            if (!path.endsWith(".exit")) continue;
            const id = path.slice(this.#runDir.length + 1, -".exit".length);
            const process = this.#live.get(id);
            if (process && !process.reports) this.#settleFromFile(process, { final: false });
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        this.#log.error(`watching ${this.#runDir} failed, trying again:`, err);
        await delay(SAFETY_CHECK_MS, undefined, { signal }).catch(() => {});
      }
      closeWatcher(watcher);
      watcher = undefined;
    }
  }

  /** A missed file event, or a group killed from outside, must not leave a job running forever. */
  async #safetyCheck(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await delay(SAFETY_CHECK_MS, undefined, { signal });
      } catch {
        return;
      }
      // A removed run directory does not tell its watcher while its fifos are open: the
      // watcher is then replaced (see #watchExitFiles).
      if (!await exists(this.#runDir)) closeWatcher(this.#watcher);
      for (const process of this.#live.values()) {
        if (process.settled) continue;
        const alive = isSameLiveProcess(process.pid, process.identity.start_ticks);
        // One that reports its end needs no look while it runs.
        if (alive && process.reports) continue;
        await this.#settleFromFile(process, { final: !alive });
      }
    }
  }
}

function closeWatcher(watcher: Deno.FsWatcher | undefined): void {
  try {
    watcher?.close();
  } catch {
    // already closed
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** How a command ended, from a shell's status: 128 + N is a death by signal N. */
function exitReasonOfStatus(code: number, endTime: number): ExitReason {
  return { kind: "exited", code: code > 128 ? -(code - 128) : code, endTime };
}

/** Removes a cgroup nothing ever ran in; one that is gone or busy is left to its owner. */
function removeEmptyCgroup(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // gone, or in use
  }
}

/** A copy of `env` without the variables named in `keys`. */
export function withoutKeys(
  env: Record<string, string>,
  keys: readonly string[],
): Record<string, string> {
  const withheld = new Set(keys);
  return Object.fromEntries(Object.entries(env).filter(([key]) => !withheld.has(key)));
}

/** Reads an exit file: "exit N", "signal N" or "died"; undefined while missing or incomplete. */
function parseExitFile(text: string, endTime: number): ExitReason | undefined {
  if (!text.endsWith("\n")) return undefined;
  const line = text.trim();
  if (line === "died") return { kind: "died", endTime };
  const match = /^(exit|signal) (\d+)$/.exec(line);
  if (!match) return undefined;
  const code = match[1] === "signal" ? -Number(match[2]) : Number(match[2]);
  return { kind: "exited", code, endTime };
}

/**
 * The absolute path of program `name` on `path` (a PATH value), as a shell would find it.
 * Throws, naming the program and the PATH, when there is none.
 */
export function findProgram(name: string, path: string | undefined): string {
  for (const dir of (path ?? "").split(":")) {
    if (!dir.startsWith("/")) continue; // relative entries depend on the cwd: skipped
    const candidate = join(dir, name);
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch {
      // not there
    }
  }
  throw new Error(`${name} was not found on the head's PATH (${path ?? ""})`);
}
