/**
 * The actor store: one record per supervised process (a job's supervisor, a serve
 * replica, …). Records are kept whole and replaced whole, in atomic batches; what they
 * mean belongs to the modules that own the actors (kit/actor_record.ts), and one
 * writer, the actor registry (kit/actor_registry.ts), writes them.
 */
import type { KvStore } from "./kv.ts";

/** What the store needs of a record: its id, and what `list()` filters and sorts by. */
export interface StoredActor {
  actor_id: string;
  class_name: string;
  namespace: string;
  state: string;
  owner: { kind: string; id: string };
  /** Null before it starts: listed before every started actor. */
  start_time: number | null;
}

/** Options of `ActorStore.list()`; every given filter must match. */
export interface ListActorsOptions<State extends string = string> {
  states?: readonly State[];
  className?: string;
  namespace?: string;
  owner?: { kind?: string; id?: string };
}

/** Durable actor records. */
export interface ActorStore<A extends StoredActor = StoredActor> {
  /** Creates or replaces the records of `actors`, in atomic batches. */
  put(actors: readonly A[]): Promise<void>;
  /** The actor, or undefined. */
  get(id: string): Promise<A | undefined>;
  /** Actors matching every filter given, newest start first (not yet started ones first). */
  list(options?: ListActorsOptions<A["state"]>): Promise<A[]>;
  /** Removes records; ids that do not exist are ignored. */
  delete(ids: readonly string[]): Promise<void>;
}

const ACTORS = "actors";
/** Mutations per atomic commit, at most. */
const BATCH = 100;
/** Bytes of records per atomic commit, at most: well inside Deno KV's limit on a commit. */
const BATCH_BYTES = 256 * 1024;

/** ActorStore on Deno KV: `["actors", id]`. */
export class KvActorStore<A extends StoredActor = StoredActor> implements ActorStore<A> {
  #kv: KvStore;

  constructor(kv: KvStore) {
    this.#kv = kv;
  }

  async put(actors: readonly A[]): Promise<void> {
    let op = this.#kv.atomic();
    let [count, bytes] = [0, 0];
    for (const actor of actors) {
      // A record carries its runtime_env, which may be large: batches are cut by size too.
      const size = JSON.stringify(actor).length;
      if (count > 0 && (count === BATCH || bytes + size > BATCH_BYTES)) {
        await op.commit();
        [op, count, bytes] = [this.#kv.atomic(), 0, 0];
      }
      op.set([ACTORS, actor.actor_id], actor);
      [count, bytes] = [count + 1, bytes + size];
    }
    if (count > 0) await op.commit();
  }

  async get(id: string): Promise<A | undefined> {
    return (await this.#kv.get<A>([ACTORS, id])).value ?? undefined;
  }

  async list(options: ListActorsOptions<A["state"]> = {}): Promise<A[]> {
    const actors: A[] = [];
    for await (const entry of this.#kv.list<A>({ prefix: [ACTORS] }, { batchSize: 500 })) {
      if (matches(entry.value, options)) actors.push(entry.value);
    }
    const startOf = (actor: A) => actor.start_time ?? Infinity;
    return actors.sort((a, b) => startOf(b) - startOf(a));
  }

  async delete(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) {
      const op = this.#kv.atomic();
      for (const id of ids.slice(i, i + BATCH)) op.delete([ACTORS, id]);
      await op.commit();
    }
  }
}

function matches(actor: StoredActor, options: ListActorsOptions): boolean {
  return (!options.states || options.states.includes(actor.state)) &&
    (options.className === undefined || actor.class_name === options.className) &&
    (options.namespace === undefined || actor.namespace === options.namespace) &&
    (options.owner?.kind === undefined || actor.owner.kind === options.owner.kind) &&
    (options.owner?.id === undefined || actor.owner.id === options.owner.id);
}
