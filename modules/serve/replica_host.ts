/**
 * Where a serve replica runs: a node's supervisor and log files. The controller works with
 * every node alike through `ReplicaHost`: `LocalReplicaHost` for the node of its own
 * process, `RemoteReplicaHost` for another node of a cluster, through that node's serve
 * agent (agent.ts) over HTTP with the cluster's token.
 */
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { UnavailableError } from "../../kit/errors.ts";
import type {
  ExitHandler,
  ExitReason,
  KillRequest,
  SupervisedProcess,
  Supervisor,
  SupervisorIdentity,
} from "../../kit/supervision.ts";
import { errorMessage, NotFoundError } from "../../storage/errors.ts";
import { FileLogStore, type LogReadRange, readLogRange } from "../../storage/logs.ts";
import { runCheckCommand } from "./prober.ts";
import type { ReplicaLogsResponse } from "./schemas.ts";

/** What runs a replica: its command, where, and with what environment (`$PORT` included). */
export interface ReplicaLaunch {
  id: string;
  deployment: string;
  command: string;
  cwd?: string;
  env: Record<string, string>;
}

/** A node that runs replicas, as the controller sees it. */
export interface ReplicaHost {
  /** The node's name (in a cluster), undefined for the process's own node on one machine. */
  readonly node?: string;
  /** The node's Ray node id, for its replicas' actor records. */
  readonly nodeId: string;
  /** The host name the node's replicas are reached at (HTTP health checks). */
  readonly hostname: string;
  /** A port nothing listens on at the node now, not in `taken`: a new replica's `$PORT`. */
  freePort(taken: number[]): Promise<number>;
  /** Creates a new replica's (empty) log. */
  createLog(deployment: string, actorId: string): Promise<void>;
  /** Runs a replica under the node's supervisor; `onExit` records its end. */
  run(launch: ReplicaLaunch, onExit: ExitHandler): Promise<SupervisedProcess>;
  /**
   * Takes back a replica the node runs (`identity` from its record, or null to look for it
   * by its marker): undefined when there is none.
   */
  adopt(
    deployment: string,
    id: string,
    identity: SupervisorIdentity | null,
    onExit: ExitHandler,
  ): Promise<SupervisedProcess | undefined>;
  /** Runs a command health check beside the replica; true when it exits 0. */
  check(command: string, launch: Omit<ReplicaLaunch, "command">, timeoutS: number): Promise<
    boolean
  >;
  /** A range of a replica's log, whole characters. */
  readLog(deployment: string, actorId: string, range: LogReadRange): Promise<ReplicaLogsResponse>;
  /** Removes a deployment's logs from the node; safe to repeat. */
  removeLogs(deployment: string): Promise<void>;
}

/** The replicas of this process's own node: its supervisor, its `serve_logs` directory. */
export class LocalReplicaHost implements ReplicaHost {
  readonly node?: string;
  readonly nodeId: string;
  readonly hostname = "127.0.0.1";
  #supervisor: Supervisor;
  #logsDir: string;

  constructor(
    options: { supervisor: Supervisor; logsDir: string; nodeId: string; node?: string },
  ) {
    this.#supervisor = options.supervisor;
    this.#logsDir = options.logsDir;
    this.nodeId = options.nodeId;
    this.node = options.node;
  }

  freePort(taken: number[]): Promise<number> {
    return Promise.resolve(freePort(new Set(taken)));
  }

  createLog(deployment: string, actorId: string): Promise<void> {
    return this.#logs(deployment).create(actorId); // makes the directory, private, if missing
  }

