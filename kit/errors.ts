/** Errors about requests; `statusOf()` in kit/http.ts turns each into one HTTP status. */

/** The request is malformed: bad JSON, wrong types, unknown fields, bad id characters. */
export class ValidationError extends Error {
  override name = "ValidationError";
}

/** A token is required and the request has none. */
export class UnauthorizedError extends Error {
  override name = "UnauthorizedError";
}

/** The request body is over the configured limit. */
export class TooLargeError extends Error {
  override name = "TooLargeError";
}

/** The request is not allowed: its token is wrong, or another origin's page made it. */
export class ForbiddenError extends Error {
  override name = "ForbiddenError";
}

/** A limit of the head is reached (too many log tails, connections): try again later. */
export class UnavailableError extends Error {
  override name = "UnavailableError";
}
