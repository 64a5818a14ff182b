/**
 * The actor service: lists, reads and kills actors (supervised processes). The modules
 * that own actors record them through the registry in the context (`ctx.actors`); this
 * serves what they recorded, whatever module owns it.
 */
import type { Actor, ActorState } from "../../kit/actor_record.ts";
import type { KillRequest, ModuleContext } from "../../kit/module.ts";
import { stopGraceMs } from "../../kit/stop_grace.ts";
import { InvalidStateError, NotFoundError } from "../../storage/errors.ts";
import type { ListActorsOptions } from "../../storage/actors.ts";

/** Lists, reads and kills actors. */
export class ActorService {
  #ctx: ModuleContext;

  constructor(ctx: ModuleContext) {
    this.#ctx = ctx;
  }

  /** Actors matching the filters, newest first, at most `limit`. */
  list(options: ListActorsOptions<ActorState> & { limit?: number }): Promise<Actor[]> {
    return this.#ctx.actors.list(options);
  }

  /** The actor; throws NotFoundError. */
  async get(id: string): Promise<Actor> {
    const actor = await this.#ctx.actors.get(id);
    if (!actor) throw new NotFoundError(`Actor ${id} does not exist`);
    return actor;
  }

  /**
   * Kills an actor's supervisor, so its whole process group dies: at once with `force_kill`
   * (resolving once it is dead), else SIGTERM now and SIGKILL after the grace (resolving
   * at once). The owner learns of it from the process's end. Throws NotFoundError for an
   * unknown actor, InvalidStateError for one without a running process. Returns what was
   * done, for the response's `msg`.
   */
  async kill(id: string, request: KillRequest): Promise<string> {
    const actor = await this.get(id);
    const process = this.#ctx.supervisor.get(id);
    if (actor.state === "DEAD" || !process || process.settled) {
      throw new InvalidStateError(
        `Cannot kill actor "${id}": actor is ${actor.state} and has no running process`,
      );
    }
    const graceMs = stopGraceMs(actor.runtime_env.env_vars, this.#ctx.config.stopGraceMs);
    const killed = process.kill(request, graceMs);
    if (request.force_kill) {
      await killed;
      return `Force killed actor with id ${id}`;
    }
    killed.catch((err) => this.#ctx.logger.error(`killing actor "${id}" failed:`, err));
    return `Requested actor with id ${id} to terminate: SIGTERM now, SIGKILL after ${graceMs} ms`;
  }
}
