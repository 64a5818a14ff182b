/** Ray's dashboard envelope `{"result", "msg", "data"}` (API.md, "Dashboard modules"). */
import type { Context, Handler } from "hono";
import { errorBody, statusOf } from "./http.ts";
import type { Envelope } from "./schemas.ts";
import { createLogger } from "./log.ts";

const log = createLogger("head");

/**
 * A route answering in the envelope. What `handler` throws becomes `result: false` with
 * the status `statusOf()` gives it, and also carries the `error` object of API.md's
 * error format, so both Ray's clients and ours read it.
 */
export function enveloped(handler: (c: Context) => Promise<Envelope> | Envelope): Handler {
  return async (c) => {
    try {
      return c.json(await handler(c));
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) log.error("internal error:", err);
      const message = status >= 500 ? "Internal server error" : (err as Error).message;
      return c.json(
        { result: false, msg: message, data: {}, ...errorBody(status, message) },
        status,
      );
    }
  };
}
