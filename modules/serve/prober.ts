/**
 * The health prober of a serve replica: runs its health check (an HTTP GET to its port,
 * or a shell command with its environment) over and over while it runs, and tells the
 * controller when it gets ready and when it has to be stopped. What each probe means is
 * decided by `judgeProbe()` in health.ts.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { HealthCheck } from "../../kit/deployment_record.ts";
import { judgeProbe, type ProbeRun } from "./health.ts";

/** Where and how a replica is probed. */
export interface ProbeTarget {
  /** The replica's `$PORT`: an HTTP check asks `http://<hostname>:<port>`. */
  port: number;
  /** The host of the replica's node; 127.0.0.1 when not given. */
  hostname?: string;
  /** Working directory of a command check. */
  cwd?: string;
  /** Environment of a command check. */
  env: Record<string, string>;
  /**
   * Runs a command check on the replica's node, for a replica of another node; by default
   * it runs here (`runCheckCommand()`).
   */
  runCommand?(command: string, timeoutS: number, signal: AbortSignal): Promise<boolean>;
}

/** What a prober watches, and whom it tells. Both getters are read before every probe. */
export interface HealthWatch {
  /** The check as the spec says now; once there is none, the replica is ready. */
  check(): HealthCheck | null | undefined;
  /** Where to probe, as the spec says now. */
  target(): ProbeTarget;
  /** Serving already (adopted by a new head): it only has to stay healthy. */
  ready?: boolean;
  /** Called when the replica passes a check for the first time in this run. */
  onReady(): void;
  /** Called once when the replica has to be stopped; the prober has ended then. */
  onUnhealthy(why: string): void;
}

/**
 * Probes a running replica until `signal` aborts or it has to be stopped: every 100 ms
 * until it first passes, then every `period_s` (see `judgeProbe()`).
 */
export async function watchHealth(watch: HealthWatch, signal: AbortSignal): Promise<void> {
  let run: ProbeRun = { ready: watch.ready ?? false, failures: 0, startedAt: Date.now() };
  while (!signal.aborted) {
    const check = watch.check();
    if (!check) return watch.onReady();
    const healthy = await probe(check, watch.target(), signal);
    if (signal.aborted) return;
    const verdict = judgeProbe(check, run, healthy, Date.now());
    if (verdict.action === "stop") return watch.onUnhealthy(verdict.why);
    if (verdict.run.ready && !run.ready) watch.onReady();
    run = verdict.run;
    try {
      await delay(verdict.waitMs, undefined, { signal });
    } catch {
      return;
    }
  }
}

/** Runs one health check; false on failure, on timeout, or when `signal` aborts. */
export async function probe(
  check: HealthCheck,
  target: ProbeTarget,
  signal: AbortSignal,
): Promise<boolean> {
  const deadline = new AbortController();
  const timeout = AbortSignal.any([signal, deadline.signal]);
  delay(check.timeout_s * 1000, undefined, { signal: timeout }).then(
    () => deadline.abort(),
    () => {}, // the probe ended first
  );
  try {
    if (check.http_path !== undefined) {
      const host = target.hostname ?? "127.0.0.1";
      const url = `http://${host.includes(":") ? `[${host}]` : host}:${target.port}` +
        check.http_path;
      const res = await fetch(url, { signal: timeout, redirect: "manual" });
      await res.body?.cancel();
      return res.status < 400;
    }
    if (target.runCommand) return await target.runCommand(check.command!, check.timeout_s, timeout);
    return await runCheckCommand(check.command!, target, timeout);
  } catch {
    return false;
  } finally {
    deadline.abort();
  }
}

/** Runs a command check with `sh -c` in `target`'s directory and environment: exits 0? */
export async function runCheckCommand(
  command: string,
  target: { cwd?: string; env: Record<string, string> },
  signal: AbortSignal,
): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("/bin/sh", {
      args: ["-c", command],
      cwd: target.cwd,
      env: target.env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      signal,
    }).output();
    return success;
  } catch {
    return false;
  }
}
