/**
 * The head's configuration (DESIGN.md): every option has a flag, an environment twin and
 * a key in the `--config` file. Flags win over the environment, the environment over the
 * file, the file over the defaults. `OPTIONS` is the one list of them: the parser, the
 * usage text and the list of the environment variables the head reads all come from it.
 */
import { parseArgs } from "node:util";
import { extname } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { HeadConfig } from "../kit/config.ts";
import { parseByteSize, STANDARD_RESOURCES } from "../scheduler/resources.ts";
import { type Labels, parseLabels } from "../scheduler/labels.ts";
import { DEFAULT_MAX_EXTRACTED_BYTES, DEFAULT_MAX_RATIO } from "../storage/zip_safety.ts";
import { errorMessage } from "../storage/errors.ts";

export type { HeadConfig };

/** A configuration problem, reported to the operator as is. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** One option of `jobhead start` (and of `jobhead node` when marked so). */
interface OptionSpec {
  /** The flag without its dashes; also the option's key in a `--config` file. */
  flag: string;
  /** The environment twin. */
  env: string;
  /** `list` options repeat as flags and are comma-separated in the environment. */
  kind: "string" | "boolean" | "list";
  /** What the value looks like in the usage text. */
  placeholder?: string;
  /** As the usage text shows it; absent: none. */
  default?: string;
  help: string;
  /** `jobhead node` takes it too (every option is `jobhead start`'s). */
  node?: true;
}

/** The commands that take options: the head, and a worker node. */
export type Command = "start" | "node";

