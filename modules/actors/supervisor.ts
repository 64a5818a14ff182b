/**
 * Supervised processes (actors): a shell command run under a small `sh` supervisor in
 * its own session and process group, its output appended straight to a log file, its
 * exit recorded in a file the head reads, and the whole group fate-shared with the
 * supervisor through a watchdog. The head may die and come back: the processes do not
 * notice, and `adopt()` picks them up again.
 */
import { setTimeout as delay } from "node:timers/promises";
import { join } from "node:path";
import { groupProcessesByEnv, isSameLiveProcess, readStat, sendSignal } from "./procfs.ts";

/**
 * The supervisor, run by `sh` (dash) as the leader of a new session.
 * $1 exit file, $2 fifo, $3 log file, $4 the command, $5 ENTRYPOINT_SHELL.
 *
 * The watchdog is a subshell blocked reading a fifo whose only writer is the
 * supervisor (fd 9, closed for the command). When the supervisor ends, however it
 * ends, the read returns: the watchdog notes a death the supervisor could not
 * report, then kills the whole group, which also cleans up stragglers after a normal
 * exit. The supervisor traps TERM so that a stop (TERM to the group) still lets it
 * record the command's status; the trap is reset for the command itself. It exits with
 * the command's status too, which tells its parent the outcome when a full disk kept the
 * exit file empty.
 */
const SUPERVISOR_SCRIPT = `
exec >>"$3" 2>&1 </dev/null
[ -p "$2" ] || mkfifo "$2" || { echo "jobhead: cannot create the supervisor fifo $2"; exit 125; }
(
  trap '' TERM INT HUP
  read _ <"$2"
  [ -s "$1" ] || echo died >"$1"
  kill -KILL 0
) &
exec 9>"$2"
trap : TERM INT HUP
sh -c "$5" sh "$2.code" "$4" 9>&-
status=$?
if [ -s "$2.code" ]; then
  read status <"$2.code"
  echo "exit $status" >"$1"
elif [ "$status" -gt 128 ]; then
  echo "signal $((status - 128))" >"$1"
else
  echo "exit $status" >"$1"
fi
exit "$status"
`;

/**
 * The entrypoint's shell, `sh -c` as API.md says ($$ is its own pid). $1 code file,
 * $2 the command. Its EXIT trap writes the status when the command exits by itself,
 * so `exit 137` is told apart from a death by SIGKILL, which runs no trap. Its TERM
 * trap waits for the running command to use its grace (an untrapped shell would die
 * at once and its end would take the group down early), then ends as that signal.
 */
const ENTRYPOINT_SHELL = `
__jobhead_code=$1 __jobhead_command=$2
shift 2
trap 'echo $? >"$__jobhead_code"' EXIT
trap 'trap - EXIT; exit 129' HUP
trap 'trap - EXIT; exit 130' INT
trap 'trap - EXIT; exit 143' TERM
eval "$__jobhead_command"
`;

/** The environment variable every process of an actor carries; stops sweep by it. */
export const ACTOR_ENV = "JOBHEAD_ACTOR_ID";

/**
 * Fifos live apart from the watched exit files: the file watcher must never open a
 * fifo, which blocks until a writer appears.
 */
const FIFO_DIR = "fifo";

/** How often adopted supervisors are checked for a death no watchdog could report. */
const SAFETY_CHECK_MS = 5_000;

/** How a supervised command ended. */
export type ExitReason =
  /** The command exited; `code` is its status, or -N for a death by signal N. */
  | { kind: "exited"; code: number; endTime: number }
  /**
   * The supervisor died (killed, crashed) before the command ended; the group died with
   * it. `killed` is set when the actor was killed on purpose (`Supervisor.kill()`).
   */
  | { kind: "died"; endTime: number; killed?: KillRequest };

/** How an actor was asked to die (API.md, `GET /api/actors/kill`). */
export interface KillRequest {
  /** SIGKILL at once, rather than SIGTERM and SIGKILL after the grace. */
  force: boolean;
  /** For actors with a restart policy: stay dead. */
  noRestart: boolean;
}

/** What to run under a supervisor. */
export interface SpawnOptions {
  /** Actor id: unique among live actors, safe as a file name. */
  id: string;
  /** Shell command, run with `/bin/sh -c`. */
  command: string;
  /** File the command's stdout and stderr are appended to. */
  logPath: string;
  cwd?: string;
  /** Added to the head's environment. */
  env?: Record<string, string>;
}

/** Identity of a supervisor process, stored so a later head can adopt it. */
export interface SupervisorIdentity {
  pid: number;
  startTicks: number;
}

/** A supervised process group, spawned or adopted by this head. */
export class SupervisedProcess {
  /** Actor id. */
  readonly id: string;
  /** Pid of the supervisor: also the process group and session id. */
  readonly pid: number;
  readonly startTicks: number;
  /** Settles once, with how the command ended. */
  readonly exited: Promise<ExitReason>;
  #resolve!: (reason: ExitReason) => void;
  #settled = false;
  #killed?: KillRequest;

