/** Errors the client throws: from the head's answers, the network, log tails and uploads. */

/**
 * An error answer from the head, or a failure to talk to it. `code` is the API's error
 * code (`NOT_FOUND`, `CONFLICT`, `UNAUTHORIZED`, …) or one of the client's own:
 * `CONNECTION_FAILED`, `BAD_RESPONSE`, `TAIL_CLOSED`.
 */
export class JobheadError extends Error {
  override name = "JobheadError";
  /** The API's error code, or the client's own. */
  readonly code: string;
  /** The HTTP status; 0 when no answer arrived. */
  readonly status: number;

  constructor(message: string, options: { code: string; status: number; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.status = options.status;
  }
}

/** The head could not be reached (refused, unknown host, network down). */
export class ConnectionError extends JobheadError {
  override name = "ConnectionError";

  constructor(message: string, cause: unknown) {
    super(message, { code: "CONNECTION_FAILED", status: 0, cause });
  }
}

/** A log tail ended before its job did: the output so far is not the whole story. */
export class TailClosedError extends JobheadError {
  override name = "TailClosedError";
  /** The WebSocket close code (1001: the head shut down; 1006: the connection dropped). */
  readonly closeCode: number;
  /** Log byte offset to resume from: `tailJobLogs(id, { offset })`. */
  readonly offset: number;

  constructor(message: string, options: { closeCode: number; offset: number }) {
    super(message, { code: "TAIL_CLOSED", status: 0 });
    this.closeCode = options.closeCode;
    this.offset = options.offset;
  }
}

/** The directory cannot be packed: missing, over the size limit, or a link leads out of it. */
export class WorkingDirError extends Error {
  override name = "WorkingDirError";
}
