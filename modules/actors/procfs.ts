/** Reading Linux's /proc: process identity, and finding processes by an environment marker. */

/** What /proc/PID/stat tells about a live (or zombie) process. */
export interface ProcessStat {
  pid: number;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** Start time in clock ticks since boot: with the pid, identifies a process for good. */
  startTicks: number;
}

/** Reads /proc/PID/stat; undefined when the process does not exist. */
export function readStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return {
    pid,
    state: fields[0],
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    sid: Number(fields[3]),
    startTicks: Number(fields[19]),
  };
}

/** Whether `pid` is the process that started at `startTicks` and has not yet exited. */
export function isSameLiveProcess(pid: number, startTicks: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.startTicks === startTicks && stat.state !== "Z";
}

/**
 * Pids of live processes whose environment holds `name=value`. Processes leave a
 * process group with `setsid`, but not their environment: this finds them anyway.
 */
export async function findProcessesByEnv(name: string, value: string): Promise<number[]> {
  const needle = new TextEncoder().encode(`${name}=${value}\0`);
  const found: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    let environ: Uint8Array;
    try {
      environ = await Deno.readFile(`/proc/${pid}/environ`);
    } catch {
      continue; // exited meanwhile, or a kernel thread
    }
    if (containsEntry(environ, needle)) found.push(pid);
  }
  return found;
}

/** Whether a NUL-separated environ block holds `needle` as a whole entry. */
function containsEntry(environ: Uint8Array, needle: Uint8Array): boolean {
  let start = 0;
  while (start < environ.length) {
    let end = environ.indexOf(0, start);
    if (end === -1) end = environ.length;
    if (end - start + 1 === needle.length && startsWithAt(environ, needle, start)) return true;
    start = end + 1;
  }
  return false;
}

function startsWithAt(haystack: Uint8Array, needle: Uint8Array, at: number): boolean {
  // The needle ends with NUL; a block's last entry may lack it, so compare up to the name=value.
  for (let i = 0; i < needle.length - 1; i++) {
    if (haystack[at + i] !== needle[i]) return false;
  }
  return true;
}

/** Sends `signal` to a process or, with a negative id, a process group; false if none exists. */
export function sendSignal(pidOrNegativeGroup: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pidOrNegativeGroup, signal);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
