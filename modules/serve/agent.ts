/**
 * A node's serve agent: in a cluster, the process that controls the deployments (the
 * scheduling head) runs replicas on other nodes through it (`RemoteReplicaHost`). It runs,
 * adopts, stops and kills replicas under this node's supervisor, keeps each end until the
 * controller has recorded it, runs command health checks, and reads and removes replica
 * logs. When this node comes back after being declared DEAD, it kills the replicas moved
 * off it meanwhile (fencing).
 */
import { Hono } from "hono";
import { z } from "zod";
import { UnavailableError, ValidationError } from "../../kit/errors.ts";
import { parseInput, readJson } from "../../kit/http.ts";
import type { Logger } from "../../kit/log.ts";
import { describeRoute } from "../../kit/route_doc.ts";
import {
  type ExitHandler,
  type ExitReason,
  KillRequest,
  type SupervisedProcess,
  SupervisorIdentity,
} from "../../kit/supervision.ts";
import { ActorId } from "../../kit/actor_record.ts";
import { ConflictError, NotFoundError } from "../../storage/errors.ts";
import type { LocalReplicaHost, ReplicaLaunch } from "./replica_host.ts";
import { DeploymentName, ReplicaLogsResponse } from "./schemas.ts";

/** A replica the agent runs or adopted for the controller. */
interface AgentReplica {
  process?: SupervisedProcess;
  /** Resolves with its end. */
  ended: PromiseWithResolvers<ExitReason>;
  /** Resolves true once the controller recorded its end, false when this process stops. */
  recorded: PromiseWithResolvers<boolean>;
}

/** Replicas this node runs for the controller, by actor id. */
export class ReplicaAgent {
  /** This node's replicas: their logs, health checks and ports. */
  readonly host: LocalReplicaHost;
  #logger: Logger;
  #replicas = new Map<string, AgentReplica>();
  /** Rejects once this process stops: the ends awaited are then asked of the next one. */
  #closing = Promise.withResolvers<never>();

  constructor(host: LocalReplicaHost, logger: Logger) {
    this.host = host;
    this.#logger = logger;
    this.#closing.promise.catch(() => {}); // not everyone awaits it
  }

  /** Runs a replica; its supervisor's identity. */
  async run(launch: ReplicaLaunch): Promise<SupervisorIdentity> {
    if (this.#replicas.has(launch.id)) {
      throw new ConflictError(`replica ${launch.id} runs already on this node`);
    }
    const entry = this.#track(launch.id);
    try {
      entry.process = await this.host.run(launch, this.#onExit(entry));
    } catch (err) {
      this.#replicas.delete(launch.id);
      throw err;
    }
    return entry.process.identity;
  }

  /** Takes back a replica (after this process restarted); its identity. NotFoundError if gone. */
  async adopt(
    deployment: string,
    id: string,
    identity: SupervisorIdentity | null,
  ): Promise<SupervisorIdentity> {
    const known = this.#replicas.get(id);
    if (known?.process) return known.process.identity;
    const entry = known ?? this.#track(id);
    const process = await this.host.adopt(deployment, id, identity, this.#onExit(entry));
    if (!process) {
      this.#replicas.delete(id);
      throw new NotFoundError(`replica ${id} does not run on this node`);
    }
    entry.process = process;
    return process.identity;
  }

  /** How the replica ended, once it has. NotFoundError for a replica this process does not know. */
  end(id: string): Promise<ExitReason> {
    const ended = this.#get(id).ended.promise;
    return Promise.race([ended, this.#closing.promise]);
  }

  /** The controller recorded the replica's end: its exit file may go. */
  release(id: string): void {
    this.#replicas.get(id)?.recorded.resolve(true);
    this.#replicas.delete(id);
  }

  /** Stops a replica; how it ended. */
  stop(id: string, graceMs: number): Promise<ExitReason> {
    return this.#running(id).stop(graceMs);
  }

  /** Kills a replica, as an actor kill does; how it ended. */
  kill(id: string, request: KillRequest, graceMs: number): Promise<ExitReason> {
    return this.#running(id).kill(request, graceMs);
  }

  /**
   * Kills the replicas moved off this node while it was away (`fenced`, from the store),
   * whether this process runs them or a previous one left them; returns those killed.
   */
  async fence(
    fenced: { deployment: string; id: string; identity: SupervisorIdentity | null }[],
  ): Promise<string[]> {
    const killed: string[] = [];
    for (const { deployment, id, identity } of fenced) {
      const known = this.#replicas.get(id)?.process;
      const process = known ??
        await this.host.adopt(deployment, id, identity, () => Promise.resolve(true));
      if (!process) continue;
      this.#logger.warn(
        `replica ${id} moved off this node while it was away: killing its processes ` +
          `(pid ${process.identity.pid})`,
      );
      await process.stop(0);
      this.release(id);
      killed.push(id);
    }
    return killed;
  }

  /** This process stops: the ends not yet recorded stay in their exit files for the next. */
  close(): void {
    this.#closing.reject(new UnavailableError("this node's process is stopping"));
    for (const entry of this.#replicas.values()) entry.recorded.resolve(false);
    this.#replicas.clear();
  }

  #track(id: string): AgentReplica {
    const entry: AgentReplica = {
      ended: Promise.withResolvers<ExitReason>(),
      recorded: Promise.withResolvers<boolean>(),
    };
    this.#replicas.set(id, entry);
    return entry;
  }

  #onExit(entry: AgentReplica): ExitHandler {
    return (reason) => {
      entry.ended.resolve(reason);
      return entry.recorded.promise;
    };
  }

  #get(id: string): AgentReplica {
    const entry = this.#replicas.get(id);
    if (!entry) throw new NotFoundError(`replica ${id} is not known to this node's process`);
    return entry;
  }

  #running(id: string): SupervisedProcess {
    const process = this.#get(id).process;
    if (!process) throw new NotFoundError(`replica ${id} is not running on this node`);
    return process;
  }
}

