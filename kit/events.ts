/** The head's event bus: job, actor and deployment changes, for modules and live views. */
import type { Actor } from "./actor_record.ts";
import type { Deployment } from "./deployment_record.ts";
import type { Job } from "./job_record.ts";
import { createLogger } from "./log.ts";

const log = createLogger("events");

/**
 * A state change announced on the bus, once it is stored: every change of a job, an actor
 * or a deployment is one.
 */
export type HeadEvent =
  /**
   * A job was submitted, or its record changed; `remote`: the change was made by another
   * process of the cluster (and is stored already).
   */
  | { type: "job"; job: Job; remote?: true }
  /** A job and its log were deleted; its supervisor actor's record goes with it. */
  | { type: "job-deleted"; jobId: string; remote?: true; node?: string }
  /** An actor's record was created or changed (`remote`: by another process of the cluster). */
  | { type: "actor"; actor: Actor; remote?: true }
  /** An actor's record was removed (its job was deleted, or it passed actor retention). */
  | { type: "actor-deleted"; actorId: string; remote?: true }
  /** A serve deployment's spec or status changed; `deployment` is null once it is deleted. */
  | { type: "deployment"; name: string; deployment: Deployment | null; remote?: true };

/** A listener; it must not throw (an error is logged and ignored). */
export type HeadEventListener = (event: HeadEvent) => void;

/** Synchronous publish/subscribe of HeadEvents. */
export class EventBus {
  #listeners = new Set<HeadEventListener>();

  /** Subscribes; the returned function unsubscribes (safe to call twice). */
  on(listener: HeadEventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Delivers `event` to every listener now. */
  emit(event: HeadEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        log.error("an event listener failed:", err);
      }
    }
  }
}
