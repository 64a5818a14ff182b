/** Parsing the `job` command line: flags into client options and API requests. */
import { parseArgs } from "node:util";
import { DEFAULT_ADDRESS, type SubmitJobOptions } from "../client/http_client.ts";
import { JobStatus } from "../modules/jobs/schemas.ts";
import { parseByteSize } from "../scheduler/resources.ts";
import { errorMessage } from "../storage/errors.ts";
import { isPackageUri } from "../storage/package_uri.ts";

/** A mistake on the command line; shown with a pointer to `--help`. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A flag of a `job` command, as `node:util` parseArgs takes it. */
type FlagSpec = Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;

/** Flags every `job` command takes. */
const COMMON_FLAGS = {
  address: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} satisfies FlagSpec;

/**
 * Flags of `job submit`, as Ray's `ray job submit` names them, plus `--exclude`,
 * `--priority` and short names of the resource flags (`--num-cpus` for
 * `--entrypoint-num-cpus`, as `jobhead start` names a node's capacity).
 */
export const SUBMIT_FLAGS = {
  "submission-id": { type: "string" },
  "runtime-env-json": { type: "string" },
  "working-dir": { type: "string" },
  exclude: { type: "string", multiple: true },
  "metadata-json": { type: "string" },
  "entrypoint-num-cpus": { type: "string" },
  "entrypoint-num-gpus": { type: "string" },
  "entrypoint-memory": { type: "string" },
  "entrypoint-resources": { type: "string" },
  "num-cpus": { type: "string" },
  "num-gpus": { type: "string" },
  memory: { type: "string" },
  resources: { type: "string" },
  priority: { type: "string" },
  "no-wait": { type: "boolean" },
} satisfies FlagSpec;

/** Parsed flags: strings, booleans and repeated strings by name. */
export type Flags = Record<string, string | boolean | string[] | undefined>;

/** A parsed command line: its flags, and the words that are not flags. */
export interface ParsedArgs {
  flags: Flags;
  positionals: string[];
}

/** Parses `args` with the common flags and `spec`; throws UsageError. */
export function parseCommandArgs(args: string[], spec: FlagSpec = {}): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...COMMON_FLAGS, ...spec },
      strict: true,
      allowPositionals: true,
    });
    return { flags: values as Flags, positionals };
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

/** The head's address and token: flags first, then JOBHEAD_ADDRESS and JOBHEAD_AUTH_TOKEN. */
export function connectionOf(
  flags: Flags,
  env: Record<string, string | undefined>,
): { address: string; token?: string } {
  const address = stringFlag(flags, "address") || env.JOBHEAD_ADDRESS || DEFAULT_ADDRESS;
  const token = stringFlag(flags, "token") ?? env.JOBHEAD_AUTH_TOKEN;
  return { address, token: token ? token : undefined };
}

/** The one job id a command takes; throws UsageError for none or more. */
export function jobIdOf(positionals: string[], command: string): string {
  if (positionals.length !== 1) {
    throw new UsageError(`${command} takes one job id, got ${positionals.length}`);
  }
  return positionals[0];
}

/** Statuses from `--status RUNNING,PENDING` (any case); throws UsageError. */
export function statusesOf(text: string | undefined): JobStatus[] | undefined {
  if (text === undefined) return undefined;
  return text.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean).map((s) => {
    const status = JobStatus.safeParse(s);
    if (!status.success) {
      throw new UsageError(`--status ${s}: not one of ${JobStatus.options.join(", ")}`);
    }
    return status.data;
  });
}

/** `--metadata KEY=VALUE` flags as one filter; throws UsageError for a flag without `=`. */
export function metadataFilterOf(pairs: string[]): Record<string, string> {
  const filter: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new UsageError(`--metadata ${pair}: expected KEY=VALUE`);
    filter[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return filter;
}

/** Whether a job's metadata holds every pair of `filter`. */
export function hasMetadata(
  job: { metadata: Record<string, string> },
  filter: Record<string, string>,
) {
  return Object.entries(filter).every(([key, value]) => job.metadata[key] === value);
}

/** The last `count` lines of `text` (a last line without a newline counts as one). */
export function tailLines(text: string, count: number): string {
  let at = text.length;
  if (text.endsWith("\n")) at--;
  for (let found = 0; found < count; found++) {
    const newline = text.lastIndexOf("\n", at - 1);
    if (newline < 0) return text;
    at = newline;
  }
  return text.slice(at + 1);
}

/** A flag's whole number ≥ 1, or undefined when absent; throws UsageError otherwise. */
export function positiveIntegerOf(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new UsageError(`${flag} ${text}: expected a whole number of at least 1`);
  }
  return value;
}

