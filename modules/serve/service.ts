/**
 * The serve service: applies deployment specs, one controller per deployment, and
 * re-adopts the deployments and replicas a previous head left. In a cluster the process
 * that schedules controls every deployment and places replicas on the live nodes; the
 * other heads pass serve requests on to it, and every node runs a serve agent for it.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { UnavailableError, ValidationError } from "../../kit/errors.ts";
import type { ClusterNode } from "../../kit/cluster.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { passOn } from "../../kit/pass_on.ts";
import { ConflictError, errorMessage, NotFoundError } from "../../storage/errors.ts";
import type { Deployment, DeploymentSpec } from "../../kit/deployment_record.ts";
import { KvServeStore, type ServeStore } from "../../storage/serve.ts";
import type { Replica } from "./replica.ts";
import { checkLocalWorkingDir, resolveWorkingDir } from "../../storage/working_dirs.ts";
import { DeploymentController } from "./controller.ts";
import { ReplicaAgent } from "./agent.ts";
import { placeReplica } from "./placement.ts";
import { LocalReplicaHost, RemoteReplicaHost, type ReplicaHost } from "./replica_host.ts";
import type { DeploymentDetails, ReplicaLogsResponse } from "./schemas.ts";

/** Marks a serve request one head passed on to the controlling one: it is not passed again. */
const FORWARDED_HEADER = "x-jobhead-forwarded";
/** How long a head that may schedule waits to control the deployments before it answers 503. */
const TAKE_OVER_WAIT_MS = 10_000;

/** Applies, lists and deletes deployments. */
export class ServeService {
  #ctx: ModuleContext;
  #store: ServeStore<Deployment, Replica>;
  #controllers = new Map<string, DeploymentController>();
  #local: LocalReplicaHost;
  #remote = new Map<string, RemoteReplicaHost>();
  /** In a cluster, where this process runs jobs: the agent other heads run replicas through. */
  readonly agent?: ReplicaAgent;
  /** Whether this process controls the deployments (always, on one machine). */
  #controlling: boolean;
  #tookOver = Promise.withResolvers<void>();
  #origin = crypto.randomUUID();
  #closed = new AbortController();

