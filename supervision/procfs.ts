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
 * Pids of live processes that carry variable `name`, grouped by its value: one pass
 * over /proc answers for every actor at once.
 */
export async function groupProcessesByEnv(name: string): Promise<Map<string, number[]>> {
  const prefix = new TextEncoder().encode(`${name}=`);
  const decoder = new TextDecoder();
  const groups = new Map<string, number[]>();
  for await (const entry of Deno.readDir("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    let environ: Uint8Array;
    try {
      environ = await Deno.readFile(`/proc/${pid}/environ`);
    } catch {
      continue; // exited meanwhile, or a kernel thread
    }
    const at = entryStart(environ, prefix);
    if (at < 0) continue;
    let end = environ.indexOf(0, at);
    if (end < 0) end = environ.length;
    const value = decoder.decode(environ.subarray(at + prefix.length, end));
    const pids = groups.get(value);
    if (pids) pids.push(pid);
    else groups.set(value, [pid]);
  }
  return groups;
}

/** Where the entry starting with `prefix` begins in a NUL-separated environ block, or -1. */
function entryStart(environ: Uint8Array, prefix: Uint8Array): number {
  for (let start = 0; start < environ.length;) {
    if (startsWithAt(environ, prefix, start)) return start;
    const end = environ.indexOf(0, start);
    if (end < 0) return -1;
    start = end + 1;
  }
  return -1;
}

function startsWithAt(haystack: Uint8Array, prefix: Uint8Array, at: number): boolean {
  for (let i = 0; i < prefix.length; i++) {
    if (haystack[at + i] !== prefix[i]) return false;
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
