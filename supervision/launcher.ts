/**
 * The launcher: a long-lived `sh` (launcher.sh), in a session of its own, that forks
 * supervisors on request. Launching a supervisor costs the head one line written to a pipe
 * instead of a process spawned on its event loop; the launcher answers with the pid, and
 * each supervisor reports its own end on the same pipe (a write no full disk can refuse),
 * as its watchdog reports a supervisor that died without a word.
 * A launcher that dies is replaced at the next launch; supervisors it started keep running
 * and keep reporting on its pipe, which is read until they have all closed it.
 */
import { setTimeout as delay } from "node:timers/promises";
import { join } from "node:path";
import { readStat, sendSignal } from "./procfs.ts";
import LAUNCHER_SCRIPT from "./launcher.sh" with { type: "text" };

/** The launcher script's name in the run directory. */
export const LAUNCHER_NAME = "jobhead-launcher";

/** What the launcher runs, by absolute path (found on the head's PATH). */
export interface LauncherPrograms {
  setsid: string;
  sh: string;
  env: string;
  /** The supervisor script. */
  script: string;
}

/**
 * A supervisor's last word: its exit status, and the line it wrote to its exit file ("" when
 * the command never ran).
 */
export interface EndReport {
  status: number;
  end: string;
}

/** Thrown by `launch()` when the launcher ended before it said it had forked. */
export class LauncherLostError extends Error {
  constructor(id: string) {
    super(`the launcher ended before it started the supervisor of "${id}"`);
  }
}

/** A supervisor's end report: settles, and is marked said, once heard. */
type Report = PromiseWithResolvers<void> & { said: boolean };

/** One launcher process and what is waiting on it. */
interface Generation {
  child: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Launches written to it and not answered yet, by actor id. */
  pending: Map<string, PromiseWithResolvers<number>>;
  /** Reaps asked of it and not answered yet, in order. */
  reaps: PromiseWithResolvers<void>[];
  alive: boolean;
  /** Settles once its stdout is closed (by it and every supervisor it started) or cancelled. */
  reading: Promise<void>;
  reader: ReadableStreamDefaultReader<Uint8Array>;
}

const encoder = new TextEncoder();

/** A name the shell can hold as a variable. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** How often a supervisor whose end is known without its report is checked for its exit. */
const REAP_POLL_MS = 10;

/** Starts supervisors through a launcher process; see the module comment. */
export class Launcher {
  #dir: string;
  #env: Record<string, string>;
  #programs: () => LauncherPrograms;
  #onEnded: (id: string, pid: number, report: EndReport | undefined) => void;
  #current?: Generation;
  #generations = new Set<Generation>();
  /** The launcher of each supervisor not reaped yet, by pid. */
  #parents = new Map<number, Generation>();
  /** Each supervisor's end report (its last act), awaited or heard, until reaped, by pid. */
  #reported = new Map<number, Report>();
  #closed = false;

  /**
   * `dir` receives the launcher script; the launcher and every supervisor start with
   * environment `env` (plus each launch's own); `programs` is asked at each (re)start;
   * `onEnded` hears each supervisor's "ended" report (its pid, exit status and exit file
   * line), and each watchdog's "died" (the supervisor's pid; no report).
   */
  constructor(
    dir: string,
    env: Record<string, string>,
    programs: () => LauncherPrograms,
    onEnded: (id: string, pid: number, report: EndReport | undefined) => void,
  ) {
    this.#dir = dir;
    this.#env = env;
    this.#programs = programs;
    this.#onEnded = onEnded;
  }

