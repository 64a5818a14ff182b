/** Errors the stores throw; `statusOf()` in kit/http.ts turns each into one HTTP status. */

/** The record asked for does not exist. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** A write lost a race or would duplicate a record. */
export class ConflictError extends Error {
  override name = "ConflictError";
}

/** The record exists but is in a state that forbids the operation. */
export class InvalidStateError extends Error {
  override name = "InvalidStateError";
}

/** A package is not a readable zip, or holds an entry that would land outside its target. */
export class InvalidPackageError extends Error {
  override name = "InvalidPackageError";
}

/** A write could not be stored because the disk holding the data is full. */
export class InsufficientStorageError extends Error {
  override name = "InsufficientStorageError";
}

/** Whether `err` is a write that failed for lack of disk space (ENOSPC, SQLite's SQLITE_FULL). */
export function isDiskFull(err: unknown): boolean {
  if (err instanceof InsufficientStorageError) return true;
  if (!(err instanceof Error)) return false;
  return (err as { code?: string }).code === "ENOSPC" ||
    /database or disk is full|No space left on device/.test(err.message);
}

/** What `err` says: an Error's message, or anything else as a string. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The store cannot be reached now (PostgreSQL is down, restarting, or the network is cut):
 * the call may succeed later. A write cut off this way may or may not have landed.
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

/** First and longest wait between the tries of `retryWhileUnavailable`. */
const UNAVAILABLE_RETRY_FIRST_MS = 25;
const UNAVAILABLE_RETRY_MAX_MS = 1_000;

/**
 * Runs `call` until it does not throw StoreUnavailableError, waiting longer between tries
 * (25 ms, doubling up to 1 s): for the reads of what must not be lost while the store is
 * away. Any other error passes through.
 */
export async function retryWhileUnavailable<T>(call: () => Promise<T>): Promise<T> {
  for (
    let waitMs = UNAVAILABLE_RETRY_FIRST_MS;;
    waitMs = Math.min(waitMs * 2, UNAVAILABLE_RETRY_MAX_MS)
  ) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