  run(launch: ReplicaLaunch, onExit: ExitHandler): Promise<SupervisedProcess> {
    return this.#supervisor.run({
      id: launch.id,
      command: launch.command,
      logPath: this.#logs(launch.deployment).pathOf(launch.id),
      cwd: launch.cwd,
      env: launch.env,
    }, onExit);
  }

  async adopt(
    _deployment: string,
    id: string,
    identity: SupervisorIdentity | null,
    onExit: ExitHandler,
  ): Promise<SupervisedProcess | undefined> {
    return identity
      ? await this.#supervisor.adopt(id, identity, onExit)
      : await this.#supervisor.adopt(id, null, onExit);
  }

  check(
    command: string,
    launch: Omit<ReplicaLaunch, "command">,
    timeoutS: number,
  ): Promise<boolean> {
    return runCheckCommand(command, launch, AbortSignal.timeout(timeoutS * 1000));
  }

  async readLog(
    deployment: string,
    actorId: string,
    range: LogReadRange,
  ): Promise<ReplicaLogsResponse> {
    const chunk = await readLogRange(this.#logs(deployment), actorId, range);
    return { logs: new TextDecoder().decode(chunk.bytes), offset: chunk.offset, size: chunk.size };
  }

  async removeLogs(deployment: string): Promise<void> {
    await Deno.remove(join(this.#logsDir, deployment), { recursive: true }).catch(() => {});
  }

  #logs(deployment: string): FileLogStore {
    return new FileLogStore(join(this.#logsDir, deployment));
  }
}

/** How long a node may take to answer a request (a stop waits for its grace on top). */
const ANSWER_TIMEOUT_MS = 10_000;
/** Between tries to reach a node that did not answer while a replica's end is awaited. */
const RETRY_MS = 500;

/** Another node's replicas, through its serve agent. */
export class RemoteReplicaHost implements ReplicaHost {
  readonly node: string;
  #lookup: () => { id: string; address: string } | undefined;
  #token?: string;
  /** Aborted when the controller stops: the ends awaited from the node are left to the next. */
  #signal: AbortSignal;

  /**
   * `lookup` reads the node's row as last known: its address is looked up at each call,
   * so a node that restarted on another port is found again.
   */
  constructor(
    node: string,
    options: {
      lookup: () => { id: string; address: string } | undefined;
      token?: string;
      signal: AbortSignal;
    },
  ) {
    this.node = node;
    this.#lookup = options.lookup;
    this.#token = options.token;
    this.#signal = options.signal;
  }

  get nodeId(): string {
    return this.#lookup()?.id ?? "";
  }

  get hostname(): string {
    const address = this.#lookup()?.address;
    return address ? new URL(address).hostname : "127.0.0.1";
  }

  async freePort(taken: number[]): Promise<number> {
    return (await this.call<{ port: number }>("POST", "ports", { taken })).port;
  }

  async createLog(deployment: string, actorId: string): Promise<void> {
    await this.call("POST", `replicas/${actorId}/log`, { deployment });
  }

  async run(launch: ReplicaLaunch, onExit: ExitHandler): Promise<SupervisedProcess> {
    const { identity } = await this.call<{ identity: SupervisorIdentity }>(
      "POST",
      `replicas/${launch.id}/run`,
      launch,
    );
    return new RemoteReplica(this, launch.deployment, launch.id, identity, onExit);
  }

  async adopt(
    deployment: string,
    id: string,
    identity: SupervisorIdentity | null,
    onExit: ExitHandler,
  ): Promise<SupervisedProcess | undefined> {
    try {
      const answer = await this.call<{ identity: SupervisorIdentity }>(
        "POST",
        `replicas/${id}/adopt`,
        { deployment, identity },
      );
      return new RemoteReplica(this, deployment, id, answer.identity, onExit);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async check(
    command: string,
    launch: Omit<ReplicaLaunch, "command">,
    timeoutS: number,
  ): Promise<boolean> {
    try {
      const answer = await this.call<{ healthy: boolean }>("POST", `replicas/${launch.id}/check`, {
        ...launch,
        command,
        timeout_s: timeoutS,
      });
      return answer.healthy;
    } catch {
      return false;
    }
  }

  async readLog(
    deployment: string,
    actorId: string,
    range: LogReadRange,
  ): Promise<ReplicaLogsResponse> {
    const query = new URLSearchParams({ deployment });
    if (range.offset !== undefined) query.set("offset", String(range.offset));
    if (range.limit !== undefined) query.set("limit", String(range.limit));
    return await this.call<ReplicaLogsResponse>("GET", `replicas/${actorId}/logs?${query}`);
  }

  async removeLogs(deployment: string): Promise<void> {
    await this.call("DELETE", `deployments/${encodeURIComponent(deployment)}/logs`);
  }

  /** Whether the controller has stopped: no more waiting on this node. */
  get closed(): AbortSignal {
    return this.#signal;
  }

  /**
   * Calls the node's agent at `/api/serve/agent/<path>`; its JSON answer. Throws
   * NotFoundError on a 404, UnavailableError naming the node when it cannot be reached or
   * fails.
   */
  async call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<T> {
    const address = this.#lookup()?.address;
    if (!address) throw new UnavailableError(`node "${this.node}" is not known`);
    const headers = new Headers({ "content-type": "application/json" });
    if (this.#token) headers.set("authorization", `Bearer ${this.#token}`);
    const timeoutMs = options.timeoutMs ?? ANSWER_TIMEOUT_MS;
    const signals = [options.signal ?? this.#signal];
    if (timeoutMs > 0) signals.push(AbortSignal.timeout(timeoutMs));
    let answer: Response;
    try {
      answer = await fetch(new URL(`/api/serve/agent/${path}`, address), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      throw new UnavailableError(
        `node "${this.node}" (${address}) is unreachable: ${errorMessage(err)}`,
      );
    }
    const text = await answer.text();
    if (answer.ok) {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new UnavailableError(`node "${this.node}" answered something other than JSON`);
      }
    }
    let message = text;
    try {
      message = JSON.parse(text).error.message;
    } catch {
      // not our JSON error: the text as it is
    }
    if (answer.status === 404) throw new NotFoundError(message);
    throw new UnavailableError(`node "${this.node}" answered ${answer.status}: ${message}`);
  }
}

/**
 * A replica on another node. It waits for the replica's end on the node (a long poll,
 * taken up again if the node's process restarts) and records it with the controller's
 * `onExit`; the node keeps the end until the controller has recorded it.
 */
class RemoteReplica implements SupervisedProcess {
  readonly id: string;
  readonly identity: SupervisorIdentity;
  settled = false;
  #host: RemoteReplicaHost;
  #deployment: string;
  #onExit: ExitHandler;
  #abandoned = new AbortController();

  constructor(
    host: RemoteReplicaHost,
    deployment: string,
    id: string,
    identity: SupervisorIdentity,
    onExit: ExitHandler,
  ) {
    this.#host = host;
    this.#deployment = deployment;
    this.id = id;
    this.identity = identity;
    this.#onExit = onExit;
    this.#awaitEnd();
  }

  async stop(graceMs: number): Promise<ExitReason> {
    const { reason } = await this.#host.call<{ reason: ExitReason }>(
      "POST",
      `replicas/${this.id}/stop`,
      { grace_ms: graceMs },
      { timeoutMs: graceMs + ANSWER_TIMEOUT_MS },
    );
    return reason;
  }

  async kill(request: KillRequest, graceMs: number): Promise<ExitReason> {
    const { reason } = await this.#host.call<{ reason: ExitReason }>(
      "POST",
      `replicas/${this.id}/kill`,
      { ...request, grace_ms: graceMs },
      { timeoutMs: graceMs + ANSWER_TIMEOUT_MS },
    );
    return reason;
  }

  /** Stops waiting for its end: its node was declared DEAD and the replica moved. */
  abandon(): void {
    this.#abandoned.abort();
  }

  async #awaitEnd(): Promise<void> {
    const reason = await this.#end();
    if (!reason) return;
    this.settled = true;
    if (await this.#onExit(reason, this).catch(() => false)) {
      await this.#host.call("POST", `replicas/${this.id}/release`, {}).catch(() => {});
    }
  }

  /** How the replica ended, as its node tells; undefined once abandoned or closed. */
  async #end(): Promise<ExitReason | undefined> {
    const signal = AbortSignal.any([this.#abandoned.signal, this.#host.closed]);
    let reattach = false;
    while (!signal.aborted) {
      try {
        if (reattach) {
          // The node's process restarted (or could not be reached): it takes the replica back.
          await this.#host.call("POST", `replicas/${this.id}/adopt`, {
            deployment: this.#deployment,
            identity: this.identity,
          }, { signal });
        }
        const { reason } = await this.#host.call<{ reason: ExitReason }>(
          "GET",
          `replicas/${this.id}/end`,
          undefined,
          { signal, timeoutMs: 0 },
        );
        return reason;
      } catch {
        if (signal.aborted) return;
        reattach = true;
        await delay(RETRY_MS, undefined, { signal }).catch(() => {});
      }
    }
  }
}

/** A port nothing listens on right now and not in `taken`, for a new replica's `$PORT`. */
export function freePort(taken: Set<number>): number {
  for (let tries = 0; tries < MAX_PORT_TRIES; tries++) {
    const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    if (!taken.has(port)) return port;
  }
  throw new UnavailableError(`no free port for a replica in ${MAX_PORT_TRIES} tries`);
}

/** Ports asked of the kernel for a replica before giving up (the taken ones are few). */
const MAX_PORT_TRIES = 1_000;