/**
 * The request `job submit` sends, from its flags and the words after `--`: one word is
 * the entrypoint as written, several are quoted for the shell so each stays one argument.
 * `excludes` in `--runtime-env-json` joins `--exclude`: both shape the working_dir upload.
 */
export function submitOptionsOf(flags: Flags, positionals: string[]): SubmitJobOptions {
  if (positionals.length === 0) {
    throw new UsageError("submit needs an entrypoint: job submit [options] -- COMMAND [ARGS…]");
  }
  const entrypoint = positionals.length === 1
    ? positionals[0]
    : positionals.map(shellQuote).join(" ");
  const runtimeEnv = jsonObjectFlag(flags, "runtime-env-json") ?? {};
  const excludes = [...(flags.exclude as string[] | undefined ?? [])];
  if ("excludes" in runtimeEnv) {
    const listed = runtimeEnv.excludes;
    if (!Array.isArray(listed) || !listed.every((e) => typeof e === "string")) {
      throw new UsageError("--runtime-env-json: excludes must be a list of patterns");
    }
    excludes.push(...listed);
    delete runtimeEnv.excludes;
  }
  const options: SubmitJobOptions = {
    entrypoint,
    // The server checks the rest, and names any field it does not know.
    runtime_env: runtimeEnv as SubmitJobOptions["runtime_env"],
  };
  const workingDir = stringFlag(flags, "working-dir");
  if (workingDir !== undefined) {
    if ("working_dir" in runtimeEnv) {
      throw new UsageError("give --working-dir or working_dir in --runtime-env-json, not both");
    }
    // A package URI is used as is; anything else is a local directory to upload.
    if (isPackageUri(workingDir)) options.runtime_env!.working_dir = workingDir;
    else options.workingDir = workingDir;
  }
  if (excludes.length) {
    if (options.workingDir === undefined) {
      throw new UsageError("excludes shape a --working-dir upload: give --working-dir DIR too");
    }
    options.excludes = excludes;
  }
  const submissionId = stringFlag(flags, "submission-id");
  if (submissionId !== undefined) options.submission_id = submissionId;
  const metadata = jsonObjectFlag(flags, "metadata-json");
  if (metadata !== undefined) options.metadata = metadata as Record<string, string>;
  const cpus = numberFlag(flags, resourceFlag(flags, "num-cpus"));
  if (cpus !== undefined) options.entrypoint_num_cpus = cpus;
  const gpus = numberFlag(flags, resourceFlag(flags, "num-gpus"));
  if (gpus !== undefined) options.entrypoint_num_gpus = gpus;
  const memory = byteSizeFlag(flags, resourceFlag(flags, "memory"));
  if (memory !== undefined) options.entrypoint_memory = memory;
  const resources = jsonObjectFlag(flags, resourceFlag(flags, "resources"));
  if (resources !== undefined) options.entrypoint_resources = resources as Record<string, number>;
  const priority = numberFlag(flags, "priority");
  if (priority !== undefined) {
    if (!Number.isInteger(priority)) {
      throw new UsageError(`--priority ${flags.priority}: expected a whole number`);
    }
    options.priority = priority;
  }
  return options;
}

/**
 * Which of a resource's two flags was given, `--NAME` or Ray's `--entrypoint-NAME`;
 * throws UsageError for both.
 */
function resourceFlag(flags: Flags, name: string): string {
  const rays = `entrypoint-${name}`;
  if (flags[name] !== undefined && flags[rays] !== undefined) {
    throw new UsageError(`--${name} and --${rays} are one setting: give one of them`);
  }
  return flags[name] !== undefined ? name : rays;
}

/** `word` as one /bin/sh word: as is when safe, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function stringFlag(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  return typeof value === "string" ? value : undefined;
}

function numberFlag(flags: Flags, name: string): number | undefined {
  const text = stringFlag(flags, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw new UsageError(`--${name} ${text}: not a number`);
  }
  return value;
}

/** A byte count with an optional `K`, `M`, `G` or `T` (binary), as `jobhead start --memory`. */
function byteSizeFlag(flags: Flags, name: string): number | undefined {
  const text = stringFlag(flags, name);
  if (text === undefined) return undefined;
  const bytes = parseByteSize(text);
  if (bytes === undefined) {
    throw new UsageError(`--${name} ${text}: expected bytes, e.g. 1073741824, 512M or 16G`);
  }
  return bytes;
}

function jsonObjectFlag(flags: Flags, name: string): Record<string, unknown> | undefined {
  const text = stringFlag(flags, name);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${name}: not JSON: ${errorMessage(err)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`--${name}: must be a JSON object`);
  }
  return value as Record<string, unknown>;
}