const ReplicaParams = z.object({ actorId: ActorId });
const Launch = z.strictObject({
  deployment: DeploymentName,
  command: z.string(),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()),
});
const LaunchRequest = Launch.extend({ id: ActorId });
const CheckRequest = LaunchRequest.extend({ timeout_s: z.number().positive() });
const PortsRequest = z.strictObject({ taken: z.array(z.number().int()) });
const LogRequest = z.strictObject({ deployment: DeploymentName });
const AdoptRequest = z.strictObject({
  deployment: DeploymentName,
  identity: SupervisorIdentity.nullable(),
});
const StopRequest = z.strictObject({ grace_ms: z.number().int().min(0) });
const AgentKillRequest = z.strictObject({
  force_kill: z.boolean(),
  no_restart: z.boolean(),
  grace_ms: z.number().int().min(0),
});
const LogsQuery = z.strictObject({
  deployment: DeploymentName,
  offset: z.coerce.number().int().optional(),
  limit: z.coerce.number().int().min(0).optional(),
});
/** How a replica ended (kit/supervision.ts `ExitReason`). */
const EndResponse = z.object({ reason: z.looseObject({ kind: z.enum(["exited", "died"]) }) });
const IdentityResponse = z.object({ identity: SupervisorIdentity });

/**
 * The agent's routes (`/api/serve/agent/…`, jobhead's own, for the heads of a cluster):
 * `agent()` is undefined where this process runs no replicas for others (404).
 */
