/**
 * The head's own log, for operators: one line per event on stderr, as text
 * (`[module] error: …`) or, with `--log-format json`, one JSON object per line:
 * `{"time", "level", "module", "message", "job"?}`. Every line of the head goes through here.
 */

/** How the head writes its log lines. */
export type LogFormat = "text" | "json";

/** A log level. */
export type LogLevel = "info" | "warn" | "error";

/** Writes lines tagged with a module's name. */
export interface Logger {
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

let format: LogFormat = "text";

/** Sets the format of every logger's lines from now on (the head does it once at start). */
export function setLogFormat(next: LogFormat): void {
  format = next;
}

/** A logger whose lines say they come from `module`. */
export function createLogger(module: string): Logger {
  return {
    info: (message, ...details) => writeLine("info", module, message, details),
    warn: (message, ...details) => writeLine("warn", module, message, details),
    error: (message, ...details) => writeLine("error", module, message, details),
  };
}

/**
 * One log line as JSON. The job it concerns is taken from the message, where STYLE.md
 * puts ids: `… job "<id>" …`. An error among the details adds its message; its stack only
 * for errors that are bugs (not Deno's errors of I/O with a peer, which are plain events).
 */
export function formatJsonLine(
  level: LogLevel,
  module: string,
  message: string,
  details: unknown[],
  now = new Date(),
): string {
  const text = [message, ...details.map(describe)].join(" ");
  const job = /\bjob "([^"]+)"/.exec(message)?.[1];
  const line: Record<string, string> = {
    time: now.toISOString(),
    level,
    module,
    message: text,
  };
  if (job !== undefined) line.job = job;
  const stack = details.find((d): d is Error => d instanceof Error && isBug(d))?.stack;
  if (stack) line.stack = stack;
  return JSON.stringify(line);
}

function writeLine(level: LogLevel, module: string, message: string, details: unknown[]) {
  if (format === "json") {
    console.error(formatJsonLine(level, module, message, details));
    return;
  }
  const label = level === "info" ? [] : [`${level === "warn" ? "warning" : "error"}:`];
  console.error(
    `[${module}]`,
    ...label,
    message,
    ...details.map((d) => isBug(d) ? d : describe(d)),
  );
}

/** Errors of I/O with a peer or the disk are events, told in one line; others are bugs. */
function isBug(value: unknown): boolean {
  return value instanceof Error && !(value instanceof Deno.errors.BrokenPipe ||
    value instanceof Deno.errors.ConnectionReset || value instanceof Deno.errors.Interrupted ||
    value instanceof Deno.errors.NotFound || value instanceof Deno.errors.PermissionDenied ||
    value instanceof Deno.errors.ConnectionAborted ||
    (value as { code?: string }).code === "ENOSPC");
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
