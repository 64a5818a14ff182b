/**
 * The actor registry: the one writer of actor records. The module that owns an actor (the
 * jobs module its supervisors, serve its replicas, an operator's module its own) records
 * it here; every change lands in the actor store, then goes out on the bus, so whoever
 * follows the bus (the event stream, metrics, other modules) sees every change.
 */
import type { ActorStore, ListActorsOptions } from "../storage/actors.ts";
import type { Actor, ActorState } from "./actor_record.ts";
import type { EventBus } from "./events.ts";

/** Records, removes and reads actor records; announces each change on the bus. */
export class ActorRegistry {
  #store: ActorStore<Actor>;
  #events: EventBus;

  constructor(store: ActorStore<Actor>, events: EventBus) {
    this.#store = store;
    this.#events = events;
  }

  /** Creates or replaces the records of `actors`, then announces each as an `actor` event. */
  async record(actors: readonly Actor[]): Promise<void> {
    if (actors.length === 0) return;
    await this.#store.put(actors);
    for (const actor of actors) this.#events.emit({ type: "actor", actor });
  }

  /** Removes records (ids not recorded are ignored), then announces each id as `actor-deleted`. */
  async remove(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#store.delete(ids);
    for (const actorId of ids) this.#events.emit({ type: "actor-deleted", actorId });
  }

  /** The actor, or undefined. */
  get(id: string): Promise<Actor | undefined> {
    return this.#store.get(id);
  }

  /** Actors matching every filter given, newest first, at most `limit`. */
  async list(options: ListActorsOptions<ActorState> & { limit?: number } = {}): Promise<Actor[]> {
    const actors = await this.#store.list(options);
    return options.limit === undefined ? actors : actors.slice(0, options.limit);
  }
}
