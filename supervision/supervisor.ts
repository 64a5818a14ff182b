/**
 * Supervised processes (actors): a shell command run under a small `sh` supervisor in
 * its own session and process group, its output appended straight to a log file, its
 * exit recorded in a file the head reads, and the whole group fate-shared with the
 * supervisor through a watchdog. The head may die and come back: the processes do not
 * notice, and `adopt()` picks them up again.
 */
import { createLogger, type Logger } from "../kit/log.ts";
import { setTimeout as delay } from "node:timers/promises";
import { join } from "node:path";
import { CgroupTree, parentCgroupName } from "./cgroup.ts";
import { groupProcessesByEnv, isSameLiveProcess, readStat, sendSignal } from "./procfs.ts";

/**
 * The supervisor, run by `sh` as the leader of a new session. $1 exit file, $2 fifo,
 * $3 log file, $4 the command, $5 the actor's cgroup ("" for none), $6 "1" when `env`
 * can reset signal dispositions.
 *
 * It joins its cgroup first, before it forks anything, so every process of the actor
 * starts inside it (the head writing the pid after the spawn would race with the forks).
 *
 * The command runs in a plain `sh -c` of its own ($$ is that shell's pid, as API.md
 * says), with none of the supervisor's traps, in the background so that `jobs -l` can
 * tell `exit 137` ("Done(137)") from a death by SIGKILL ("Killed"); where the shell has
 * forgotten the job once waited for (bash), the 128 + N rule is left. A background command
 * starts with SIGINT and SIGQUIT ignored, which its shell could not undo: `env` resets
 * them where it can.
 *
 * The watchdog is a subshell blocked reading a fifo whose only writer is the
 * supervisor (fd 9, closed for the command). The supervisor writes one line once the
 * exit file is complete; a read that ends without it means the supervisor died, which
 * the watchdog notes in the exit file. Either way, once the supervisor is gone, it kills
 * the whole group, which also cleans up stragglers after a normal exit. The supervisor
 * exits with the command's status too, which tells its parent the outcome when a full
 * disk kept the exit file empty. The supervisor traps TERM so that a
 * stop (TERM to the group) still lets it record the command's status: `wait` returns
 * early on a trapped signal (with a status above 128), and is called again until the
 * command has ended; for a command already waited for, dash answers its status again.
 */
