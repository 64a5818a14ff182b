/**
 * jobhead's public API: the types a module author implements, and the request and
 * response schemas of the jobs API, shared by the server and its clients.
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
 * @module
 */
export type {
  HeadInfo,
  HeadModule,
  Logger,
  ModuleContext,
  ModuleFactory,
  Stores,
} from "./modules/host/module.ts";
export type { HeadEvent, HeadEventListener } from "./modules/host/events.ts";
export * from "./modules/jobs/schemas.ts";
