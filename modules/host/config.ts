/** The head's configuration: command-line flags, each with an environment twin (DESIGN.md). */
import { parseArgs } from "node:util";

/** Everything the head is configured with. */
export interface HeadConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Holds the KV file, the logs and the supervisors' run files. */
  dataDir: string;
  /** Bearer token; required when listening on a non-loopback address. */
  token?: string;
  /** Load only the modules marked minimal. */
  minimal: boolean;
  /** Operators' modules: paths or import specifiers. */
  modules: string[];
  /** Default grace between SIGTERM and SIGKILL when stopping a job. */
  stopGraceMs: number;
  /** Largest accepted JSON request body. */
  maxBodyBytes: number;
  /** A job's log past this size loses its middle, keeping its head and tail. */
  logMaxBytes: number;
  /** Logs of jobs that ended longer ago than this are deleted; 0 keeps them. */
  logRetentionDays: number;
  /** A log tail socket silent this long is pinged, and closed if no pong comes; 0: never. */
  tailIdleTimeoutS: number;
  /** Largest accepted package upload; DEFAULT_MAX_PACKAGE_BYTES when absent. */
  maxPackageBytes?: number;
  /** Open log tails at most; past it an upgrade is answered 503. DEFAULT_MAX_LOG_TAILS when absent. */
  maxLogTails?: number;
  /** Seconds a connection may take to send a request's headers; 0: no limit. */
  headerTimeoutS?: number;
  /** Open client connections at most; past it new ones are closed. From the fd limit when absent. */
  maxConnections?: number;
}

/** A configuration problem, reported to the operator as is. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Default grace between SIGTERM and SIGKILL on stop (API.md: 3 s). */
export const DEFAULT_STOP_GRACE_MS = 3_000;
/** Default cap on one job's log (1 GiB). */
export const DEFAULT_LOG_MAX_BYTES = 1024 ** 3;
/** Default limit on JSON request bodies. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Default limit on package uploads (zipped working directories). */
export const DEFAULT_MAX_PACKAGE_BYTES = 100 * 1024 * 1024;
/** Default cap on open log tails. */
export const DEFAULT_MAX_LOG_TAILS = 4096;
/** Default time a client has to send a request's headers. */
export const DEFAULT_HEADER_TIMEOUT_S = 30;

const USAGE = `Usage: main.ts start [options]
  --host HOST           address to listen on (JOBHEAD_HOST, default 127.0.0.1)
  --port PORT           port, 0 for a free one (JOBHEAD_PORT, default 8265)
  --data-dir DIR        KV file, logs and run files (JOBHEAD_DATA_DIR, default ./.jobhead)
  --token TOKEN         bearer token required on every API call (JOBHEAD_AUTH_TOKEN)
  --token-file FILE     read the token from FILE
  --minimal             load only the minimal modules (JOBHEAD_MINIMAL=1)
  --module SPEC         load an operator's module by path or specifier; repeatable
                        (JOBHEAD_MODULES, comma-separated)
  --stop-wait-s SECONDS grace between SIGTERM and SIGKILL on stop (JOBHEAD_STOP_WAIT_S, default 3)
  --max-body-bytes N    largest JSON request body (JOBHEAD_MAX_BODY_BYTES, default 1048576)
  --log-max-bytes N     cap on one job's log: past it the middle is dropped, head and tail
                        kept (JOBHEAD_LOG_MAX_BYTES, default 1073741824)
  --log-retention-days D  delete the logs of jobs that ended D days ago; 0 keeps them
                        (JOBHEAD_LOG_RETENTION_DAYS, default 0)
  --tail-idle-timeout-s S  ping a log tail socket silent for S seconds, close it if it
                        does not answer; 0 never (JOBHEAD_TAIL_IDLE_TIMEOUT_S, default 30)
  --max-package-bytes N largest working_dir package upload
                        (JOBHEAD_MAX_PACKAGE_BYTES, default 104857600)
  --max-log-tails N     open log tails at most; past it a tail is answered 503
                        (JOBHEAD_MAX_LOG_TAILS, default 4096)
  --header-timeout-s S  close a connection that takes longer than S seconds to send a
                        request's headers; 0 never (JOBHEAD_HEADER_TIMEOUT_S, default 30)
  --max-connections N   open client connections at most; past it new ones are closed
                        (JOBHEAD_MAX_CONNECTIONS, default 4096, less when the open-files
                        limit is lower: each connection may take 4 file descriptors)`;

/** The usage text of `main.ts start`. */
export function startUsage(): string {
  return USAGE;
}

/**
 * Builds the configuration from `args` (flags win) and `env`.
 * Throws ConfigError with a message for the operator.
 */
