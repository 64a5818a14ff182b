/** The built-in modules, in load order: `main.ts` hands them to the head. */
import type { ModuleFactory } from "../kit/module.ts";
import * as actors from "./actors/mod.ts";
import * as jobs from "./jobs/mod.ts";
import * as packages from "./packages/mod.ts";
import * as serve from "./serve/mod.ts";
import * as ui from "./ui/mod.ts";

/** Created in this order; `--minimal` keeps the minimal ones. */
export const BUILT_IN_MODULES: readonly ModuleFactory[] = [
  jobs.createModule,
  packages.createModule,
  actors.createModule,
  serve.createModule,
  ui.createModule,
];

/**
 * A worker node's modules: jobs, and serve for its agent (the replicas the controlling
 * head places on it); their routes are the endpoint heads reach the node at.
 */
export const NODE_MODULES: readonly ModuleFactory[] = [jobs.createModule, serve.createModule];
