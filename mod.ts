/**
 * jobhead's public API: the types a module author implements, the request and
 * response schemas of the jobs API, shared by the server and its clients, and the
 * HTTP client `JobClient` (Deno, Node 20+ and browsers; see client/http_client.ts).
 *
 * @example A module that serves one route
 * ```ts
 * import { Hono } from "npm:hono@4";
 * import type { HeadModule } from "./mod.ts";
 *
 * export function createModule(): HeadModule {
 *   return {
 *     name: "hello",
 *     minimal: true,
 *     routes: () => new Hono().get("/api/hello", (c) => c.json({ hello: "world" })),
 *   };
 * }
 * ```
 * A complete module, with KV, events, the worker pool and a snapshot section, is
 * `examples/hello_module.ts`; docs/modules.md describes the contract.
 *
 * @module
 */
export type {
  Counter,
  ExitHandler,
  ExitReason,
  Gauge,
  HeadInfo,
  HeadModule,
  Histogram,
  HistogramOptions,
  KillRequest,
  Logger,
  MetricOptions,
  MetricsScope,
  ModuleContext,
  ModuleFactory,
  ModuleView,
  RunSpec,
  Stores,
  SupervisedProcess,
  Supervisor,
  SupervisorIdentity,
} from "./kit/module.ts";
export type { HeadEvent, HeadEventListener } from "./kit/events.ts";
export { describeRoute, type MediaBody, type RouteDoc } from "./kit/route_doc.ts";
export type { WorkerPool } from "./kit/worker_pool.ts";
export * from "./modules/jobs/schemas.ts";
export * from "./modules/packages/schemas.ts";
export {
  DEFAULT_ADDRESS,
  JobClient,
  type JobClientOptions,
  type JobList,
  type SubmitJobOptions,
  type WebSocketConstructor,
  type WorkingDirUpload,
} from "./client/http_client.ts";
export {
  ConnectionError,
  JobheadError,
  TailClosedError,
  WorkingDirError,
} from "./client/errors.ts";
// Types only: packing a directory loads node:fs, which browsers lack (JobClient loads it lazily).
export type { PackWorkingDirOptions } from "./client/working_dir.ts";
export * from "./kit/schemas.ts";
export * from "./host/schemas.ts";
export * from "./modules/actors/schemas.ts";
export * from "./modules/serve/schemas.ts";