  constructor(id: string, identity: SupervisorIdentity) {
    this.id = id;
    this.pid = identity.pid;
    this.startTicks = identity.startTicks;
    this.exited = new Promise((resolve) => this.#resolve = resolve);
  }

  /** Whether `exited` has settled. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Whether `kill()` was asked for, and how. */
  get killed(): KillRequest | undefined {
    return this.#killed;
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
 * Spawns, watches, stops and re-adopts supervised process groups. One instance per
 * head; `start()` before use, `close()` at shutdown (supervised processes keep running).
 */
export class Supervisor {
  #runDir: string;
  #live = new Map<string, SupervisedProcess>();
  #abort = new AbortController();
  #watcher?: Deno.FsWatcher;
  #scan?: Promise<Map<string, number[]>>;
  #nextScan?: Promise<Map<string, number[]>>;

  /** `runDir` holds each actor's exit file and fifo until `release()`. */
  constructor(runDir: string) {
    this.#runDir = runDir;
  }

  /** Starts watching exit files; call once before spawning or adopting. */
  async start(): Promise<void> {
    await Deno.mkdir(join(this.#runDir, FIFO_DIR), { recursive: true });
    this.#watchExitFiles(Deno.watchFs(this.#runDir, { recursive: false }));
    this.#safetyCheck();
  }

  /** Stops watching; supervised processes keep running. Safe to call twice. */
  close(): void {
    this.#abort.abort();
    closeWatcher(this.#watcher);
  }

  /**
   * Runs `options.command` under a new supervisor. Throws if the supervisor cannot be
   * launched (the command's own failures show in its exit code and log).
   */
  spawn(options: SpawnOptions): SupervisedProcess {
    const exitPath = this.#exitPath(options.id);
    // A stale exit file from an earlier actor of the same id would end this one at once.
    try {
      Deno.removeSync(exitPath);
    } catch {
      // none
    }
    if (!makeFifo(this.#fifoPath(options.id))) {
      // The run directory may have been removed under the running head: make it again.
      Deno.mkdirSync(join(this.#runDir, FIFO_DIR), { recursive: true });
      makeFifo(this.#fifoPath(options.id));
    }
    const child = new Deno.Command("setsid", {
      args: [
        "sh",
        "-c",
        SUPERVISOR_SCRIPT,
        "jobhead-supervisor",
        exitPath,
        this.#fifoPath(options.id),
        options.logPath,
        options.command,
        ENTRYPOINT_SHELL,
      ],
      cwd: options.cwd,
      env: { ...options.env, [ACTOR_ENV]: options.id },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const startTicks = readStat(child.pid)?.startTicks ?? 0;
    const process = new SupervisedProcess(options.id, { pid: child.pid, startTicks });
    this.#live.set(options.id, process);
    // Our own child: its status is the fastest word of its end; the file says how, and
    // where the file could not be written (a full disk), its exit status does.
    child.status.then((status) => this.#settleFromFile(process, { final: true, status }));
    return process;
  }

  /**
   * Takes over a supervisor a previous head started. Resolves to a process whose
   * `exited` is already settled if it ended meanwhile (with its real exit code and end
   * time when it could record them).
   */
  async adopt(id: string, identity: SupervisorIdentity): Promise<SupervisedProcess> {
    const process = new SupervisedProcess(id, identity);
    // Register first, so an exit file written from now on is seen by the watcher.
    this.#live.set(id, process);
    await this.#settleFromFile(process, { final: false });
    if (!process.settled && !isSameLiveProcess(identity.pid, identity.startTicks)) {
      await this.#settleFromFile(process, { final: true });
    }
    return process;
  }

  /**
   * Stops a supervised group: SIGTERM to the group (and to escaped processes), SIGKILL
   * after `graceMs`, and a last sweep for escapees. Resolves once the command has
   * ended. Safe to repeat.
   */
  async stop(process: SupervisedProcess, graceMs: number): Promise<ExitReason> {
    const timer = new AbortController();
    if (!process.settled) {
      sendSignal(-process.pid, "SIGTERM");
      this.#signalEscapees(process.id, "SIGTERM").catch((err) => {
        console.error(`jobhead: sweeping the processes of "${process.id}" failed:`, err);
      });
      delay(graceMs, undefined, { signal: timer.signal }).then(
        () => this.#killGroup(process),
        () => {}, // cancelled: the command ended in time
      );
    }
    const reason = await process.exited;
    timer.abort();
    await this.#signalEscapees(process.id, "SIGKILL");
    return reason;
  }

  /**
   * Kills the supervisor itself, as an actor kill does: at once with `force`, else with
   * SIGTERM to the group and SIGKILL after `graceMs`. The watchdog takes the group down.
   * The process then ends `{ kind: "died", killed }`, however its command ended.
   */
  async kill(
    process: SupervisedProcess,
    options: { force: boolean; graceMs: number; noRestart?: boolean },
  ): Promise<ExitReason> {
    process.markKilled({ force: options.force, noRestart: options.noRestart ?? false });
    if (options.force) this.#killGroup(process);
    else await this.stop(process, options.graceMs);
    return process.exited;
  }

  /** How many processes this head spawned or adopted and has not released yet. */
  get liveCount(): number {
    return this.#live.size;
  }

  /** The live process of actor `id` this head spawned or adopted, if any. */
  get(id: string): SupervisedProcess | undefined {
    return this.#live.get(id);
  }

  /**
   * Finds a running supervisor of actor `id` by its processes' environment: for a
   * spawn a previous head made but could not record before it died.
   */
  async find(id: string): Promise<SupervisorIdentity | undefined> {
    for (const pid of (await this.#scanProcesses()).get(id) ?? []) {
      const stat = readStat(pid);
      if (stat && stat.sid === pid) return { pid, startTicks: stat.startTicks };
    }
    return undefined;
  }

  /** Forgets a settled process and removes its files; call after its end is recorded. */
  async release(process: SupervisedProcess): Promise<void> {
    if (this.#live.get(process.id) === process) this.#live.delete(process.id);
    const fifo = this.#fifoPath(process.id);
    for (const path of [this.#exitPath(process.id), fifo, `${fifo}.code`]) {
      await Deno.remove(path).catch(() => {});
    }
  }

  #exitPath(id: string): string {
    return join(this.#runDir, `${id}.exit`);
  }

  #fifoPath(id: string): string {
    return join(this.#runDir, FIFO_DIR, `${id}.fifo`);
  }

  #killGroup(process: SupervisedProcess): void {
    sendSignal(-process.pid, "SIGKILL");
    // SIGKILL cannot be caught: the group is gone, even when no one is left to record it.
    this.#settleFromFile(process, { final: true });
  }

  /** SIGKILLs every process still carrying the actor's marker (those that left its group). */
  killEscapees(id: string): Promise<void> {
    return this.#signalEscapees(id, "SIGKILL");
  }

  async #signalEscapees(id: string, signal: Deno.Signal): Promise<void> {
    for (const pid of (await this.#scanProcesses()).get(id) ?? []) sendSignal(pid, signal);
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
   * With the `status` of a supervisor this head spawned: a file that is there but does
   * not say how the command exited means the supervisor ran to its end and could not
   * write it (a full disk), so its own exit status says how.
   */
  async #settleFromFile(
    process: SupervisedProcess,
    options: { final: boolean; status?: Deno.CommandStatus },
  ) {
    if (process.settled) return;
    const path = this.#exitPath(process.id);
    let text: string | undefined;
    let endTime = Date.now();
    try {
      text = await Deno.readTextFile(path);
      endTime = (await Deno.stat(path)).mtime?.getTime() ?? endTime;
    } catch {
      // no file yet
    }
    const reason = parseExitFile(text ?? "", endTime);
    const status = options.status;
    if (reason?.kind === "exited") process.settle(reason);
    else if (text !== undefined && status && status.signal === null) {
      process.settle(exitReasonOfStatus(status.code, endTime));
    } else if (reason) process.settle(reason);
    else if (options.final) process.settle({ kind: "died", endTime });
  }

  /**
   * Settles live processes as their exit files appear. When the run directory was
   * removed under the head (the safety check closes the watcher then), it is made
   * again, watched anew, and every live process checked for an exit file written meanwhile.
   */
  async #watchExitFiles(first: Deno.FsWatcher): Promise<void> {
    const signal = this.#abort.signal;
    let watcher: Deno.FsWatcher | undefined = first;
    while (!signal.aborted) {
      try {
        if (!watcher) {
          await Deno.mkdir(join(this.#runDir, FIFO_DIR), { recursive: true });
          watcher = Deno.watchFs(this.#runDir, { recursive: false });
          for (const process of this.#live.values()) {
            this.#settleFromFile(process, { final: false });
          }
        }
        this.#watcher = watcher;
        for await (const event of watcher) {
          for (const path of event.paths) {
            if (!path.endsWith(".exit")) continue;
            const id = path.slice(this.#runDir.length + 1, -".exit".length);
            const process = this.#live.get(id);
            if (process) this.#settleFromFile(process, { final: false });
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        console.error(`jobhead: watching ${this.#runDir} failed, trying again:`, err);
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
        const alive = isSameLiveProcess(process.pid, process.startTicks);
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

let libc: { symbols: { mkfifo(path: BufferSource, mode: number): number } } | null | undefined;

/**
 * Creates the supervisor's fifo through libc, which saves each job a `mkfifo` process;
 * false if it did not. Where libc cannot be loaded, the supervisor script makes it itself.
 */
function makeFifo(path: string): boolean {
  if (libc === undefined) {
    try {
      libc = Deno.dlopen(
        "libc.so.6",
        {
          mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
        } as const,
      );
    } catch {
      libc = null;
    }
  }
  return libc?.symbols.mkfifo(new TextEncoder().encode(path + "\0"), 0o600) === 0;
}
