/**
 * Schemas of the head's own responses: the snapshot, the cluster (`GET /api/cluster`) and the
 * OpenAPI document (API.md).
 */
import { z } from "zod";

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

/** Named amounts: `CPU`, `GPU`, `memory` (bytes) and custom resources. */
const Amounts = z.record(z.string(), z.number());

/** One node in `GET /api/cluster`. */
export const ClusterNode = z.object({
  name: z.string(),
  /** ALIVE while it serves (the head's own node is ALIVE while the head answers). */
  state: z.enum(["ALIVE", "DEAD"]),
  /** When it last reported (ms since the epoch). */
  last_heartbeat: z.number(),
  total: Amounts,
  used: Amounts,
  free: Amounts,
  gpus_in_use: z.array(z.number().int()),
  running: z.number().int(),
  pending: z.number().int(),
  /** In a cluster: its agent's address. */
  address: z.string().optional(),
  /** In a cluster: its labels (`entrypoint_label_selector` matches them). */
  labels: z.record(z.string(), z.string()).optional(),
});

/** The body of `GET /api/cluster`. */
export const ClusterResponse = z.object({
  nodes: z.array(ClusterNode),
  running: z.number().int(),
  pending: z.number().int(),
  max_running_jobs: z.number().int().nullable(),
  reserve_after_s: z.number(),
}).meta({ id: "ClusterResponse" });
export type ClusterResponse = z.infer<typeof ClusterResponse>;

/** A JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1), as zod writes it. */
const JsonSchema = z.record(z.string(), z.unknown());

/** Bodies by media type. */
const OpenApiContent = z.record(z.string(), z.object({ schema: JsonSchema.optional() }));

/** One operation (a method on a path) of the OpenAPI document. */
export const OpenApiOperation = z.object({
  /** The module that serves it, or `head`. */
  tags: z.array(z.string()),
  summary: z.string().optional(),
  description: z.string().optional(),
  parameters: z.array(z.object({
    name: z.string(),
    in: z.enum(["path", "query"]),
    required: z.boolean(),
    description: z.string().optional(),
    schema: JsonSchema,
  })).optional(),
  requestBody: z.object({ required: z.boolean(), content: OpenApiContent }).optional(),
  /** By status, or `4XX`, `5XX`, `default`. */
  responses: z.record(
    z.string(),
    z.object({
      description: z.string(),
      headers: z.record(z.string(), z.object({ description: z.string(), schema: JsonSchema }))
        .optional(),
      content: OpenApiContent.optional(),
    }),
  ),
  /** Empty when the route needs no token. */
  security: z.array(z.record(z.string(), z.array(z.string()))),
});
export type OpenApiOperation = z.infer<typeof OpenApiOperation>;

/** The body of `GET /api/openapi.json`: an OpenAPI 3.1 document of every route served. */
export const OpenApiDocument = z.object({
  openapi: z.string().regex(/^3\.1\.\d+$/),
  info: z.object({ title: z.string(), version: z.string(), description: z.string() }),
  /** Path (`/api/jobs/{id}`) → lower-case method → operation. */
  paths: z.record(z.string(), z.record(z.string(), OpenApiOperation)),
  components: z.object({
    /** Schemas that are referenced (`$ref`) rather than written out: named or recursive ones. */
    schemas: z.record(z.string(), JsonSchema).optional(),
    securitySchemes: z.record(z.string(), JsonSchema),
  }),
});
export type OpenApiDocument = z.infer<typeof OpenApiDocument>;