export function agentRoutes(agent: () => ReplicaAgent | undefined): Hono {
  const app = new Hono();
  const need = (): ReplicaAgent => {
    const found = agent();
    if (!found) throw new NotFoundError("this process runs no serve replicas for a cluster");
    return found;
  };
  const actorId = (c: { req: { param(name: string): string } }) =>
    parseInput(ActorId, c.req.param("actorId"), "actor id");
  const internal = "Cluster-internal: the controlling head's call to a node's serve agent. ";

  app.post(
    "/api/serve/agent/ports",
    describeRoute({
      summary: `${internal}A port free on this node`,
      body: PortsRequest,
      response: z.object({ port: z.number().int() }),
    }),
    async (c) => {
      const { taken } = await readJson(c, PortsRequest);
      return c.json({ port: await need().host.freePort(taken) });
    },
  );
  app.post(
    "/api/serve/agent/replicas/:actorId/log",
    describeRoute({
      summary: `${internal}Creates a replica's log`,
      params: ReplicaParams,
      body: LogRequest,
      response: z.object({ created: z.boolean() }),
    }),
    async (c) => {
      const { deployment } = await readJson(c, LogRequest);
      await need().host.createLog(deployment, actorId(c));
      return c.json({ created: true });
    },
  );
  app.post(
    "/api/serve/agent/replicas/:actorId/run",
    describeRoute({
      summary: `${internal}Runs a replica`,
      params: ReplicaParams,
      body: LaunchRequest,
      response: IdentityResponse,
    }),
    async (c) => {
      const launch = await readJson(c, LaunchRequest);
      if (launch.id !== actorId(c)) {
        throw new ValidationError("Invalid request: id: not the path's");
      }
      return c.json({ identity: await need().run(launch) });
    },
  );
  app.post(
    "/api/serve/agent/replicas/:actorId/adopt",
    describeRoute({
      summary: `${internal}Takes back a replica this node runs`,
      params: ReplicaParams,
      body: AdoptRequest,
      response: IdentityResponse,
    }),
    async (c) => {
      const { deployment, identity } = await readJson(c, AdoptRequest);
      return c.json({ identity: await need().adopt(deployment, actorId(c), identity) });
    },
  );
  app.get(
    "/api/serve/agent/replicas/:actorId/end",
    describeRoute({
      summary: `${internal}Answers once the replica has ended, how`,
      params: ReplicaParams,
      response: EndResponse,
    }),
    async (c) => c.json({ reason: await need().end(actorId(c)) }),
  );
  app.post(
    "/api/serve/agent/replicas/:actorId/release",
    describeRoute({
      summary: `${internal}The replica's end is recorded: its exit file may go`,
      params: ReplicaParams,
      response: z.object({ released: z.boolean() }),
    }),
    (c) => {
      need().release(actorId(c));
      return c.json({ released: true });
    },
  );
  app.post(
    "/api/serve/agent/replicas/:actorId/stop",
    describeRoute({
      summary: `${internal}Stops a replica; how it ended`,
      params: ReplicaParams,
      body: StopRequest,
      response: EndResponse,
    }),
    async (c) => {
      const { grace_ms } = await readJson(c, StopRequest);
      return c.json({ reason: await need().stop(actorId(c), grace_ms) });
    },
  );
  app.post(
    "/api/serve/agent/replicas/:actorId/kill",
    describeRoute({
      summary: `${internal}Kills a replica as an actor kill does; how it ended`,
      params: ReplicaParams,
      body: AgentKillRequest,
      response: EndResponse,
    }),
    async (c) => {
      const { grace_ms, ...request } = await readJson(c, AgentKillRequest);
      return c.json({ reason: await need().kill(actorId(c), request, grace_ms) });
    },
  );
  app.post(
    "/api/serve/agent/replicas/:actorId/check",
    describeRoute({
      summary: `${internal}Runs a command health check beside a replica`,
      params: ReplicaParams,
      body: CheckRequest,
      response: z.object({ healthy: z.boolean() }),
    }),
    async (c) => {
      const { command, timeout_s, ...launch } = await readJson(c, CheckRequest);
      return c.json({ healthy: await need().host.check(command, launch, timeout_s) });
    },
  );
  app.get(
    "/api/serve/agent/replicas/:actorId/logs",
    describeRoute({
      summary: `${internal}A range of a replica's log`,
      params: ReplicaParams,
      query: LogsQuery,
      response: ReplicaLogsResponse,
    }),
    async (c) => {
      const { deployment, ...range } = parseInput(LogsQuery, c.req.query(), "query");
      const answer = await need().host.readLog(deployment, actorId(c), {
        ...range,
        fromEnd: true,
      });
      return c.json(answer satisfies ReplicaLogsResponse);
    },
  );
  app.delete(
    "/api/serve/agent/deployments/:name/logs",
    describeRoute({
      summary: `${internal}Removes a deployment's replica logs from this node`,
      params: z.object({ name: DeploymentName }),
      response: z.object({ removed: z.boolean() }),
    }),
    async (c) => {
      const name = parseInput(DeploymentName, c.req.param("name"), "deployment name");
      await need().host.removeLogs(name);
      return c.json({ removed: true });
    },
  );
  return app;
}