export function parseConfig(args: string[], env: Record<string, string | undefined>): HeadConfig {
  let flags;
  try {
    flags = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        "data-dir": { type: "string" },
        token: { type: "string" },
        "token-file": { type: "string" },
        minimal: { type: "boolean" },
        module: { type: "string", multiple: true },
        "stop-wait-s": { type: "string" },
        "max-body-bytes": { type: "string" },
        "log-max-bytes": { type: "string" },
        "log-retention-days": { type: "string" },
        "tail-idle-timeout-s": { type: "string" },
        "max-package-bytes": { type: "string" },
        "max-log-tails": { type: "string" },
        "header-timeout-s": { type: "string" },
        "max-connections": { type: "string" },
      },
    }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${USAGE}`);
  }
  const host = flags.host ?? env.JOBHEAD_HOST ?? "127.0.0.1";
  const port = parseNumber("port", flags.port ?? env.JOBHEAD_PORT ?? "8265", { max: 65535 });
  const token = readToken(flags.token, flags["token-file"], env.JOBHEAD_AUTH_TOKEN);
  if (!token && !isLoopback(host)) {
    throw new ConfigError(
      `Refusing to listen on ${host} without a token: anyone who can reach it could run ` +
        `commands on this machine. Set one with --token, --token-file or JOBHEAD_AUTH_TOKEN, ` +
        `or listen on 127.0.0.1.`,
    );
  }
  const envModules = (env.JOBHEAD_MODULES ?? "").split(",").map((m) => m.trim()).filter(Boolean);
  return {
    host,
    port,
    dataDir: flags["data-dir"] ?? env.JOBHEAD_DATA_DIR ?? "./.jobhead",
    token,
    minimal: flags.minimal ?? ["1", "true"].includes(env.JOBHEAD_MINIMAL ?? ""),
    modules: [...envModules, ...(flags.module ?? [])],
    stopGraceMs: 1000 *
      parseNumber("stop-wait-s", flags["stop-wait-s"] ?? env.JOBHEAD_STOP_WAIT_S ?? "3", {
        fractional: true,
      }),
    maxBodyBytes: parseNumber(
      "max-body-bytes",
      flags["max-body-bytes"] ?? env.JOBHEAD_MAX_BODY_BYTES ?? String(DEFAULT_MAX_BODY_BYTES),
    ),
    logMaxBytes: parseNumber(
      "log-max-bytes",
      flags["log-max-bytes"] ?? env.JOBHEAD_LOG_MAX_BYTES ?? String(DEFAULT_LOG_MAX_BYTES),
    ),
    logRetentionDays: parseNumber(
      "log-retention-days",
      flags["log-retention-days"] ?? env.JOBHEAD_LOG_RETENTION_DAYS ?? "0",
      { fractional: true },
    ),
    tailIdleTimeoutS: parseNumber(
      "tail-idle-timeout-s",
      flags["tail-idle-timeout-s"] ?? env.JOBHEAD_TAIL_IDLE_TIMEOUT_S ?? "30",
    ),
    maxPackageBytes: parseNumber(
      "max-package-bytes",
      flags["max-package-bytes"] ?? env.JOBHEAD_MAX_PACKAGE_BYTES ??
        String(DEFAULT_MAX_PACKAGE_BYTES),
    ),
    maxLogTails: parseNumber(
      "max-log-tails",
      flags["max-log-tails"] ?? env.JOBHEAD_MAX_LOG_TAILS ?? String(DEFAULT_MAX_LOG_TAILS),
    ),
    headerTimeoutS: parseNumber(
      "header-timeout-s",
      flags["header-timeout-s"] ?? env.JOBHEAD_HEADER_TIMEOUT_S ?? String(DEFAULT_HEADER_TIMEOUT_S),
      { fractional: true },
    ),
    maxConnections: optionalNumber(
      "max-connections",
      flags["max-connections"] ?? env.JOBHEAD_MAX_CONNECTIONS,
      { min: 1 },
    ),
  };
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

function readToken(
  flag: string | undefined,
  file: string | undefined,
  env: string | undefined,
): string | undefined {
  if (flag !== undefined) return nonEmptyToken(flag, "--token");
  if (file !== undefined) {
    try {
      return nonEmptyToken(Deno.readTextFileSync(file).trim(), `--token-file ${file}`);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`Cannot read the token file ${file}: ${(err as Error).message}`);
    }
  }
  return env ? env : undefined;
}

function nonEmptyToken(token: string, source: string): string {
  if (token === "") throw new ConfigError(`The token given by ${source} is empty`);
  return token;
}

function optionalNumber(
  name: string,
  text: string | undefined,
  options: { min?: number } = {},
): number | undefined {
  return text === undefined ? undefined : parseNumber(name, text, options);
}

function parseNumber(
  name: string,
  text: string,
  options: { min?: number; max?: number; fractional?: boolean } = {},
): number {
  const value = Number(text);
  const valid = text.trim() !== "" && Number.isFinite(value) && value >= (options.min ?? 0) &&
    (options.fractional || Number.isInteger(value)) && value <= (options.max ?? Infinity);
  if (!valid) throw new ConfigError(`Invalid --${name}: ${JSON.stringify(text)}`);
  return value;
}
