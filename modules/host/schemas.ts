/** Schemas of the head's own responses: Ray's dashboard envelope and the snapshot (API.md). */
import { z } from "zod";

/** The body of every dashboard-envelope response; an error one also has the usual `error`. */
export const Envelope = z.object({
  result: z.boolean(),
  msg: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type Envelope = z.infer<typeof Envelope>;

/** `data.snapshot`: the head's facts, and one section per module that has one. */
export const Snapshot = z.object({
  session_name: z.string(),
  version: z.string(),
  commit: z.string(),
}).catchall(z.unknown());
export type Snapshot = z.infer<typeof Snapshot>;

/** The body of `GET /api/snapshot`. */
export const SnapshotResponse = z.object({
  result: z.literal(true),
  msg: z.string(),
  data: z.object({ snapshot: Snapshot }),
});
export type SnapshotResponse = z.infer<typeof SnapshotResponse>;
