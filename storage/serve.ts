/**
 * The serve store: the serve controller's state, under the serve module's KV prefix.
 * A deployment's record holds its spec and status; each of its replicas has a record
 * holding what a later head needs to re-adopt it. Each deployment's controller is the
 * only writer of its records, and writes them in order, so records are replaced whole.
 * What the records mean is the serve module's; the store needs only their keys. In a
 * cluster it also keeps which process controls the deployments, and the replicas moved off
 * a dead node that the node must kill when it is back.
 */
import type { KvStore } from "./kv.ts";

/** What the store needs of a deployment's record: its name. */
export interface StoredDeployment {
  name: string;
}

/** What the store needs of a replica's record: its actor id and its deployment's name. */
export interface StoredReplica {
  actor_id: string;
  deployment: string;
}

/** Durable serve controller state. */
export interface ServeStore<D extends StoredDeployment, R extends StoredReplica> {
  /** Creates or replaces a deployment's record. */
  putDeployment(deployment: D): Promise<void>;
  /** Every deployment, by name. */
  listDeployments(): Promise<D[]>;
  /** Removes a deployment and its replicas' records; safe to repeat. */
  deleteDeployment(name: string): Promise<void>;
  /** Creates or replaces a replica's record. */
  putReplica(replica: R): Promise<void>;
  /** The replicas of a deployment. */
  listReplicas(deployment: string): Promise<R[]>;
  /** Removes a replica's record; safe to repeat. */
  deleteReplica(deployment: string, actorId: string): Promise<void>;
  /**
   * Notes that a replica moved off `node` (declared DEAD) may still run there: the node
   * kills it when it is back (fencing).
   */
  putFence(node: string, replica: R): Promise<void>;
  /** The replicas moved off `node` that may still run there. */
  listFences(node: string): Promise<R[]>;
  /** Forgets a fence once its replica is gone; safe to repeat. */
  deleteFence(node: string, actorId: string): Promise<void>;
  /** Records which process controls the deployments now (in a cluster: the scheduling one). */
  putController(controller: ServeController): Promise<void>;
  /** The process that controls the deployments, as last recorded. */
  getController(): Promise<ServeController | undefined>;
}

/** The process that controls the deployments of a cluster. */
export interface ServeController {
  /** Its API's address, where the other heads pass serve requests on. */
  address: string;
  /** A random id of the process, new at each start. */
  origin: string;
}

/** ServeStore on Deno KV: `[...prefix, "deployments", name]`, `[...prefix, "replicas", name, id]`. */
export class KvServeStore<D extends StoredDeployment, R extends StoredReplica>
  implements ServeStore<D, R> {
  #kv: KvStore;
  #prefix: Deno.KvKey;

  /** `prefix`: the serve module's KV prefix, e.g. `["mod", "serve"]`. */
  constructor(kv: KvStore, prefix: Deno.KvKey) {
    this.#kv = kv;
    this.#prefix = prefix;
  }

  async putDeployment(deployment: D): Promise<void> {
    await this.#kv.set([...this.#prefix, "deployments", deployment.name], deployment);
  }

  async listDeployments(): Promise<D[]> {
    const deployments: D[] = [];
    const prefix = [...this.#prefix, "deployments"];
    for await (const entry of this.#kv.list<D>({ prefix })) deployments.push(entry.value);
    return deployments;
  }

  async deleteDeployment(name: string): Promise<void> {
    const op = this.#kv.atomic().delete([...this.#prefix, "deployments", name]);
    for await (const entry of this.#kv.list({ prefix: [...this.#prefix, "replicas", name] })) {
      op.delete(entry.key);
    }
    await op.commit();
  }

  async putReplica(replica: R): Promise<void> {
    await this.#kv.set(
      [...this.#prefix, "replicas", replica.deployment, replica.actor_id],
      replica,
    );
  }

  async listReplicas(deployment: string): Promise<R[]> {
    const replicas: R[] = [];
    const prefix = [...this.#prefix, "replicas", deployment];
    for await (const entry of this.#kv.list<R>({ prefix })) replicas.push(entry.value);
    return replicas;
  }

  async deleteReplica(deployment: string, actorId: string): Promise<void> {
    await this.#kv.delete([...this.#prefix, "replicas", deployment, actorId]);
  }

  async putFence(node: string, replica: R): Promise<void> {
    await this.#kv.set([...this.#prefix, "fences", node, replica.actor_id], replica);
  }

  async listFences(node: string): Promise<R[]> {
    const replicas: R[] = [];
    const prefix = [...this.#prefix, "fences", node];
    for await (const entry of this.#kv.list<R>({ prefix })) replicas.push(entry.value);
    return replicas;
  }

  async deleteFence(node: string, actorId: string): Promise<void> {
    await this.#kv.delete([...this.#prefix, "fences", node, actorId]);
  }

  async putController(controller: ServeController): Promise<void> {
    await this.#kv.set([...this.#prefix, "controller"], controller);
  }

  async getController(): Promise<ServeController | undefined> {
    return (await this.#kv.get<ServeController>([...this.#prefix, "controller"])).value ??
      undefined;
  }
}
