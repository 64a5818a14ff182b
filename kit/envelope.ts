/** Ray's dashboard envelope `{"result", "msg", "data"}` (API.md, "Dashboard modules"). */
import type { Context, Handler } from "hono";
import { errorAnswer, errorBody } from "./http.ts";
import type { Envelope } from "./schemas.ts";

/**
 * A route answering in the envelope. What `handler` throws becomes `result: false` with
 * the status and message `errorAnswer()` gives it, and also carries the `error` object of API.md's
 * error format, so both Ray's clients and ours read it.
 */
export function enveloped(handler: (c: Context) => Promise<Envelope> | Envelope): Handler {
  return async (c) => {
    try {
      return c.json(await handler(c));
    } catch (err) {
      const { status, message } = errorAnswer(err);
      return c.json(
        { result: false, msg: message, data: {}, ...errorBody(status, message) },
        status,
      );
    }
  };
}
