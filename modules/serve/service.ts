/**
 * The serve service: applies deployment specs, one controller per deployment, and
 * re-adopts the deployments and replicas a previous head left.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ValidationError } from "../../kit/errors.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { ConflictError, errorMessage, NotFoundError } from "../../storage/errors.ts";
import { FileLogStore, readLogRange } from "../../storage/logs.ts";
import {
  type Deployment,
  type DeploymentSpec,
  KvServeStore,
  type Replica,
  type ServeStore,
} from "../../storage/serve.ts";
import { checkLocalWorkingDir, resolveWorkingDir } from "../../storage/working_dirs.ts";
import { DeploymentController } from "./controller.ts";
import type { DeploymentDetails, ReplicaLogsResponse } from "./schemas.ts";

/** Applies, lists and deletes deployments. */
export class ServeService {
  #ctx: ModuleContext;
  #store: ServeStore;
  #logsDir: string;
  #controllers = new Map<string, DeploymentController>();

  constructor(ctx: ModuleContext) {
    this.#ctx = ctx;
    this.#store = new KvServeStore(ctx.kv, ctx.kvPrefix);
    this.#logsDir = join(ctx.config.dataDir, "serve_logs");
  }

  /** Takes over the deployments a previous head left, and their replicas; call once at start. */
  async adoptDeployments(): Promise<void> {
    for (const deployment of await this.#store.listDeployments()) {
      const replicas = await this.#store.listReplicas(deployment.name);
      const controller = await this.#controller(deployment, replicas);
      try {
        await controller.adopt();
      } catch (err) {
        this.#ctx.logger.error(`cannot adopt deployment "${deployment.name}":`, err);
      }
      if (controller.deleting) controller.delete().catch(() => {}); // finish what was begun
    }
  }

  /**
   * Creates a deployment, or updates one to `request`: another version replaces its
   * replicas one at a time, another `num_replicas` scales it. Throws ValidationError for
   * a bad working_dir, ConflictError while the deployment is being deleted.
   */
  async apply(request: DeploymentSpec): Promise<DeploymentDetails> {
    await checkWorkingDir(request.runtime_env.working_dir);
    const spec = { ...request, version: request.version ?? versionOf(request) };
    const existing = this.#controllers.get(spec.name);
    if (existing?.deleting) {
      throw new ConflictError(
        `Cannot update deployment "${spec.name}": deployment is DELETING`,
      );
    }
    if (existing) {
      await existing.update(spec);
      return existing.details();
    }
    const now = Date.now();
    const deployment: Deployment = {
      name: spec.name,
      spec,
      status: "UPDATING",
      message: "",
      created_at: now,
      updated_at: now,
    };
    const controller = await this.#controller(deployment);
    await controller.update(spec);
    return controller.details();
  }

  /** The deployment; throws NotFoundError. */
  get(name: string): DeploymentDetails {
    return this.#get(name).details();
  }

  /** Every deployment, by name. */
  list(): DeploymentDetails[] {
    return [...this.#controllers.keys()].sort().map((name) => this.get(name));
  }

  /** Stops every replica of a deployment and removes it; throws NotFoundError. */
  async delete(name: string): Promise<void> {
    await this.#get(name).delete();
  }

  /**
   * Reads a range of a replica's log, whole characters (a negative `offset` counts from
   * the end; the default is the last 16 MiB). Throws NotFoundError for an unknown replica.
   */
  async readLogs(
    name: string,
    actorId: string,
    range: { offset?: number; limit?: number },
  ): Promise<ReplicaLogsResponse> {
    const controller = this.#get(name);
    const actor = await this.#ctx.stores.actors.get(actorId);
    if (actor?.owner.kind !== "deployment" || actor.owner.id !== name) {
      throw new NotFoundError(`Replica ${actorId} of deployment ${name} does not exist`);
    }
    const chunk = await readLogRange(controller.logs, actorId, { ...range, fromEnd: true });
    return { logs: new TextDecoder().decode(chunk.bytes), offset: chunk.offset, size: chunk.size };
  }

  /** `data.snapshot.deployments`: every deployment, keyed by the SHA-1 of its name. */
  snapshot(): Record<string, DeploymentDetails> {
    return Object.fromEntries(this.list().map((d) => [sha1(d.name), d]));
  }

  /** Stops controlling; replicas keep running for the next head. Safe to call twice. */
  async close(): Promise<void> {
    await Promise.all([...this.#controllers.values()].map((c) => c.close()));
  }

  #get(name: string): DeploymentController {
    const controller = this.#controllers.get(name);
    if (!controller) throw new NotFoundError(`Deployment ${name} does not exist`);
    return controller;
  }

  async #controller(
    deployment: Deployment,
    replicas: Replica[] = [],
  ): Promise<DeploymentController> {
    const { name } = deployment;
    const logs = new FileLogStore(join(this.#logsDir, name));
    await Deno.mkdir(logs.dir, { recursive: true });
    // A second apply of a new name may have won the race meanwhile.
    const raced = this.#controllers.get(name);
    if (raced) return raced;
    const controller = new DeploymentController(
      {
        ctx: this.#ctx,
        store: this.#store,
        logs,
        onDeleted: () => {
          if (this.#controllers.get(name) === controller) this.#controllers.delete(name);
          Deno.remove(logs.dir, { recursive: true }).catch(() => {});
        },
      },
      deployment,
      replicas,
    );
    this.#controllers.set(name, controller);
    return controller;
  }
}

/** The version of a spec that names none: replicas are replaced when what they run changes. */
function versionOf(spec: DeploymentSpec): string {
  return sha1(JSON.stringify([spec.entrypoint, spec.runtime_env])).slice(0, 12);
}

function sha1(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

/** Throws ValidationError unless `workingDir` is none or a directory on the head. */
async function checkWorkingDir(workingDir: string | undefined): Promise<void> {
  try {
    if (resolveWorkingDir(workingDir)?.package) {
      throw new Error("packages are not supported for deployments");
    }
    if (workingDir !== undefined) await checkLocalWorkingDir(workingDir);
  } catch (err) {
    throw new ValidationError(`Invalid request: runtime_env.working_dir: ${errorMessage(err)}`);
  }
}