/** Every option of `jobhead start`, in the order the usage text lists them. */
export const OPTIONS = [
  {
    flag: "config",
    node: true,
    env: "JOBHEAD_CONFIG",
    kind: "string",
    placeholder: "FILE",
    help: "read options from a JSON or TOML file (keys: the flags' names)",
  },
  {
    flag: "host",
    node: true,
    env: "JOBHEAD_HOST",
    kind: "string",
    placeholder: "HOST",
    default: "127.0.0.1",
    help: "address to listen on; anything but loopback needs a token",
  },
  {
    flag: "port",
    node: true,
    env: "JOBHEAD_PORT",
    kind: "string",
    placeholder: "PORT",
    default: "8265",
    help: "port to listen on; 0 picks a free one",
  },
  {
    flag: "data-dir",
    node: true,
    env: "JOBHEAD_DATA_DIR",
    kind: "string",
    placeholder: "DIR",
    default: "./.jobhead",
    help: "KV file, logs and run files",
  },
  {
    flag: "store",
    env: "JOBHEAD_STORE",
    kind: "string",
    placeholder: "kv|URL",
    default: "kv",
    help:
      "where jobs, actors and deployments are kept: kv, the data directory's Deno KV, or a PostgreSQL database, postgres://USER@HOST:PORT/DB (several heads and nodes may share one); its password from the URL, --store-password-file or PGPASSWORD",
    node: true,
  },
  {
    flag: "store-password-file",
    env: "JOBHEAD_STORE_PASSWORD_FILE",
    kind: "string",
    placeholder: "FILE",
    help:
      "read the PostgreSQL store's password from FILE (a password in the URL is visible in the process list)",
    node: true,
  },
  {
    flag: "token",
    node: true,
    env: "JOBHEAD_AUTH_TOKEN",
    kind: "string",
    placeholder: "TOKEN",
    help:
      "bearer token required on every API call (visible to local users in the process list: prefer the environment or --token-file)",
  },
  {
    flag: "token-file",
    node: true,
    env: "JOBHEAD_TOKEN_FILE",
    kind: "string",
    placeholder: "FILE",
    help: "read the token from FILE",
  },
  {
    flag: "minimal",
    env: "JOBHEAD_MINIMAL",
    kind: "boolean",
    default: "false",
    help: "load only the minimal modules",
  },
  {
    flag: "module",
    env: "JOBHEAD_MODULES",
    kind: "list",
    placeholder: "SPEC",
    help:
      "load an operator's module by path or specifier; repeatable (comma-separated in the environment)",
  },
  {
    flag: "skip-broken-modules",
    env: "JOBHEAD_SKIP_BROKEN_MODULES",
    kind: "boolean",
    default: "false",
    help: "start without an operator's module that fails to load (logged), rather than exit 1",
  },
  {
    flag: "stop-wait-s",
    node: true,
    env: "JOBHEAD_STOP_WAIT_S",
    kind: "string",
    placeholder: "SECONDS",
    default: "3",
    help: "grace between SIGTERM and SIGKILL on stop",
  },
  {
    flag: "max-body-bytes",
    env: "JOBHEAD_MAX_BODY_BYTES",
    kind: "string",
    placeholder: "N",
    default: "1048576",
    help: "largest JSON request body",
  },
  {
    flag: "log-max-bytes",
    node: true,
    env: "JOBHEAD_LOG_MAX_BYTES",
    kind: "string",
    placeholder: "N",
    default: "1073741824",
    help: "cap on one job's log: past it the middle is dropped, head and tail kept",
  },
  {
    flag: "log-retention-days",
    node: true,
    env: "JOBHEAD_LOG_RETENTION_DAYS",
    kind: "string",
    placeholder: "D",
    default: "0",
    help: "delete the logs of jobs that ended D days ago; 0 keeps them",
  },
  {
    flag: "tail-idle-timeout-s",
    node: true,
    env: "JOBHEAD_TAIL_IDLE_TIMEOUT_S",
    kind: "string",
    placeholder: "S",
    default: "30",
    help: "ping a log tail socket silent for S seconds, close it if it does not answer; 0 never",
  },
  {
    flag: "max-package-bytes",
    env: "JOBHEAD_MAX_PACKAGE_BYTES",
    kind: "string",
    placeholder: "N",
    default: "104857600",
    help: "largest working_dir package upload",
  },
  {
    flag: "max-log-tails",
    node: true,
    env: "JOBHEAD_MAX_LOG_TAILS",
    kind: "string",
    placeholder: "N",
    default: "4096",
    help: "open log tails at most; past it a tail is answered 503",
  },
  {
    flag: "header-timeout-s",
    node: true,
    env: "JOBHEAD_HEADER_TIMEOUT_S",
    kind: "string",
    placeholder: "S",
    default: "30",
    help:
      "close a connection that takes longer than S seconds to send a request's headers (from its opening or its last response); 0 never",
  },
  {
    flag: "max-connections",
    node: true,
    env: "JOBHEAD_MAX_CONNECTIONS",
    kind: "string",
    placeholder: "N",
    help:
      "open client connections at most, past it new ones get 503; unset: 4096, less when the open-files limit is lower (a connection may take 4 descriptors)",
  },
  {
    flag: "max-package-extract-bytes",
    node: true,
    env: "JOBHEAD_MAX_PACKAGE_EXTRACT_BYTES",
    kind: "string",
    placeholder: "N",
    default: String(DEFAULT_MAX_EXTRACTED_BYTES),
    help: "most bytes one working_dir package may expand to",
  },
  {
    flag: "max-package-ratio",
    node: true,
    env: "JOBHEAD_MAX_PACKAGE_RATIO",
    kind: "string",
    placeholder: "R",
    default: String(DEFAULT_MAX_RATIO),
    help: "most bytes a package may expand to per byte of zip, past its first MiB; 0 no limit",
  },
  {
    flag: "log-format",
    node: true,
    env: "JOBHEAD_LOG_FORMAT",
    kind: "string",
    placeholder: "text|json",
    default: "text",
    help: "the head's own log lines: text, or one JSON object per line",
  },
  {
    flag: "job-retention-days",
    env: "JOBHEAD_JOB_RETENTION_DAYS",
    kind: "string",
    placeholder: "D",
    help: "delete finished jobs (record, log, files) that ended D days ago; unset keeps them",
  },
  {
    flag: "max-finished-jobs",
    env: "JOBHEAD_MAX_FINISHED_JOBS",
    kind: "string",
    placeholder: "N",
    help: "keep at most N finished jobs, deleting the oldest; unset keeps all",
  },
  {
    flag: "package-retention-days",
    env: "JOBHEAD_PACKAGE_RETENTION_DAYS",
    kind: "string",
    placeholder: "D",
    default: "7",
    help:
      "delete working_dir packages no job names that were not uploaded or used for D days; 0 keeps them",
  },
  {
    flag: "actor-retention-minutes",
    env: "JOBHEAD_ACTOR_RETENTION_MINUTES",
    kind: "string",
    placeholder: "M",
    default: "60",
    help: "remove the records of DEAD actors M minutes after they died; 0 keeps them",
  },
  {
    flag: "data-mode",
    node: true,
    env: "JOBHEAD_DATA_MODE",
    kind: "string",
    placeholder: "MODE",
    default: "0700",
    help:
      "mode of the data directory and its subdirectories, files the same without execute bits; 0750 lets the group read",
  },
  {
    flag: "recover",
    env: "JOBHEAD_RECOVER",
    kind: "boolean",
    default: "false",
    help:
      "move a damaged KV file aside, start with an empty store and take back the jobs still running",
  },
  {
    flag: "metrics-public",
    env: "JOBHEAD_METRICS_PUBLIC",
    kind: "boolean",
    default: "false",
    help: "serve GET /metrics without the token",
  },
  {
    flag: "cgroup",
    node: true,
    env: "JOBHEAD_CGROUP",
    kind: "string",
    placeholder: "auto|off",
    default: "auto",
    help:
      "stop jobs through a cgroup each where cgroup v2 is writable, and hold them to their limits where a cgroup controller is (auto), or only through process groups and environment markers, with memory and CPUs admission only (off)",
  },
  {
    flag: "num-cpus",
    node: true,
    env: "JOBHEAD_NUM_CPUS",
    kind: "string",
    placeholder: "N",
    help:
      "CPUs jobs may ask for in all (entrypoint_num_cpus); a job waits until its CPUs are free. Default: the CPUs this process may use (affinity, cgroup cpu.max, cpuset)",
  },
  {
    flag: "num-gpus",
    node: true,
    env: "JOBHEAD_NUM_GPUS",
    kind: "string",
    placeholder: "N",
    help:
      "GPUs jobs may ask for (entrypoint_num_gpus); each job gets its own in CUDA_VISIBLE_DEVICES. Default: the count of /dev/nvidiaN",
  },
  {
    flag: "memory",
    node: true,
    env: "JOBHEAD_MEMORY",
    kind: "string",
    placeholder: "BYTES",
    help:
      "memory jobs may ask for (entrypoint_memory), in bytes or with a suffix: 16G, 512M; enforced where a cgroup memory controller is writable. Default: MemTotal, or the cgroup limit when lower",
  },
  {
    flag: "resources",
    node: true,
    env: "JOBHEAD_RESOURCES",
    kind: "string",
    placeholder: "JSON",
    help: "custom resources jobs may ask for (entrypoint_resources), e.g. '{\"license\": 2}'",
  },
  {
    flag: "max-running-jobs",
    env: "JOBHEAD_MAX_RUNNING_JOBS",
    kind: "string",
    placeholder: "N",
    help: "jobs running at once at most; the others wait in the queue. Default: no limit",
  },
  {
    flag: "reserve-after-s",
    env: "JOBHEAD_RESERVE_AFTER_S",
    kind: "string",
    placeholder: "S",
    default: "300",
    help:
      "a job that waited this long gets what it needs set aside as it frees up, so smaller jobs behind it cannot starve it",
  },
  {
    flag: "pending-timeout-s",
    env: "JOBHEAD_PENDING_TIMEOUT_S",
    kind: "string",
    placeholder: "S",
    default: "900",
    help:
      "a job still waiting to start after this long fails (JOB_SUPERVISOR_ACTOR_START_TIMEOUT); a job's RAY_JOB_START_TIMEOUT_SECONDS overrides it",
  },
  {
    flag: "enforce-cpu",
    node: true,
    env: "JOBHEAD_ENFORCE_CPU",
    kind: "boolean",
    default: "false",
    help:
      "hold each job to its entrypoint_num_cpus with a cgroup CPU quota (cpu.max, or v1 cpu.cfs_quota_us) where writable",
  },
  {
    flag: "name",
    env: "JOBHEAD_NODE_NAME",
    kind: "string",
    placeholder: "NAME",
    help:
      "this node's name in a cluster (the node:NAME resource pins jobs to it). Default: the host name",
    node: true,
  },
  {
    flag: "labels",
    env: "JOBHEAD_LABELS",
    kind: "string",
    placeholder: "K=V,...",
    help: "this node's labels in a cluster, matched by entrypoint_label_selector",
    node: true,
  },
  {
    flag: "node-timeout-s",
    env: "JOBHEAD_NODE_TIMEOUT_S",
    kind: "string",
    placeholder: "S",
    default: "10",
    help:
      "a node without a heartbeat for S seconds is DEAD: its jobs fail and what they held is free",
  },
  {
    flag: "no-local-jobs",
    env: "JOBHEAD_NO_LOCAL_JOBS",
    kind: "boolean",
    default: "false",
    help: "in a cluster, run no jobs on this head: only on worker nodes",
  },
  {
    flag: "placement",
    env: "JOBHEAD_PLACEMENT",
    kind: "string",
    placeholder: "spread|pack",
    default: "spread",
    help:
      "place each job on the node with the most CPU free (spread), or the least that holds it (pack)",
  },
] as const satisfies readonly OptionSpec[];

