/**
 * What `job` and `cluster` commands print: human lines and tables, written whole, and a
 * TTY-only spinner. The formatters are written here on purpose: each is a few lines whose
 * exact output the CLI's tests pin, where a formatting package (pretty-bytes, pretty-ms, a
 * table or spinner library) would add a dependency and its own choices of units and layout.
 * @module
 */
import type { ClusterResponse } from "../host/schemas.ts";
import type { JobDetails } from "../modules/jobs/schemas.ts";
import { demandOf, formatAmount } from "../scheduler/resources.ts";

/** Writes all of `text` to stdout. */
export async function writeOut(text: string): Promise<void> {
  await writeAll(Deno.stdout, text);
}

/** Writes all of `text` to stderr. */
export async function writeErr(text: string): Promise<void> {
  await writeAll(Deno.stderr, text);
}

async function writeAll(stream: { write(p: Uint8Array): Promise<number> }, text: string) {
  const bytes = new TextEncoder().encode(text);
  for (let done = 0; done < bytes.length;) done += await stream.write(bytes.subarray(done));
}

/**
 * Writes text in order, one write at a time; while held (a prompt is up), text waits
 * and follows once released.
 */
export class OrderedOutput {
  #write: (text: string) => Promise<void>;
  #chain: Promise<void> = Promise.resolve();
  #held: string[] | undefined;

  constructor(write: (text: string) => Promise<void>) {
    this.#write = write;
  }

  /** Queues `text`; resolves once it is written (at once while held). */
  write(text: string): Promise<void> {
    if (this.#held) {
      this.#held.push(text);
      return Promise.resolve();
    }
    this.#chain = this.#chain.then(() => this.#write(text));
    return this.#chain;
  }

  /** Holds back further text until `release()`. */
  hold(): void {
    this.#held ??= [];
  }

  /** Writes what was held back, then writes as it comes again. */
  release(): Promise<void> {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const text of held) this.write(text);
    return this.#chain;
  }
}

const SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";
const SPINNER_INTERVAL_MS = 100;

/** A one-line spinner on stderr, drawn only when stderr is a terminal. */
export class Spinner {
  #text = "";
  #timer: ReturnType<typeof setInterval> | undefined;
  #frame = 0;

  /** Shows `text` with a spinner (replacing what was shown). */
  start(text: string): void {
    this.#text = text;
    if (this.#timer !== undefined || !Deno.stderr.isTerminal()) return;
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), SPINNER_INTERVAL_MS);
  }

  /** Clears the line; safe to call twice. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
  }

  #draw(): void {
    const frame = SPINNER_FRAMES[this.#frame++ % SPINNER_FRAMES.length];
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${frame} ${this.#text}`));
  }
}

/** `1.5 KiB`, `3.2 MiB`: bytes for people. */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `850ms`, `12.3s`, `4m05s`, `2h03m`: a duration for people. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** `2024-05-01 12:34:56` in local time; "-" for none. */
export function formatTime(ms: number | null): string {
  if (ms === null) return "-";
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The lines `job status` prints. */
export function formatJobStatus(job: JobDetails): string {
  const lines = [
    `Status for job '${job.submission_id}': ${job.status}`,
    `Status message: ${job.message}`,
    `Entrypoint: ${job.entrypoint}`,
    `Submitted: ${formatTime(job.start_time)}` +
    (job.end_time === null ? "" : `, ended: ${formatTime(job.end_time)}`) +
    (job.start_time === null ? "" : ` (${formatDuration(elapsedMs(job))})`),
  ];
  lines.push(`Resources: ${formatResources(job)}, priority ${job.priority}`);
  if (job.error_type) lines.push(`Error type: ${job.error_type}`);
  if (job.driver_exit_code !== null) lines.push(`Exit code: ${job.driver_exit_code}`);
  if (job.runtime_env.working_dir) lines.push(`Working dir: ${job.runtime_env.working_dir}`);
  return lines.join("\n") + "\n";
}

/**
 * The table `job list` prints, newest first. Under a PENDING job, its message: what it
 * waits for.
 */
export function formatJobTable(jobs: JobDetails[]): string {
  const rows = [["SUBMISSION ID", "STATUS", "SUBMITTED", "DURATION", "RESOURCES", "ENTRYPOINT"]];
  for (const job of jobs) {
    rows.push([
      job.submission_id,
      job.status,
      formatTime(job.start_time),
      job.start_time === null ? "-" : formatDuration(elapsedMs(job)),
      formatResources(job),
      oneLine(job.entrypoint, 60),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row, i) => {
    const line = row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
      .join("  ");
    const job = jobs[i - 1];
    return job?.status === "PENDING" ? `${line}\n  ↳ ${oneLine(job.message)}` : line;
  }).join("\n") + "\n";
}

/** What a job asks for, compactly: `2 CPU · 1 GPU · 16 GiB · 1 license`; `-` for nothing. */
export function formatResources(job: JobDetails): string {
  const shown = Object.entries(demandOf(job)).map(([name, amount]) =>
    name === "memory" ? formatAmount(name, amount) : `${formatAmount(name, amount)} ${name}`
  );
  return shown.length ? shown.join(" · ") : "-";
}

/**
 * What `jobhead cluster` prints: each node's state, last heartbeat, and each resource's
 * use (`CPU 1.5/2 used`, memory in GiB), its running and pending jobs; then the totals.
 */
export function formatCluster(cluster: ClusterResponse): string {
  const lines: string[] = [];
  for (const node of cluster.nodes) {
    lines.push(
      `Node ${node.name}: ${node.state}, last heartbeat ${formatTime(node.last_heartbeat)}`,
    );
    const names = Object.keys(node.total);
    const width = Math.max(0, ...names.map((name) => name.length));
    for (const name of names) {
      lines.push(
        `  ${name.padEnd(width)}  ${formatUse(name, node.used[name] ?? 0, node.total[name])}`,
      );
    }
    if (node.gpus_in_use.length) lines.push(`  GPUs in use: ${node.gpus_in_use.join(", ")}`);
    lines.push(`  Jobs: ${node.running} running, ${node.pending} pending`);
  }
  const cap = cluster.max_running_jobs === null
    ? ""
    : ` (at most ${cluster.max_running_jobs} running at a time)`;
  lines.push(`Cluster: ${cluster.running} running, ${cluster.pending} pending${cap}`);
  return lines.join("\n") + "\n";
}

/** `1.5/2 used`, `3.2/15.5 GiB used` for memory, `none` when the node has none of it. */
function formatUse(name: string, used: number, total: number): string {
  if (total === 0) return "none";
  if (name !== "memory") return `${formatAmount(name, used)}/${formatAmount(name, total)} used`;
  const gib = (bytes: number) => (bytes / 1024 ** 3).toFixed(1);
  return `${gib(used)}/${gib(total)} GiB used`;
}

/** The first line of `text`, cut to `max` characters. */
export function oneLine(text: string, max = Infinity): string {
  const first = text.split("\n", 1)[0];
  const cut = first.length > max ? `${first.slice(0, max - 1)}…` : first;
  return cut + (text.includes("\n") && cut === first ? " …" : "");
}

function elapsedMs(job: JobDetails): number {
  return (job.end_time ?? Date.now()) - (job.start_time ?? Date.now());
}
