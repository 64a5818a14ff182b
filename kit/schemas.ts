/** Schemas every module answers with: Ray's dashboard envelope and the error body (API.md). */
import { z } from "zod";

/** The body of every dashboard-envelope response; an error one also has the usual `error`. */
export const Envelope = z.object({
  result: z.boolean(),
  msg: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type Envelope = z.infer<typeof Envelope>;

/**
 * The JSON body of every error response (API.md, "Errors"). An `id` names a schema in
 * the OpenAPI document (`components.schemas`), where routes refer to it.
 */
export const ErrorResponse = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
}).meta({ id: "ErrorResponse" });
export type ErrorResponse = z.infer<typeof ErrorResponse>;

/** An error answer of a dashboard-envelope route: the envelope, and the usual `error`. */
export const EnvelopeError = Envelope.extend({ result: z.literal(false) })
  .extend(ErrorResponse.shape)
  .meta({ id: "EnvelopeError" });
export type EnvelopeError = z.infer<typeof EnvelopeError>;