/** The options `command` takes. */
function optionsOf(command: Command): readonly OptionSpec[] {
  return (OPTIONS as readonly OptionSpec[]).filter((o) => command === "start" || o.node);
}

/** An option's flag name. */
export type OptionName = typeof OPTIONS[number]["flag"];

/** The environment variables the head reads as its configuration. */
export const CONFIG_ENV_NAMES: readonly string[] = OPTIONS.map((option) => option.env);

/** Environment variables jobs never inherit: the configuration, and the store's password. */
export const WITHHELD_ENV_NAMES: readonly string[] = [...CONFIG_ENV_NAMES, "PGPASSWORD"];

/** Columns of the usage text, and where the options' help starts. */
const USAGE_WIDTH = 100;
const USAGE_INDENT = 28;

/** `text` in lines of at most `width` characters, broken between words. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line];
}

/** The usage text of `jobhead start`, every option with its environment twin and default. */
export function startUsage(): string {
  return usageOf("start");
}

/** The usage text of `jobhead node`. */
export function nodeUsage(): string {
  return usageOf("node");
}

function usageOf(command: Command): string {
  const lines = [
    command === "start"
      ? "Usage: jobhead start [options]"
      : "Usage: jobhead node --store postgres://USER@HOST:PORT/DB [options]\n" +
        "Runs a worker node of a cluster: it runs the jobs placed on it and serves their logs.",
    "Each option can also be set by its environment variable or a --config file key (the",
    "flag's name); flags win over the environment, the environment over the file.",
    "",
  ];
  for (const option of optionsOf(command)) {
    const flag = `  --${option.flag}${option.placeholder ? ` ${option.placeholder}` : ""}`;
    const twin = `${option.env}${
      option.default === undefined ? "" : `, default ${option.default}`
    }`;
    // The flag, then its help wrapped beside it (below it when the flag is long).
    const help = wrap(`${option.help} (${twin})`, USAGE_WIDTH - USAGE_INDENT);
    if (flag.length + 2 > USAGE_INDENT) lines.push(flag);
    else lines.push(flag.padEnd(USAGE_INDENT) + help.shift());
    for (const line of help) lines.push(" ".repeat(USAGE_INDENT) + line);
  }
  lines.push(`${"  -h, --help".padEnd(USAGE_INDENT)}this text`);
  return lines.join("\n");
}