  constructor(ctx: ModuleContext) {
    this.#ctx = ctx;
    this.#store = new KvServeStore(ctx.kv, ctx.kvPrefix);
    const runsJobs = ctx.config.role === "node" || ctx.config.localJobs;
    this.#local = new LocalReplicaHost({
      supervisor: ctx.supervisor,
      logsDir: join(ctx.config.dataDir, "serve_logs"),
      nodeId: ctx.info.nodeId,
      node: ctx.cluster && runsJobs ? ctx.config.nodeName : undefined,
    });
    if (ctx.cluster && runsJobs) this.agent = new ReplicaAgent(this.#local, ctx.logger);
    this.#controlling = !ctx.cluster;
  }

  /**
   * Starts: on one machine, takes over the deployments a previous head left; in a cluster,
   * kills the replicas moved off this node while it was away, and waits to schedule.
   */
  async start(): Promise<void> {
    const cluster = this.#ctx.cluster;
    if (!cluster) return await this.#adoptDeployments();
    if (this.agent) {
      await this.#fence();
      cluster.onFence(() => this.#fence());
    }
    if (this.#ctx.config.role === "head") {
      cluster.onScheduling({
        takeOver: () => this.#takeOver(),
        nodeDied: (node, silentS) => this.#nodeDied(node, silentS),
      });
    }
  }

  /**
   * In a cluster, a serve request this head does not answer itself: passed on to the head
   * that controls the deployments, its answer as it is. Undefined when this process answers.
   * Throws UnavailableError while no head controls them.
   */
  async forward(request: Request): Promise<Response | undefined> {
    const cluster = this.#ctx.cluster;
    if (!cluster || this.#controlling) return undefined;
    if (request.headers.has(FORWARDED_HEADER)) {
      throw new UnavailableError("this head does not control the deployments: try again");
    }
    const controller = await this.#store.getController();
    let unreachable: UnavailableError | undefined;
    const elsewhere = controller && controller.origin !== this.#origin &&
      controller.address !== cluster.address;
    if (elsewhere) {
      try {
        return await passOn(controller.address, request, {
          token: cluster.token,
          requestHeaders: ["content-type"],
          addHeaders: { [FORWARDED_HEADER]: "1" },
          answerHeaders: ["content-type"],
          unreachable: (cause) =>
            new UnavailableError(
              `the head that controls the deployments (${controller.address}) is unreachable: ` +
                errorMessage(cause),
            ),
        });
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
        unreachable = err; // gone: this head may be the one to take over
      }
    }
    // A head that may schedule waits a while to control them: it is alone, it restarted,
    // or the one that controlled them died.
    if (this.#ctx.config.role === "head") {
      const waited = AbortSignal.timeout(TAKE_OVER_WAIT_MS);
      await Promise.race([
        this.#tookOver.promise,
        new Promise((resolve) => waited.addEventListener("abort", resolve, { once: true })),
      ]);
      if (this.#controlling) return undefined;
    }
    throw unreachable ?? new UnavailableError("no head controls the deployments yet: try again");
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
    const controller = this.#controller(deployment);
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
   * Reads a range of a replica's log, from its node, whole characters (a negative `offset`
   * counts from the end; the default is the last 16 MiB). Throws NotFoundError for an
   * unknown replica, UnavailableError when its node cannot be reached.
   */
  async readLogs(
    name: string,
    actorId: string,
    range: { offset?: number; limit?: number },
  ): Promise<ReplicaLogsResponse> {
    const controller = this.#get(name);
    const actor = await this.#ctx.actors.get(actorId);
    if (actor?.owner.kind !== "deployment" || actor.owner.id !== name) {
      throw new NotFoundError(`Replica ${actorId} of deployment ${name} does not exist`);
    }
    const node = (actor.metadata?.serve as { node?: string } | undefined)?.node;
    return await controller.readLog(actorId, node, { ...range, fromEnd: true });
  }

  /** `data.snapshot.deployments`: every deployment, keyed by the SHA-1 of its name. */
  snapshot(): Record<string, DeploymentDetails> {
    return Object.fromEntries(this.list().map((d) => [sha1(d.name), d]));
  }

  /** Stops controlling; replicas keep running for the next head. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed.abort();
    await Promise.all([...this.#controllers.values()].map((c) => c.close()));
    this.agent?.close();
  }

  /** Takes over the deployments a previous head left, and their replicas. */
  async #adoptDeployments(): Promise<void> {
    for (const deployment of await this.#store.listDeployments()) {
      if (this.#controllers.has(deployment.name)) continue; // adopted before a failure
      const replicas = await this.#store.listReplicas(deployment.name);
      const controller = this.#controller(deployment, replicas);
      try {
        await controller.adopt();
      } catch (err) {
        this.#ctx.logger.error(`cannot adopt deployment "${deployment.name}":`, err);
      }
      if (controller.deleting) controller.delete().catch(() => {}); // finish what was begun
    }
  }

  /** In a cluster, this process now schedules: it controls the deployments from here on. */
  async #takeOver(): Promise<void> {
    try {
      // Tried again after a failure: what was adopted stays, the record is written again.
      if (!this.#controlling) await this.#adoptDeployments();
      this.#controlling = true;
      await this.#store.putController({
        address: this.#ctx.cluster!.address,
        origin: this.#origin,
      });
      this.#tookOver.resolve();
    } catch (err) {
      this.#ctx.logger.error(`taking over the deployments failed: ${errorMessage(err)}`);
      throw err;
    }
  }

  async #nodeDied(node: ClusterNode, silentS: number): Promise<void> {
    const why = `its node "${node.name}" sent no heartbeat for ${silentS.toFixed(1)} s ` +
      `and was declared DEAD`;
    await Promise.all([...this.#controllers.values()].map((c) => c.nodeDied(node.name, why)));
  }

  /** Kills the replicas moved off this node while it was away (fencing). */
  async #fence(): Promise<void> {
    const node = this.#ctx.config.nodeName;
    const fenced = await this.#store.listFences(node);
    if (fenced.length === 0) return;
    await this.agent!.fence(fenced.map((r) => ({
      deployment: r.deployment,
      id: r.actor_id,
      identity: r.supervisor,
    })));
    for (const replica of fenced) await this.#store.deleteFence(node, replica.actor_id);
  }

  /** The host of the replicas on `node`; undefined while it is not alive. */
  #hostOf(node: string | undefined): ReplicaHost | undefined {
    const cluster = this.#ctx.cluster;
    if (!cluster || node === undefined || node === this.#local.node) return this.#local;
    if (cluster.nodeNamed(node)?.state !== "ALIVE") return undefined;
    let host = this.#remote.get(node);
    if (!host) {
      host = new RemoteReplicaHost(node, {
        lookup: () => cluster.nodeNamed(node),
        token: cluster.token,
        signal: this.#closed.signal,
      });
      this.#remote.set(node, host);
    }
    return host;
  }

  /** Where a deployment's next replica goes: the live node `placeReplica()` picks. */
  #placeNext(
    deployment: string,
    passOver: ReadonlySet<string | undefined>,
  ): ReplicaHost | undefined {
    const cluster = this.#ctx.cluster;
    if (!cluster) return this.#local;
    const total = new Map<string | undefined, number>();
    const counts = new Map<string | undefined, number>();
    for (const [name, controller] of this.#controllers) {
      for (const [node, count] of controller.replicasPerNode()) {
        total.set(node, (total.get(node) ?? 0) + count);
        if (name === deployment) counts.set(node, count);
      }
    }
    const node = placeReplica(
      cluster.nodes().filter((n) => n.state === "ALIVE" && !passOver.has(n.name)).map((n) => ({
        name: n.name,
        ofDeployment: counts.get(n.name) ?? 0,
        total: total.get(n.name) ?? 0,
      })),
    );
    return node === undefined ? undefined : this.#hostOf(node);
  }

  #get(name: string): DeploymentController {
    const controller = this.#controllers.get(name);
    if (!controller) throw new NotFoundError(`Deployment ${name} does not exist`);
    return controller;
  }

  #controller(deployment: Deployment, replicas: Replica[] = []): DeploymentController {
    const { name } = deployment;
    const controller = new DeploymentController(
      {
        ctx: this.#ctx,
        store: this.#store,
        hostOf: (node) => this.#hostOf(node),
        placeNext: (of, passOver) => this.#placeNext(of, passOver),
        onDeleted: () => {
          if (this.#controllers.get(name) === controller) this.#controllers.delete(name);
          this.#removeLogs(name);
        },
      },
      deployment,
      replicas,
    );
    this.#controllers.set(name, controller);
    return controller;
  }

  /** Removes a deleted deployment's logs from every node that may hold some. */
  #removeLogs(name: string): void {
    const hosts: ReplicaHost[] = [this.#local];
    for (const node of this.#ctx.cluster?.nodes() ?? []) {
      const host = this.#hostOf(node.name);
      if (host && host !== this.#local) hosts.push(host);
    }
    for (const host of hosts) {
      host.removeLogs(name).catch((err) => {
        this.#ctx.logger.warn(`removing the logs of "${name}" failed: ${errorMessage(err)}`);
      });
    }
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
