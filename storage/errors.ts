/** Errors the stores throw; the host turns each into one HTTP status. */

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