/**
 * Builds the configuration from `args`, `env` and the `--config` file they name.
 * Throws ConfigError with a message for the operator.
 */
export function parseConfig(
  args: string[],
  env: Record<string, string | undefined>,
  command: Command = "start",
): HeadConfig {
  const options = resolveOptions(args, env, command);
  const host = options.string("host");
  const token = options.token();
  if (!token && !isLoopback(host)) {
    throw new ConfigError(
      `Refusing to listen on ${host} without a token: anyone who can reach it could run ` +
        `commands on this machine. Set one with JOBHEAD_AUTH_TOKEN or --token-file (or ` +
        `--token), or listen on 127.0.0.1.`,
    );
  }
  return {
    host,
    port: parseNumber("port", options.string("port"), { max: 65535 }),
    dataDir: options.string("data-dir"),
    store: parseStore(options.string("store")),
    storePassword: storePassword(options.optional("store-password-file"), env),
    token,
    minimal: options.boolean("minimal"),
    modules: options.list("module"),
    skipBrokenModules: options.boolean("skip-broken-modules"),
    stopGraceMs: 1000 * options.number("stop-wait-s", { fractional: true }),
    maxBodyBytes: options.number("max-body-bytes"),
    logMaxBytes: options.number("log-max-bytes"),
    logRetentionDays: options.number("log-retention-days", { fractional: true }),
    tailIdleTimeoutS: options.number("tail-idle-timeout-s"),
    maxPackageBytes: options.number("max-package-bytes"),
    jobRetentionDays: options.optionalNumber("job-retention-days", { fractional: true }),
    maxFinishedJobs: options.optionalNumber("max-finished-jobs"),
    packageRetentionDays: options.number("package-retention-days", { fractional: true }),
    actorRetentionMinutes: options.number("actor-retention-minutes", { fractional: true }),
    dataMode: parseDataMode(options.string("data-mode")),
    recover: options.boolean("recover"),
    metricsPublic: options.boolean("metrics-public"),
    cgroup: parseChoice("cgroup", options.string("cgroup"), ["auto", "off"] as const),
    logFormat: parseChoice("log-format", options.string("log-format"), ["text", "json"] as const),
    maxPackageExtractBytes: options.number("max-package-extract-bytes"),
    maxPackageRatio: options.number("max-package-ratio", { fractional: true }),
    maxLogTails: options.number("max-log-tails"),
    headerTimeoutS: options.number("header-timeout-s", { fractional: true }),
    maxConnections: positive("max-connections", options.optionalNumber("max-connections")),
    numCpus: options.optionalNumber("num-cpus", { fractional: true }),
    numGpus: options.optionalNumber("num-gpus"),
    memoryBytes: parseMemory(options.optional("memory")),
    resources: parseResources(options.optional("resources")),
    maxRunningJobs: options.optionalNumber("max-running-jobs"),
    reserveAfterS: options.number("reserve-after-s", { fractional: true }),
    pendingTimeoutS: options.number("pending-timeout-s", { fractional: true }),
    enforceCpu: options.boolean("enforce-cpu"),
    role: command === "start" ? "head" : "node",
    nodeName: options.optional("name") ?? Deno.hostname(),
    labels: parseLabelsOption(options.optional("labels")),
    nodeTimeoutS: options.number("node-timeout-s", { fractional: true }),
    localJobs: !options.boolean("no-local-jobs"),
    placement: parseChoice("placement", options.string("placement"), ["spread", "pack"] as const),
  };
}