const SUPERVISOR_SCRIPT = `
exec >>"$3" 2>&1 </dev/null
if [ -n "$5" ] && ! echo $$ 2>/dev/null >"$5/cgroup.procs"; then
  echo "jobhead: cannot join the cgroup $5"; exit 125
fi
[ -p "$2" ] || mkfifo "$2" || { echo "jobhead: cannot create the supervisor fifo $2"; exit 125; }
(
  trap '' TERM INT HUP
  exec 8<"$2"
  read _ <&8 || { [ -s "$1" ] || echo died >"$1"; }
  read _ <&8
  kill -KILL 0
) &
exec 9>"$2"
trap 'woke=1' TERM INT HUP
if [ "$6" = 1 ]; then
  env --default-signal=INT,QUIT sh -c "$4" 9>&- &
else
  sh -c "$4" 9>&- &
fi
pid=$!
while woke=; wait $pid; status=$?; [ -n "$woke" ] && [ "$status" -gt 128 ]; do :; done
jobs -l >"$2.code"
how=
while read -r line; do
  case $line in
    *" $pid Done"* | *" $pid Exit"*) how=exit ;;
    *" $pid "*) how=signal ;;
  esac
done <"$2.code"
if [ "$how" = signal ] || { [ -z "$how" ] && [ "$status" -gt 128 ]; }; then
  echo "signal $((status - 128))" >"$1"
else
  echo "exit $status" >"$1"
fi
echo >&9
exit "$status"
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
  /** Added to the head's environment (less the variables withheld from actors). */
  env?: Record<string, string>;
}

/** How a Supervisor is set up. */
export interface SupervisorOptions {
  /** Variables of the head's environment that actors must not inherit (its configuration). */
  withheldEnv?: readonly string[];
  /** "auto": put each actor in a cgroup of its own where cgroup v2 is writable; "off": never. */
  cgroup?: "auto" | "off";
  /** Where faults of signalling and watching are told; `[supervisor]` lines by default. */
  logger?: Logger;
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
  /** The actor's cgroup, when it runs in one: stops and kills go through it. */
  readonly cgroup?: string;
  /** Settles once, with how the command ended. */
  readonly exited: Promise<ExitReason>;
  #resolve!: (reason: ExitReason) => void;
  #settled = false;
  #killed?: KillRequest;
  /** Set by `Supervisor.release()`, which it makes safe to repeat. */
  released?: Promise<void>;
  /** For a supervisor this head spawned: settles once it has exited and been reaped. */
  reaped?: Promise<unknown>;

  constructor(id: string, identity: SupervisorIdentity, cgroup?: string) {
    this.id = id;
    this.pid = identity.pid;
    this.startTicks = identity.startTicks;
    this.cgroup = cgroup;
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
  #options: SupervisorOptions;
  #baseEnv: Record<string, string> = {};
  #cgroups?: CgroupTree;
  #programs = new Map<string, string>();
  #log: Logger;
  #resetsSignals = false;
  #live = new Map<string, SupervisedProcess>();
  #abort = new AbortController();
  #watcher?: Deno.FsWatcher;
  #scan?: Promise<Map<string, number[]>>;
  #nextScan?: Promise<Map<string, number[]>>;

  /** `runDir` holds each actor's exit file and fifo until `release()`. */
  constructor(runDir: string, options: SupervisorOptions = {}) {
    this.#runDir = runDir;
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
   * Starts watching exit files and finds out what the system offers (a writable cgroup
   * v2 hierarchy, `env --default-signal`); call once before spawning or adopting.
   */
  async start(): Promise<void> {
    await Deno.mkdir(join(this.#runDir, FIFO_DIR), { recursive: true });
    this.#baseEnv = withoutKeys(Deno.env.toObject(), this.#options.withheldEnv ?? []);
    if (this.#options.cgroup !== "off") {
      this.#cgroups = await CgroupTree.probe(
        await parentCgroupName(await Deno.realPath(this.#runDir)),
      );
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
    this.#watchExitFiles(Deno.watchFs(this.#runDir, { recursive: false }));
    this.#safetyCheck();
  }

  /**
   * Stops watching; supervised processes keep running. Removes the parent cgroup when no
   * actor's cgroup is left in it. Safe to call twice.
   */
  async close(): Promise<void> {
    this.#abort.abort();
    closeWatcher(this.#watcher);
    await this.#cgroups?.close();
  }

  /** A program's path on the head's PATH, looked up once; throws while it is missing. */
  #program(name: string): string {
    let path = this.#programs.get(name);
    if (!path) this.#programs.set(name, path = findProgram(name, this.#baseEnv.PATH));
    return path;
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
    // Found on the head's PATH, not the job's: a job's own PATH must not stop it starting.
    const setsid = this.#program("setsid");
    const sh = this.#program("sh");
    const cgroup = this.#cgroups?.create(options.id);
    const child = new Deno.Command(setsid, {
      args: [
        sh,
        "-c",
        SUPERVISOR_SCRIPT,
        "jobhead-supervisor",
        exitPath,
        this.#fifoPath(options.id),
        options.logPath,
        options.command,
        cgroup ?? "",
        this.#resetsSignals ? "1" : "",
      ],
      cwd: options.cwd,
      clearEnv: true,
      env: { ...this.#baseEnv, ...options.env, [ACTOR_ENV]: options.id },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const startTicks = readStat(child.pid)?.startTicks ?? 0;
    const process = new SupervisedProcess(options.id, { pid: child.pid, startTicks }, cgroup);
    this.#live.set(options.id, process);
    // Our own child: its status is the fastest word of its end; the file says how, and
    // where the file could not be written (a full disk), its exit status does.
    process.reaped = child.status.then((status) =>
      this.#settleFromFile(process, { final: true, status })
    );
    return process;
  }

  /**
   * Takes over a supervisor a previous head started. Resolves to a process whose
   * `exited` is already settled if it ended meanwhile (with its real exit code and end
   * time when it could record them).
   */
  async adopt(id: string, identity: SupervisorIdentity): Promise<SupervisedProcess> {
    const cgroup = await this.#cgroups?.find(id);
    if (cgroup) await this.#cgroups!.thaw(cgroup);
    const process = new SupervisedProcess(id, identity, cgroup);
    // Register first, so an exit file written from now on is seen by the watcher.
    this.#live.set(id, process);
    await this.#settleFromFile(process, { final: false });
    if (!process.settled && !isSameLiveProcess(identity.pid, identity.startTicks)) {
      await this.#settleFromFile(process, { final: true });
    }
    return process;
  }

  /**
   * Stops a supervised group: SIGTERM to every process of its cgroup (else to the group
   * and to escaped processes), SIGKILL after `graceMs`, and a last kill of whatever is
   * left. Resolves once the command has ended. Safe to repeat.
   */
  async stop(process: SupervisedProcess, graceMs: number): Promise<ExitReason> {
    const timer = new AbortController();
    if (!process.settled) {
      const terminated = process.cgroup
        ? this.#cgroups!.signal(process.cgroup, "SIGTERM")
        : (sendSignal(-process.pid, "SIGTERM"), this.#signalEscapees(process.id, "SIGTERM"));
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

  /**
   * Forgets a settled process and removes its files and its cgroup, killing what is left
   * in the cgroup first; call after its end is recorded. Safe to repeat: later calls
   * share the first one's work.
   */
  release(process: SupervisedProcess): Promise<void> {
    process.released ??= this.#release(process);
    return process.released;
  }

  async #release(process: SupervisedProcess): Promise<void> {
    if (this.#live.get(process.id) === process) this.#live.delete(process.id);
    await process.reaped; // it is about to exit, if it has not yet: the exit file is written
    // Once the cgroup is empty the watchdog is gone too: it can write no file after ours go.
    if (process.cgroup && !await this.#cgroups!.remove(process.cgroup)) {
      this.#log.error(`the cgroup ${process.cgroup} could not be emptied and removed`);
    }
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
    if (process.cgroup) {
      this.#cgroups!.kill(process.cgroup).catch((err) => {
        this.#log.error(`killing the cgroup ${process.cgroup} failed:`, err);
      });
    }
    // SIGKILL cannot be caught: the group is gone, even when no one is left to record it.
    this.#settleFromFile(process, { final: true });
  }

  /**
   * SIGKILLs every process of actor `id` that outlived its group: all of its cgroup, or
   * else every process still carrying its marker.
   */
  async killEscapees(id: string): Promise<void> {
    const process = this.#live.get(id);
    if (process) await this.#killLeftovers(process);
    else await this.#signalEscapees(id, "SIGKILL");
  }

  async #killLeftovers(process: SupervisedProcess): Promise<void> {
    if (process.cgroup) await this.#cgroups!.kill(process.cgroup);
    else await this.#signalEscapees(process.id, "SIGKILL");
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
    else if (options.final) {
      // Our child died without a word: its watchdog may be about to note that in the exit
      // file, which release() would then leave behind. It dies now, as it was going to kill
      // the group anyway. (With a cgroup, release() waits for the watchdog to be gone.)
      if (status && !process.cgroup) sendSignal(-process.pid, "SIGKILL");
      process.settle({ kind: "died", endTime });
    }
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
