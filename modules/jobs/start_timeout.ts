/**
 * How long a job may stay PENDING: the head's `--pending-timeout-s`, unless the job sets
 * Ray's `RAY_JOB_START_TIMEOUT_SECONDS` in its `runtime_env.env_vars`. Pure.
 */

/** Ray's per-job override, read from `runtime_env.env_vars`. */
export const START_TIMEOUT_ENV = "RAY_JOB_START_TIMEOUT_SECONDS";

/**
 * What is wrong with `envVars`' START_TIMEOUT_ENV, worded for a request error; undefined
 * when it is absent or a number of seconds above 0.
 */
export function startTimeoutProblem(
  envVars: Record<string, string> | undefined,
): string | undefined {
  const text = envVars?.[START_TIMEOUT_ENV];
  if (text === undefined || secondsOf(text) !== undefined) return undefined;
  return `runtime_env.env_vars.${START_TIMEOUT_ENV}: must be a number of seconds above 0`;
}

/** A job's start timeout in seconds: its own START_TIMEOUT_ENV, else `defaultS`. */
export function startTimeoutS(
  envVars: Record<string, string> | undefined,
  defaultS: number,
): number {
  const text = envVars?.[START_TIMEOUT_ENV];
  return (text === undefined ? undefined : secondsOf(text)) ?? defaultS;
}

/** The message of a job that timed out, as Ray words it. */
export function startTimeoutMessage(seconds: number): string {
  return `Job supervisor actor failed to start within ${seconds} seconds. This timeout can be ` +
    `configured by setting the environment variable ${START_TIMEOUT_ENV}.`;
}

function secondsOf(text: string): number | undefined {
  const seconds = Number(text);
  return text.trim() !== "" && Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
}