/** `--labels`: `k=v,…` as Ray's label rules allow. */
function parseLabelsOption(text: string | undefined): Labels {
  if (text === undefined) return {};
  try {
    return parseLabels(text);
  } catch (err) {
    throw new ConfigError(`Invalid --labels: ${errorMessage(err)}`);
  }
}

/** `--store`: `kv`, or a URL that opening the store checks (it names what is wrong). */
function parseStore(text: string): string {
  if (text.trim() === "") {
    throw new ConfigError("Invalid --store: expected kv or a postgres:// URL");
  }
  return text.trim();
}

/** The store's password: from `--store-password-file`, else PGPASSWORD; the URL's wins over both. */
function storePassword(
  file: string | undefined,
  env: Record<string, string | undefined>,
): string | undefined {
  if (file === undefined) return env.PGPASSWORD || undefined;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    throw new ConfigError(`Cannot read the store password file ${file}: ${errorMessage(err)}`);
  }
  const password = text.replace(/\r?\n$/, "");
  if (password === "") throw new ConfigError(`The store password file ${file} is empty`);
  return password;
}

/** `--memory` in bytes: digits with an optional suffix (16G, 512M). */
function parseMemory(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const bytes = parseByteSize(text);
  if (bytes === undefined) {
    throw new ConfigError(
      `Invalid --memory: ${JSON.stringify(text)}: expected bytes, or a number with K, M, G or T`,
    );
  }
  return bytes;
}

