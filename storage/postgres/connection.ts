/**
 * The connection to PostgreSQL as the store's parts see it: the npm:postgres client, the
 * store's URL as it may be shown (password masked), and `Guard`, through which every call
 * goes: it turns a lost or refused connection into StoreUnavailableError, fails fast while
 * the server stays away (backing off between attempts to reach it), and repeats a
 * transaction PostgreSQL aborted for a serialization failure or a deadlock, and once a call
 * that met a connection the server had ended (after a restart, the pool's idle ones).
 */
import type postgres from "postgres";
import { setTimeout as delay } from "node:timers/promises";
import { errorMessage, StoreUnavailableError } from "../errors.ts";

/** The npm:postgres client. */
export type Sql = postgres.Sql;

/** Errors of npm:postgres and of the network that mean the server cannot be reached now. */
const UNREACHABLE_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "NotConnected",
  "ConnectionRefused",
  "ConnectionReset",
  "BrokenPipe",
]);
/** SQLSTATEs of a server going away or not taking connections yet. */
const UNAVAILABLE_STATES = new Set(["57P01", "57P02", "57P03", "53300"]);
/**
 * SQLSTATEs of the server ending a connection (shut down, or an administrator): whatever
 * the call ran was rolled back, and a pooled connection the server ended while it was idle
 * tells it to its next call, though the server may well be back.
 */
const TERMINATED_STATES = new Set(["57P01", "57P02"]);
/** SQLSTATEs of a transaction PostgreSQL aborted that may succeed when tried again. */
const RETRY_STATES = new Set(["40001", "40P01"]);
const RETRY_ATTEMPTS = 20;

/** The first and the longest wait before the server is tried again after it was unreachable. */
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 2_000;

/** Whether `err` says the server cannot be reached now (rather than refusing the call). */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (typeof err !== "object" || err === null) return false;
  const { code, name } = err as { code?: unknown; name?: unknown };
  if (typeof code === "string") {
    if (UNREACHABLE_CODES.has(code) || UNAVAILABLE_STATES.has(code)) return true;
    if (code.startsWith("08")) return true; // connection exceptions
  }
  return typeof name === "string" && UNREACHABLE_CODES.has(name);
}

/** The SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** `url` with its password, if any, replaced by `***`: as the store is named to people. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.href;
  } catch {
    return url.replace(/:[^:@/]*@/, ":***@");
  }
}

/** Runs the store's calls, as described at the top of this file. */
export class Guard {
  #name: string;
  /** While the server is away: when it may be tried again, and the wait after that. */
  #away?: { until: number; waitMs: number; reason: string };
  #onChange: (available: boolean, reason: string) => void;

  /**
   * `name`: the store as messages name it (password masked); `onChange` hears when the
   * server goes away and when it answers again.
   */
  constructor(name: string, onChange: (available: boolean, reason: string) => void = () => {}) {
    this.#name = name;
    this.#onChange = onChange;
  }

  /** Whether the server answered the last call (or was not tried since it failed to). */
  get available(): boolean {
    return this.#away === undefined;
  }

  /**
   * Runs `call`. Throws StoreUnavailableError when the server cannot be reached, or was
   * not reached moments ago and its back-off has not passed; with `retryConflicts`, a
   * serialization failure or deadlock runs `call` again.
   */
  async run<T>(call: () => Promise<T>, options: { retryConflicts?: boolean } = {}): Promise<T> {
    if (this.#away && Date.now() < this.#away.until) throw this.#unavailable(this.#away.reason);
    for (let attempt = 1;; attempt++) {
      try {
        const result = await call();
        if (this.#away) {
          this.#away = undefined;
          this.#onChange(true, "");
        }
        return result;
      } catch (err) {
        // Once, on another connection: the pool drops the ended one.
        if (attempt === 1 && !this.#away && TERMINATED_STATES.has(sqlState(err) ?? "")) continue;
        if (isUnreachable(err)) {
          const reason = errorMessage(err);
          const waitMs = this.#away
            ? Math.min(this.#away.waitMs * 2, BACKOFF_MAX_MS)
            : BACKOFF_FIRST_MS;
          if (!this.#away) this.#onChange(false, reason);
          this.#away = { until: Date.now() + waitMs, waitMs, reason };
          throw this.#unavailable(reason);
        }
        const state = sqlState(err);
        if (
          options.retryConflicts && state && RETRY_STATES.has(state) && attempt < RETRY_ATTEMPTS
        ) {
          await delay(Math.random() * 5 * attempt);
          continue;
        }
        throw err;
      }
    }
  }

  #unavailable(reason: string): StoreUnavailableError {
    return new StoreUnavailableError(`The store ${this.#name} is unavailable: ${reason}`);
  }
}