  /**
   * Asks the launcher to start the supervisor of actor `id` with `env` added to the base
   * environment; resolves with its pid once forked. Rejects with LauncherLostError when
   * the launcher ended first (the supervisor may or may not have been forked).
   */
  launch(id: string, env: Record<string, string>): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("the supervisor is closed"));
    // A launcher that died but was not reaped yet takes the request, which fails once it
    // is: the caller tries again (see LauncherLostError).
    const generation = this.#current ??= this.#start();
    const answer = Promise.withResolvers<number>();
    generation.pending.set(id, answer);
    generation.writer.write(encoder.encode(launchRequest(id, env)))
      .catch(() => this.#lost(generation));
    return answer.promise.then((pid) => {
      this.#parents.set(pid, generation);
      return pid;
    });
  }

  /**
   * Resolves once supervisor `pid` (started at `startTicks`), which has ended or is about
   * to, has been reaped by its launcher, so that no zombie of it is left; at once for a
   * supervisor of a launcher that has ended (the init process reaps it).
   */
  async reap(pid: number, startTicks: number): Promise<void> {
    const generation = this.#parents.get(pid);
    const reported = this.#reportOf(pid);
    try {
      // The launcher's `wait` blocks it until the supervisor exits: it is asked only once
      // the supervisor has said its last word (it is then the launcher's unreaped child,
      // whose pid no other process can have), or is a zombie.
      for (;;) {
        if (!generation?.alive) return;
        if (reported.said) break;
        const stat = readStat(pid);
        if (!stat || stat.startTicks !== startTicks) return;
        if (stat.state === "Z") break;
        // Its end is known otherwise (its exit file, a kill): polled, slowly, until it has
        // exited, as nothing else tells it.
        const timer = new AbortController();
        await Promise.race([
          reported.promise,
          delay(REAP_POLL_MS, undefined, { signal: timer.signal }).catch(() => {}),
        ]);
        timer.abort();
      }
      const answer = Promise.withResolvers<void>();
      generation.reaps.push(answer);
      generation.writer.write(encoder.encode(`{ jobhead_reap ${pid}; }\n`)).catch(() =>
        this.#lost(generation)
      );
      await answer.promise;
    } finally {
      this.#parents.delete(pid);
      this.#reported.delete(pid);
    }
  }

  #reportOf(pid: number): Report {
    let reported = this.#reported.get(pid);
    if (!reported) {
      this.#reported.set(pid, reported = { ...Promise.withResolvers<void>(), said: false });
    }
    return reported;
  }

  /** Ends the launcher (supervisors keep running) and stops reading every pipe. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const generation of this.#generations) {
      await generation.writer.close().catch(() => {});
      await generation.child.status;
      await generation.reader.cancel().catch(() => {});
      await generation.reading;
    }
  }

  #start(): Generation {
    const programs = this.#programs();
    const script = join(this.#dir, LAUNCHER_NAME);
    writeIfChanged(script, LAUNCHER_SCRIPT);
    const child = new Deno.Command(programs.setsid, {
      args: [programs.sh, script, programs.setsid, programs.sh, programs.env, programs.script],
      clearEnv: true,
      env: this.#env,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    const generation: Generation = {
      child,
      writer: child.stdin.getWriter(),
      pending: new Map(),
      reaps: [],
      alive: true,
      reader,
      reading: Promise.resolve(),
    };
    generation.reading = this.#read(generation);
    this.#generations.add(generation);
    child.status.then(() => this.#lost(generation));
    return generation;
  }

  /**
   * The launcher of `generation` ended: the next launch starts a new one, and its pending
   * launches fail once none of its forks is left in its process group. A supervisor forked
   * just before the launcher ended stays in that group until it has made its own session,
   * and only then can the caller find it by its marker (else it would launch it again).
   */
  #lost(generation: Generation): void {
    if (generation.alive) generation.writer.close().catch(() => {});
    generation.alive = false;
    if (this.#current === generation) this.#current = undefined;
    for (const answer of generation.reaps.splice(0)) answer.resolve();
    if (generation.pending.size === 0) return;
    whenGroupEmpty(generation.child.pid).then(() => {
      for (const [id, answer] of generation.pending) answer.reject(new LauncherLostError(id));
      generation.pending.clear();
    });
  }

  /** Reads a launcher's pipe: its answers, and its supervisors' end reports. */
  async #read(generation: Generation): Promise<void> {
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for (;;) {
        const { value, done } = await generation.reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) {
          const [what, id, pid, status, ...end] = line.split(" ");
          if (what === "started") {
            generation.pending.get(id)?.resolve(Number(pid));
            generation.pending.delete(id);
          } else if (what === "ended") {
            if (this.#parents.has(Number(pid))) {
              const report = this.#reportOf(Number(pid));
              report.said = true;
              report.resolve();
            }
            this.#onEnded(id, Number(pid), { status: Number(status), end: end.join(" ") });
          } else if (what === "died") {
            this.#onEnded(id, Number(pid), undefined);
          } else if (what === "reaped") {
            generation.reaps.shift()?.resolve();
          }
        }
      }
    } catch {
      // cancelled by close()
    }
    this.#generations.delete(generation);
  }
}

/** How long a dead launcher's forks may take to leave its process group. */
const GROUP_EMPTY_LIMIT_MS = 2_000;

/**
 * Resolves once process group `pgid` has no process left (a probe that SIGCONT leaves
 * alone: the group holds only forks of the launcher on their way to a session of their
 * own), or after GROUP_EMPTY_LIMIT_MS. Polled: nothing tells when a process leaves a group.
 */
async function whenGroupEmpty(pgid: number): Promise<void> {
  const deadline = Date.now() + GROUP_EMPTY_LIMIT_MS;
  const inGroup = () => {
    try {
      return sendSignal(-pgid, "SIGCONT");
    } catch {
      return false; // not ours to signal: no fork of the launcher is left in it
    }
  };
  while (inGroup() && Date.now() < deadline) await delay(2);
}

/**
 * The line that asks the launcher to start the supervisor of actor `id` with `env` (see
 * launcher.sh): in braces, so that a line cut short is never run.
 */
export function launchRequest(id: string, env: Record<string, string>): string {
  // The launcher's own variables are named jobhead_*: an actor's of that name goes through
  // `env`, not to overwrite them.
  const exportable = (name: string) => SHELL_NAME.test(name) && !name.startsWith("jobhead_");
  const mode = Object.keys(env).every(exportable) ? "export" : "env";
  const words = [id, mode, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
  return `{ jobhead_launch ${words.map(shellWord).join(" ")}; }\n`;
}

/** `text` as one single-quoted shell word on one line (see launcher.sh). */
function shellWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`).replaceAll("\n", `'"$jobhead_nl"'`)}'`;
}

/**
 * Writes `text` to `path` unless it holds it already, replacing the file whole (a new
 * file renamed over the old): a shell still reading the old one keeps it.
 */
export function writeIfChanged(path: string, text: string): void {
  try {
    if (Deno.readTextFileSync(path) === text) return;
  } catch {
    // not there yet
  }
  const temporary = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(temporary, text);
  Deno.renameSync(temporary, path);
}