/** `--resources`: a JSON object of custom resources and their amounts. */
function parseResources(text: string | undefined): Record<string, number> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`Invalid --resources: not JSON: ${errorMessage(err)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`Invalid --resources: expected an object such as {"license": 2}`);
  }
  const resources: Record<string, number> = {};
  for (const [name, amount] of Object.entries(parsed)) {
    if (STANDARD_RESOURCES.includes(name as typeof STANDARD_RESOURCES[number])) {
      throw new ConfigError(
        `Invalid --resources: set ${name} with --${
          name === "memory" ? "memory" : `num-${name.toLowerCase()}s`
        }`,
      );
    }
    if (typeof amount !== "number" || !Number.isFinite(amount) || amount < 0) {
      throw new ConfigError(`Invalid --resources: "${name}" must be a number of at least 0`);
    }
    resources[name] = amount;
  }
  return resources;
}

/** `value`, unless it is 0: a cap of nothing. */
function positive(name: string, value: number | undefined): number | undefined {
  if (value === 0) throw new ConfigError(`Invalid --${name}: it must be at least 1`);
  return value;
}

/** Whether the listen address `host` is loopback, where no token is needed: `::1` or a loopback name. */
export function isLoopback(host: string): boolean {
  return host === "::1" || isLoopbackName(host);
}

/**
 * Whether a URL host name (without its port) is loopback: exactly `localhost`, an IPv4
 * literal in 127.0.0.0/8 written as four decimal octets, or `[::1]`. Parsed, never
 * prefix-matched: `127.evil.example` is a DNS name anyone can point anywhere.
 */
export function isLoopbackName(name: string): boolean {
  const lower = name.toLowerCase();
  if (lower === "localhost" || lower === "[::1]") return true;
  const octets = lower.split(".");
  return octets.length === 4 && octets[0] === "127" && octets.every(isOctet);
}

function isOctet(text: string): boolean {
  return /^(0|[1-9][0-9]{0,2})$/.test(text) && Number(text) <= 255;
}

/** A value as one source gives it: a flag, an environment variable, or a config file key. */
type Raw = string | boolean | string[];

/** The options' values, each from the first source that has it. */
interface ResolvedOptions {
  string(name: OptionName): string;
  boolean(name: OptionName): boolean;
  list(name: OptionName): string[];
  number(name: OptionName, options?: { fractional?: boolean }): number;
  /** Undefined when no source sets it. */
  optionalNumber(name: OptionName, options?: { fractional?: boolean }): number | undefined;
  /** The text a source sets; undefined when none does. */
  optional(name: OptionName): string | undefined;
  token(): string | undefined;
}

function resolveOptions(
  args: string[],
  env: Record<string, string | undefined>,
  command: Command,
): ResolvedOptions {
  const taken = optionsOf(command);
  let flags: Record<string, Raw | undefined>;
  try {
    flags = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(
        taken.map((option) => [option.flag, {
          type: option.kind === "boolean" ? "boolean" as const : "string" as const,
          multiple: option.kind === "list",
        }]),
      ),
    }).values as Record<string, Raw | undefined>;
  } catch (err) {
    throw new ConfigError(`${errorMessage(err)}\n${usageOf(command)}`);
  }
  const fromEnv: Record<string, Raw | undefined> = {};
  for (const option of taken) {
    const text = env[option.env];
    if (text === undefined || text === "") continue;
    if (option.kind === "list") {
      fromEnv[option.flag] = text.split(",").map((s) => s.trim()).filter(Boolean);
    } else if (option.kind === "boolean") {
      fromEnv[option.flag] = parseBoolean(option.env, text);
    } else {
      fromEnv[option.flag] = text;
    }
  }
  const configPath = (flags.config ?? fromEnv.config) as string | undefined;
  const fromFile = configPath === undefined ? {} : readConfigFile(configPath, taken);
  const sources = [flags, fromEnv, fromFile];
  const first = (name: OptionName): Raw | undefined => {
    for (const source of sources) if (source[name] !== undefined) return source[name];
    return (OPTIONS as readonly OptionSpec[]).find((o) => o.flag === name)?.default;
  };
  const string = (name: OptionName) => String(first(name) ?? "");
  return {
    string,
    boolean: (name) => {
      const value = first(name);
      return typeof value === "string" ? parseBoolean(`--${name}`, value) : value === true;
    },
    // Lists add up: the file's, the environment's, then the flags' (as given, no repeats).
    list: (name) => [...new Set(sources.toReversed().flatMap((s) => (s[name] as string[]) ?? []))],
    number: (name, options) => parseNumber(name, string(name), options),
    optionalNumber: (name, options) =>
      first(name) === undefined ? undefined : parseNumber(name, string(name), options),
    optional: (name) => first(name) === undefined ? undefined : string(name),
    token: () => {
      for (const source of sources) {
        if (source.token !== undefined) return nonEmptyToken(String(source.token), "the token");
        const file = source["token-file"];
        if (file !== undefined) return readTokenFile(String(file));
      }
      return undefined;
    },
  };
}

/**
 * Reads a `--config` file: TOML when its name ends in `.toml`, JSON otherwise, with the
 * flags' names as keys. Throws ConfigError naming the file and what is wrong.
 */
function readConfigFile(path: string, taken: readonly OptionSpec[]): Record<string, Raw> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    throw new ConfigError(`Cannot read the config file ${path}: ${errorMessage(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = extname(path) === ".toml" ? parseToml(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`The config file ${path} is not valid: ${errorMessage(err)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`The config file ${path} must hold an object of options`);
  }
  const values: Record<string, Raw> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const option = taken.find((o) => o.flag === key);
    if (!option || option.flag === "config") {
      throw new ConfigError(`The config file ${path} has an unknown option "${key}"`);
    }
    const ok = option.kind === "list"
      ? Array.isArray(value) && value.every((v) => typeof v === "string")
      : option.kind === "boolean"
      ? typeof value === "boolean"
      : typeof value === "string" || typeof value === "number";
    if (!ok) {
      const expected = option.kind === "list"
        ? "a list of strings"
        : option.kind === "boolean"
        ? "true or false"
        : "a string or a number";
      throw new ConfigError(`The config file ${path}: "${key}" must be ${expected}`);
    }
    values[key] = typeof value === "number" ? String(value) : value as Raw;
  }
  return values;
}

function readTokenFile(file: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    throw new ConfigError(`Cannot read the token file ${file}: ${errorMessage(err)}`);
  }
  return nonEmptyToken(text.trim(), `the token file ${file}`);
}

function nonEmptyToken(token: string, source: string): string {
  if (token === "") throw new ConfigError(`The token given by ${source} is empty`);
  return token;
}

function parseBoolean(name: string, text: string): boolean {
  if (["1", "true", "yes"].includes(text.toLowerCase())) return true;
  if (["0", "false", "no"].includes(text.toLowerCase())) return false;
  throw new ConfigError(`Invalid ${name}: ${JSON.stringify(text)}: expected true or false`);
}

/** An octal directory mode that leaves its owner every right, e.g. `0750`. */
function parseDataMode(text: string): number {
  const mode = /^0?[0-7]{3}$/.test(text.trim()) ? parseInt(text, 8) : NaN;
  if (!(mode >= 0) || (mode & 0o700) !== 0o700) {
    throw new ConfigError(
      `Invalid --data-mode: ${JSON.stringify(text)}: an octal mode such as 0700 or 0750 ` +
        `that gives its owner read, write and execute`,
    );
  }
  return mode;
}

function parseChoice<T extends string>(name: string, text: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new ConfigError(`Invalid --${name}: ${JSON.stringify(text)}: one of ${choices.join(", ")}`);
}

function parseNumber(
  name: string,
  text: string,
  options: { max?: number; fractional?: boolean } = {},
): number {
  const value = Number(text);
  const valid = text.trim() !== "" && Number.isFinite(value) && value >= 0 &&
    (options.fractional || Number.isInteger(value)) && value <= (options.max ?? Infinity);
  if (!valid) throw new ConfigError(`Invalid --${name}: ${JSON.stringify(text)}`);
  return value;
}
