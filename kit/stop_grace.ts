/**
 * The grace between SIGTERM and SIGKILL when a process is stopped: the head's
 * `--stop-wait-s`, unless the process was started with its own in `runtime_env.env_vars`.
 */

/** The per-process grace override in `runtime_env.env_vars`, in seconds (API.md). */
export const STOP_WAIT_ENV = "JOBHEAD_STOP_WAIT_S";

/**
 * What is wrong with `envVars`' STOP_WAIT_ENV, worded for a request error; undefined when
 * it is absent or a number of seconds >= 0.
 */
export function stopWaitProblem(envVars: Record<string, string> | undefined): string | undefined {
  const text = envVars?.[STOP_WAIT_ENV];
  if (text === undefined || stopWaitSeconds(text) !== undefined) return undefined;
  return `runtime_env.env_vars.${STOP_WAIT_ENV}: must be a number of seconds >= 0`;
}

/** The grace for a process started with `envVars`: its own STOP_WAIT_ENV, else `defaultMs`. */
export function stopGraceMs(
  envVars: Record<string, string> | undefined,
  defaultMs: number,
): number {
  const text = envVars?.[STOP_WAIT_ENV];
  const seconds = text === undefined ? undefined : stopWaitSeconds(text);
  return seconds === undefined ? defaultMs : seconds * 1000;
}

function stopWaitSeconds(text: string): number | undefined {
  const seconds = Number(text);
  return text.trim() !== "" && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
