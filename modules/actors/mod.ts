/**
 * The actors module: lists and kills supervised processes (job supervisors, serve replicas,
 * operators' modules' actors), and removes the records of long-dead ones.
 */
import type { HeadModule } from "../../kit/module.ts";
import { keepActorRetention } from "./retention.ts";
import { actorRoutes } from "./routes.ts";
import { ActorService } from "./service.ts";

/** Actors in the snapshot: the newest ones, as many as jobs there. */
const SNAPSHOT_ACTORS = 1000;

/** Creates the actors module. */
export function createModule(): HeadModule {
  let service: ActorService | undefined;
  return {
    name: "actors",
    minimal: true,
    routes(ctx) {
      service = new ActorService(ctx);
      return actorRoutes(service);
    },
    start(ctx) {
      if (ctx.config.actorRetentionMinutes > 0) {
        keepActorRetention(ctx.actors, {
          retentionMinutes: ctx.config.actorRetentionMinutes,
          now: Date.now,
          logger: ctx.logger,
          signal: ctx.signal,
        });
      }
    },
    async snapshot() {
      const actors = await service?.list({ limit: SNAPSHOT_ACTORS }) ?? [];
      return Object.fromEntries(actors.map((actor) => [actor.actor_id, actor]));
    },
  };
}
