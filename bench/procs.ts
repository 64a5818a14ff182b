/**
 * Reading Linux `/proc` for the benchmark: which processes belong to a job, how much memory
 * they use, and whether they are gone. Linux only; the benchmark runs as the jobs' user.
 * @module
 */

/** One process as `/proc/<pid>/stat` describes it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Single-letter state: R, S, D, Z, … */
  state: string;
  comm: string;
}

/** A process of a job, with the submission id found in its environment (if any). */
export interface JobProc extends ProcInfo {
  submissionId: string | undefined;
}

/** Memory of one process in kB: `VmRSS` from `status`, `Pss` from `smaps_rollup`. */
export interface ProcMemory {
  rssKb: number;
  pssKb: number;
}

const decoder = new TextDecoder();

/** Parses `/proc/<pid>/stat`; undefined when the process is gone. */
export function readProcInfo(pid: number): ProcInfo | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // comm is in parentheses and may itself contain spaces or parentheses.
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" ");
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: fields[0],
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    sid: Number(fields[3]),
  };
}

/** True while the process exists and is not a zombie (a zombie has already died). */
export function isAlive(pid: number): boolean {
  const info = readProcInfo(pid);
  return info !== undefined && info.state !== "Z";
}

/** The numeric entries of `/proc`. */
export function listPids(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  return pids;
}

/** Every live process, as `/proc/<pid>/stat` describes it. */
export function listProcs(): ProcInfo[] {
  const procs: ProcInfo[] = [];
  for (const pid of listPids()) {
    const info = readProcInfo(pid);
    if (info) procs.push(info);
  }
  return procs;
}

/** The environment of a process as a map; empty when it cannot be read. */
export function readEnviron(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(`/proc/${pid}/environ`);
  } catch {
    return env;
  }
  for (const pair of decoder.decode(bytes).split("\0")) {
    const eq = pair.indexOf("=");
    if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return env;
}

/**
 * Every live process of a benchmark run's jobs: those whose environment has
 * `JOBHEAD_TEST_RUN=<runId>` and a `JOBHEAD_SUBMISSION_ID`, plus every other member of their
 * process groups and sessions (a job's helper need not carry the variables). Processes in
 * `exclude` (the head) are never returned.
 */
export function findJobProcs(runId: string, exclude: Set<number> = new Set()): JobProc[] {
  const procs = listProcs().filter((p) => !exclude.has(p.pid) && p.state !== "Z");
  const shared = protectedGroups(exclude);
  const found = new Map<number, JobProc>();
  const groupIds = new Map<number, string>();
  for (const p of procs) {
    const env = readEnviron(p.pid);
    const id = env.get("JOBHEAD_SUBMISSION_ID");
    if (id === undefined || env.get("JOBHEAD_TEST_RUN") !== runId) continue;
    found.set(p.pid, { ...p, submissionId: id });
    // A job process left in the head's (or the benchmark's) group or session must not pull
    // that whole group in.
    if (!shared.has(p.pgid)) groupIds.set(p.pgid, id);
    if (!shared.has(p.sid)) groupIds.set(p.sid, id);
  }
  for (const p of procs) {
    if (found.has(p.pid)) continue;
    const id = groupIds.get(p.pgid) ?? groupIds.get(p.sid);
    if (id !== undefined) found.set(p.pid, { ...p, submissionId: id });
  }
  return [...found.values()];
}

/** Every live descendant of `pid` (not `pid` itself). */
export function descendantsOf(pid: number, procs: ProcInfo[] = listProcs()): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const out: ProcInfo[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      out.push(child);
      stack.push(child.pid);
    }
  }
  return out;
}

/** The command line of a process, arguments joined by spaces; empty when it is gone. */
export function readCmdline(pid: number): string {
  try {
    return decoder.decode(Deno.readFileSync(`/proc/${pid}/cmdline`)).replace(/\0+$/, "")
      .replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** Memory of a process in kB; zeros when it is gone or unreadable. */
export function readMemory(pid: number): ProcMemory {
  return {
    rssKb: readKbField(`/proc/${pid}/status`, "VmRSS"),
    pssKb: readKbField(`/proc/${pid}/smaps_rollup`, "Pss"),
  };
}

function readKbField(path: string, field: string): number {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return 0;
  }
  const match = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) : 0;
}

/**
 * The process that serves HTTP for a head started as `pid`: `pid` itself, or, when `pid` is a
 * launcher such as `deno task`, its deepest `deno` descendant that is not part of a job.
 */
export function resolveServerPid(pid: number): number {
  const candidates = descendantsOf(pid).filter((p) =>
    p.comm === "deno" && !readEnviron(p.pid).has("JOBHEAD_SUBMISSION_ID")
  );
  if (candidates.length === 0) return pid;
  const depth = (p: ProcInfo): number => {
    let d = 0;
    for (let cur = readProcInfo(p.pid); cur && cur.pid !== pid; cur = readProcInfo(cur.ppid)) d++;
    return d;
  };
  return candidates.reduce((best, p) => (depth(p) > depth(best) ? p : best)).pid;
}

/**
 * Sends SIGKILL to every job process of a run (and to their groups). Safe to repeat; returns
 * how many processes it found.
 */
export function killRunProcs(runId: string, exclude: Set<number> = new Set()): number {
  const procs = findJobProcs(runId, exclude);
  const shared = protectedGroups(exclude);
  const groups = new Set(procs.map((p) => p.pgid).filter((g) => !shared.has(g)));
  for (const pgid of groups) trySignal(-pgid);
  for (const p of procs) trySignal(p.pid);
  return procs.length;
}

/** Process groups and sessions of this process and of `pids`: never to be swept or killed. */
function protectedGroups(pids: Set<number>): Set<number> {
  const out = new Set<number>([1]);
  for (const pid of [Deno.pid, ...pids]) {
    const info = readProcInfo(pid);
    if (info) {
      out.add(info.pgid);
      out.add(info.sid);
    }
  }
  return out;
}

function trySignal(target: number): void {
  try {
    Deno.kill(target, "SIGKILL");
  } catch {
    // Already gone, or never ours to kill.
  }
}

/** Clock ticks per second of `/proc/<pid>/stat`'s times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU time (user + system) a process has used so far, in seconds; 0 when it is gone. */
export function readCpuSeconds(pid: number): number {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return 0;
  }
  // Fields after the command name: state is field 3, utime 14, stime 15.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/**
 * Kernel memory of every TCP socket of the machine in kB (`/proc/net/sockstat`, pages of
 * 4 KiB): what unread sockets hold in their buffers. Past `net.ipv4.tcp_mem`'s pressure mark
 * the kernel slows every TCP connection; other processes' sockets count too.
 */
export function readTcpMemoryKb(): number {
  const text = Deno.readTextFileSync("/proc/net/sockstat");
  return Number(/^TCP:.* mem (\d+)/m.exec(text)?.[1] ?? 0) * 4;
}

/**
 * RSS of a process in kB by kind of mapping (`/proc/<pid>/smaps`): `heap` is the C heap (brk:
 * malloc'd native memory), `anon` other anonymous mappings (the JS heap, large mallocs, stacks),
 * `file` mapped files (the executable and libraries). Zeros when it is gone.
 */
export function readRssByKind(pid: number): { heap: number; anon: number; file: number } {
  const out = { heap: 0, anon: 0, file: 0 };
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/smaps`);
  } catch {
    return out;
  }
  let kind: keyof typeof out = "anon";
  for (const line of text.split("\n")) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const name = mapping[1];
      kind = name === "[heap]" ? "heap" : name.startsWith("/") ? "file" : "anon";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]);
  }
  return out;
}
