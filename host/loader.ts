/** Loads the head's modules: the built-ins, then operators' modules by path or specifier. */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Hono } from "hono";
import type { HeadConfig } from "./config.ts";
import type { Logger } from "../kit/log.ts";
import type { HeadModule, ModuleFactory, ModuleView } from "../kit/module.ts";
import { errorMessage } from "../storage/errors.ts";

/**
 * The modules to run under `config`: `builtIns` in their order (only minimal ones under
 * `--minimal`), then each `--module`. An operator's module that fails to load, or reuses a name, stops
 * the start (throws ModuleLoadError naming it) unless `skipBrokenModules`: then it is
 * reported and skipped, and the rest still load.
 */
export async function loadModules(
  config: HeadConfig,
  builtIns: readonly ModuleFactory[],
  logger: Logger,
): Promise<HeadModule[]> {
  const loaded: HeadModule[] = [];
  const broken = (source: string, why: string) => {
    if (!config.skipBrokenModules) {
      throw new ModuleLoadError(
        `module ${source} failed to load: ${why}. Fix it, or start with --skip-broken-modules ` +
          `to run without it`,
      );
    }
    logger.error(`module ${source} skipped: ${why}`);
  };
  const add = (module: HeadModule, source: string) => {
    const clash = loaded.find((m) => m.name === module.name);
    if (clash) {
      broken(source, `the name "${module.name}" is already taken`);
    } else if (config.minimal && !module.minimal) {
      logger.info(`module "${module.name}" not loaded: --minimal`);
    } else {
      loaded.push(module);
    }
  };
  for (const createModule of builtIns) add(await createModule(), "the built-ins");
  for (const spec of config.modules) {
    let module: HeadModule;
    try {
      module = await importModule(spec);
    } catch (err) {
      broken(spec, errorMessage(err));
      continue;
    }
    add(module, spec);
  }
  return loaded;
}

/** An operator's module could not be loaded, and broken modules are not to be skipped. */
export class ModuleLoadError extends Error {
  override name = "ModuleLoadError";
}

async function importModule(spec: string): Promise<HeadModule> {
  const url = /^[a-z][a-z0-9+.-]*:/i.test(spec) && !isAbsolute(spec)
    ? spec
    : pathToFileURL(resolve(spec)).href;
  const exports = await import(url);
  if (typeof exports.createModule !== "function") {
    throw new Error("it does not export a createModule() function");
  }
  const module = await exports.createModule();
  if (typeof module?.name !== "string" || !/^[a-z0-9_-]{1,64}$/i.test(module.name)) {
    throw new Error("createModule() must return an object with a name (letters, digits, _ and -)");
  }
  if (typeof module.minimal !== "boolean") module.minimal = false;
  if (module.views !== undefined) checkViews(module.views);
  return module;
}

/**
 * Checks a module's dashboard views: each has an id (`[a-z0-9_-]{1,64}`, unique), a
 * title and a `file:` URL. Throws an Error naming the first bad one.
 */
export function checkViews(views: unknown): asserts views is ModuleView[] {
  if (!Array.isArray(views)) throw new Error("views must be an array");
  const ids = new Set<string>();
  for (const [i, view] of views.entries()) {
    const id = view?.id;
    if (typeof id !== "string" || !/^[a-z0-9_-]{1,64}$/.test(id) || ids.has(id)) {
      throw new Error(`views[${i}].id must be unique, of a-z 0-9 _ and - (1 to 64)`);
    }
    ids.add(id);
    if (typeof view.title !== "string" || view.title.trim() === "") {
      throw new Error(`views[${i}].title must be a non-empty string`);
    }
    if (!(view.file instanceof URL) || view.file.protocol !== "file:") {
      throw new Error(`views[${i}].file must be a file: URL`);
    }
  }
}

/** Which module serves each route: two modules may not serve the same method and path. */
export class RouteTable {
  /** Normalized path → the methods claimed on it, and by whom. */
  #claims = new Map<string, { method: string; owner: string }[]>();

  /**
   * Claims every route of `app` for `owner` (e.g. `module "hello"`), or none of them:
   * throws an Error naming the route and both owners when one is taken already.
   */
  claim(owner: string, app: Hono): void {
    const routes = app.routes.filter((r) => !(r.method === "ALL" && r.path.endsWith("*")));
    for (const route of routes) {
      const taken = this.#claims.get(normalize(route.path))?.find((claim) =>
        claim.method === route.method || claim.method === "ALL" || route.method === "ALL"
      );
      if (taken) {
        throw new Error(
          `its route ${route.method} ${route.path} is already served by ${taken.owner}`,
        );
      }
    }
    for (const route of routes) {
      const claims = this.#claims.get(normalize(route.path)) ?? [];
      claims.push({ method: route.method, owner });
      this.#claims.set(normalize(route.path), claims);
    }
  }
}

/** A route path with its parameters unnamed: `/api/jobs/:id` and `/api/jobs/:name` clash. */
function normalize(path: string): string {
  return path.replace(/\/:[^/]+/g, "/:").replace(/(.)\/$/, "$1");
}
