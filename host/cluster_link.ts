/**
 * A process's part in a cluster on PostgreSQL (`Cluster` of kit/cluster.ts): its node's
 * row and heartbeats (fencing when it was declared dead), the nodes it knows (fed to the
 * scheduler), the scheduling lock (a PostgreSQL advisory lock on a connection of its own:
 * whoever holds it places jobs and declares silent nodes DEAD), and the bridge that carries
 * job, actor and deployment changes between processes over NOTIFY, onto each one's event
 * bus.
 */
import type postgres from "postgres";
import type { Cluster, ClusterNode, SchedulingHandlers } from "../kit/cluster.ts";
import type { EventBus, HeadEvent } from "../kit/events.ts";
import type { Job } from "../kit/job_record.ts";
import type { Logger } from "../kit/log.ts";
import { overdueNodes } from "../scheduler/liveness.ts";
import type { Scheduler } from "../scheduler/scheduler.ts";
import { errorMessage } from "../storage/errors.ts";
import type { JobStore } from "../storage/jobs.ts";
import type { PostgresStore } from "../storage/postgres/mod.ts";
import { type NodeRegistration, type NodeRow, NODES_CHANNEL, NodeTable } from "./nodes.ts";

/** What the link needs of the store: SQL, and LISTEN/NOTIFY. */
export type ClusterStore = Pick<PostgresStore, "sql" | "listen" | "notify">;

/** The channel changes travel on between processes. */
export const EVENTS_CHANNEL = "jobhead_events";

/** The advisory lock key whose holder schedules. */
const SCHEDULING_LOCK = 0x6a6f6268; // "jobh"

/** Between heartbeats, and between liveness checks of the scheduling process. */
const HEARTBEAT_MS = 1_000;

/** How a link is set up. */
export interface ClusterLinkOptions {
  store: ClusterStore;
  jobs: JobStore<Job>;
  events: EventBus;
  scheduler: Scheduler;
  logger: Logger;
  /** This process's node; undefined: it runs no jobs. */
  node?: NodeRegistration;
  /** Seconds without a heartbeat after which a node is declared DEAD. */
  nodeTimeoutS: number;
  /** Whether this process may schedule (heads may; worker nodes never do). */
  maySchedule: boolean;
  token?: string;
  /**
   * Called when this process lost the scheduling lock to another one (its connection broke
   * while the store was away): it must stop, since its modules' state is a scheduler's.
   */
  onLostScheduling?(): void;
}

/** What a bridged change says: its origin, and which job or what record. */
type BridgedChange =
  | { origin: string; type: "job" | "job-deleted"; id: string; node?: string }
  /** An actor's or a deployment's change, whole: small records, carried as they are. */
  | { origin: string; type: "record"; event: RecordEvent };

/** The changes carried whole. */
type RecordEvent = Extract<HeadEvent, { type: "actor" | "actor-deleted" | "deployment" }>;

/** PostgreSQL refuses NOTIFY payloads from 8,000 bytes on. */
const MAX_PAYLOAD_BYTES = 7_900;

/** A process's link to the cluster. */
export class ClusterLink implements Cluster {
  #options: ClusterLinkOptions;
  #table: NodeTable;
  #nodes = new Map<string, NodeRow>();
  #epoch = 0;
  #origin = crypto.randomUUID();
  #handlers: SchedulingHandlers[] = [];
  /** This process holds the scheduling lock. */
  #scheduling = false;
  #fences: (() => Promise<void>)[] = [];
  #resyncs: (() => Promise<void>)[] = [];
  #closed = new AbortController();
  #lockConnection?: postgres.ReservedSql;
  /** The wait for the scheduling lock, while another process holds it. */
  #locking?: postgres.PendingQuery<postgres.Row[]>;
  /** The server process of the lock's connection: its pid and start (pids are reused). */
  #lockBackend: LockBackend = { pid: 0, started: "" };
  #loops: Promise<void>[] = [];
  #unsubscribe = () => {};
  #address = "";

  constructor(options: ClusterLinkOptions) {
    this.#options = options;
    this.#table = new NodeTable(options.store.sql);
  }

  get token(): string | undefined {
    return this.#options.token;
  }

  get address(): string {
    return this.#address;
  }

  get node(): ClusterNode | undefined {
    const name = this.#options.node?.name;
    return name === undefined ? undefined : this.#nodes.get(name);
  }

  nodeNamed(name: string): ClusterNode | undefined {
    return this.#nodes.get(name);
  }

  nodes(): ClusterNode[] {
    return [...this.#nodes.values()];
  }

  onScheduling(handlers: SchedulingHandlers): void {
    this.#handlers.push(handlers);
  }

  onResync(resync: () => Promise<void>): void {
    this.#resyncs.push(resync);
  }

  /** What a node does before it registers again after being declared DEAD. */
  onFence(fence: () => Promise<void>): void {
    this.#fences.push(fence);
  }

  /**
   * Joins: the table, the bridge, the nodes known, and this process's node registered.
   * Throws NodeNameTakenError when a live node has this one's name.
   */
  async join(address: string): Promise<void> {
    const { store, events } = this.#options;
    this.#address = address;
    await this.#table.ensure();
    await store.listen(NODES_CHANNEL, () => this.#refreshNodes());
    let subscriptions = 0;
    await store.listen(EVENTS_CHANNEL, (payload) => this.#receive(payload), () => {
      // Subscribed again after the store was away: what was announced meanwhile is lost.
      if (++subscriptions === 1) return;
      this.#options.logger.info("the store is back: looking at every unfinished job again");
      this.#refreshNodes().then(() => runEach(this.#resyncs)).catch((err) => {
        this.#options.logger.error(`looking at the jobs again failed: ${errorMessage(err)}`);
      });
    });
    this.#unsubscribe = events.on((event) => this.#send(event));
    if (this.#options.node) {
      this.#options.node = { ...this.#options.node, address };
      this.#epoch = await this.#table.register(this.#options.node, this.#options.nodeTimeoutS);
    }
    await this.#refreshNodes();
    if (this.#options.node) this.#loops.push(this.#heartbeats());
  }

  /** Starts competing for the scheduling lock (once the modules have registered). */
  startScheduling(): void {
    if (this.#options.maySchedule) this.#loops.push(this.#schedule());
  }

  /** Leaves: no more heartbeats or scheduling; the node's name is released. */
  async close(): Promise<void> {
    this.#closed.abort();
    this.#unsubscribe();
    this.#locking?.cancel(); // else it waits as long as another process schedules
    this.#lockConnection?.release();
    await Promise.allSettled(this.#loops);
    if (this.#options.node) {
      await this.#table.release(this.#options.node.name, this.#epoch).catch(() => {});
    }
  }

  /** Reads the nodes table again and tells the scheduler which nodes are alive. */
  refreshNodes(): Promise<void> {
    return this.#refreshNodes();
  }

  async #refreshNodes(): Promise<void> {
    let rows: NodeRow[];
    try {
      rows = (await this.#table.list()).nodes;
    } catch (err) {
      this.#options.logger.warn(`cannot read the nodes: ${errorMessage(err)}`);
      return;
    }
    const scheduler = this.#options.scheduler;
    for (const row of rows) {
      const before = this.#nodes.get(row.name);
      this.#nodes.set(row.name, row);
      if (row.state === "ALIVE") {
        const changed = !before || before.state !== "ALIVE" || before.epoch !== row.epoch;
        if (changed) scheduler.addNode({ name: row.name, total: row.total, labels: row.labels });
      } else if (before?.state === "ALIVE" && !this.#scheduling) {
        // The scheduling process removes it itself, with its jobs.
        scheduler.removeNode(row.name);
      }
    }
  }

  async #heartbeats(): Promise<void> {
    const signal = this.#closed.signal;
    const node = this.#options.node!;
    while (!signal.aborted) {
      await sleep(HEARTBEAT_MS, signal);
      if (signal.aborted) break;
      try {
        if (await this.#table.heartbeat(node.name, this.#epoch)) continue;
        this.#options.logger.warn(
          `node ${node.name} was declared DEAD while it was away: killing the jobs ended ` +
            `meanwhile, then joining again`,
        );
        await runEach(this.#fences);
        this.#epoch = await this.#table.register(node, this.#options.nodeTimeoutS);
        await this.#refreshNodes();
      } catch (err) {
        this.#options.logger.warn(`heartbeat of node ${node.name} failed: ${errorMessage(err)}`);
      }
    }
  }

  /**
   * Waits for the scheduling lock, takes over, then watches the nodes' heartbeats. When
   * taking the lock fails (the store is away), it is tried again once the store is back.
   * Each round it checks that the lock's connection still holds the lock: when it broke
   * (the store restarted), the lock is taken back at once if it is free; if another process
   * took it meanwhile, this one stops scheduling for good (`onLostScheduling`), so that
   * never two processes schedule.
   */
  async #schedule(): Promise<void> {
    const { store, logger } = this.#options;
    const signal = this.#closed.signal;
    while (!signal.aborted) {
      try {
        const connection = this.#lockConnection = await store.sql.reserve();
        if (signal.aborted) return;
        await (this.#locking = connection`select pg_advisory_lock(${SCHEDULING_LOCK})`);
        this.#locking = undefined;
        this.#lockBackend = await backendPid(connection);
        if (signal.aborted) return;
        this.#scheduling = true;
        logger.info("this process schedules the cluster now");
        await this.#refreshNodes();
        for (const handlers of this.#handlers) await handlers.takeOver();
        break;
      } catch (err) {
        if (signal.aborted) return;
        logger.error(`cannot take the scheduling lock: ${errorMessage(err)}; trying again`);
        this.#scheduling = false;
        const connection = this.#lockConnection;
        this.#lockConnection = undefined;
        // A take-over that failed leaves the lock held: given back to the pool holding it,
        // the connection would keep every process from ever taking it.
        if (connection && !isConnectionClosed(err)) {
          await connection`select pg_advisory_unlock_all()`
            .then(() => connection.release(), () => {}); // closed: the pool has it back
        }
        await sleep(HEARTBEAT_MS, signal);
      }
    }
    while (!signal.aborted) {
      if (!await this.#stillHoldsLock() && !await this.#retakeLock()) return;
      try {
        await this.#declareDead();
      } catch (err) {
        // A node that could not be recorded DEAD is tried again next round.
        logger.error(`declaring the silent nodes DEAD failed: ${errorMessage(err)}`);
      }
      await sleep(HEARTBEAT_MS, signal);
    }
  }

  /**
   * Whether the lock's server process still holds the lock, as the store says (a session's
   * advisory lock lives with its connection). While the store is away nobody can take it:
   * it counts as held until the store answers.
   */
  async #stillHoldsLock(): Promise<boolean> {
    try {
      const [row] = await this.#options.store.sql`
        select exists(
          select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.classid = 0 and l.objid = ${SCHEDULING_LOCK}
            and l.objsubid = 1 and l.granted and l.pid = ${this.#lockBackend.pid}::int
            and a.backend_start::text = ${this.#lockBackend.started}
        ) as held`;
      if (row.held) return true;
    } catch {
      return true;
    }
    if (this.#closed.signal.aborted) return true;
    this.#options.logger.warn("the scheduling lock's connection broke: taking the lock back");
    // Its socket closed: the pool took it back then. Released again, it would be handed out
    // with no socket, and the next query on it would throw where no caller catches it.
    this.#lockConnection = undefined;
    return false;
  }

  /**
   * Takes the scheduling lock back on a new connection once the store answers; false, after
   * `onLostScheduling`, when another process holds it now.
   */
  async #retakeLock(): Promise<boolean> {
    const { store, logger } = this.#options;
    const signal = this.#closed.signal;
    while (!signal.aborted) {
      let connection: postgres.ReservedSql | undefined;
      try {
        connection = await store.sql.reserve();
        // The old connection's server process may outlive it for a while (a broken network
        // rather than a restart) and hold the lock still: it is ended first.
        const { pid, started } = this.#lockBackend;
        await connection`
          select pg_terminate_backend(pid, 5000) from pg_stat_activity
          where pid = ${pid}::int and backend_start::text = ${started}`
          .catch(() => {}); // gone already, or not ours to end
        const [row] = await connection`
          select pg_try_advisory_lock(${SCHEDULING_LOCK}) as taken`;
        if (row.taken) {
          this.#lockConnection = connection;
          this.#lockBackend = await backendPid(connection);
          logger.info("took the scheduling lock back: this process still schedules the cluster");
          return true;
        }
        connection.release();
        this.#scheduling = false;
        logger.error(
          "another process took the scheduling lock while this one's connection was broken: " +
            "this process stops, so that one schedules alone",
        );
        this.#options.onLostScheduling?.();
        return false;
      } catch (err) {
        if (!isConnectionClosed(err)) connection?.release();
        logger.warn(`cannot take the scheduling lock back yet: ${errorMessage(err)}`);
        await sleep(HEARTBEAT_MS, signal);
      }
    }
    return true;
  }

  /** Declares the nodes silent past the timeout DEAD; their jobs end FAILED. */
  async #declareDead(): Promise<void> {
    const { logger, nodeTimeoutS } = this.#options;
    let listed;
    try {
      listed = await this.#table.list();
    } catch (err) {
      logger.warn(`cannot read the nodes: ${errorMessage(err)}`);
      return;
    }
    const rows = new Map(listed.nodes.map((row) => [row.name, row]));
    // This process is alive, whatever its own heartbeat says: a late heartbeat of its own
    // (a loaded machine, a slow store) must not fail and fence the jobs it runs itself.
    const others = listed.nodes.filter((row) => row.name !== this.#options.node?.name);
    for (const name of overdueNodes(others, listed.now, nodeTimeoutS * 1000)) {
      const row = rows.get(name)!;
      if (!await this.#table.markDead(row)) continue;
      const silentS = (listed.now - row.lastHeartbeat) / 1000;
      logger.warn(`node ${name} sent no heartbeat for ${silentS.toFixed(1)} s: declared DEAD`);
      this.#nodes.set(name, { ...row, state: "DEAD" });
      for (const handlers of this.#handlers) await handlers.nodeDied(row, silentS);
    }
  }

  /** Sends a change made here to the other processes. */
  #send(event: HeadEvent): void {
    if ("remote" in event) return;
    let change: BridgedChange;
    if (event.type === "job") {
      change = { origin: this.#origin, type: "job", id: event.job.id };
    } else if (event.type === "job-deleted") {
      change = { origin: this.#origin, type: "job-deleted", id: event.jobId, node: event.node };
    } else {
      change = { origin: this.#origin, type: "record", event };
    }
    const payload = JSON.stringify(change);
    if (new TextEncoder().encode(payload).length > MAX_PAYLOAD_BYTES) {
      // Only a record can be this large: the other heads' live views miss this one change.
      this.#options.logger.warn(`a change too large to announce to the other heads: ${event.type}`);
      return;
    }
    this.#options.store.notify(EVENTS_CHANNEL, payload).catch((err) => {
      this.#options.logger.warn(`cannot announce a change (${event.type}): ${errorMessage(err)}`);
    });
  }

  /** Puts another process's change on this one's bus. */
  async #receive(payload: string): Promise<void> {
    let change: BridgedChange;
    try {
      change = JSON.parse(payload);
    } catch {
      return;
    }
    if (change.origin === this.#origin) return;
    const events = this.#options.events;
    if (change.type === "record") {
      events.emit({ ...change.event, remote: true });
      return;
    }
    if (change.type === "job-deleted") {
      events.emit({ type: "job-deleted", jobId: change.id, remote: true, node: change.node });
      return;
    }
    try {
      const job = await this.#options.jobs.get(change.id);
      if (job) events.emit({ type: "job", job, remote: true });
    } catch (err) {
      this.#options.logger.warn(`cannot read job "${change.id}": ${errorMessage(err)}`);
    }
  }
}

/**
 * Whether `err` says the connection closed: the pool has taken a reserved connection back
 * then, and it must not be released again (it would be handed out without a socket).
 */
function isConnectionClosed(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("CONNECTION_");
}

/** A server process of the store: its pid, and its start as the server writes it. */
interface LockBackend {
  pid: number;
  started: string;
}

/** The server process behind `connection`. */
async function backendPid(connection: postgres.ReservedSql): Promise<LockBackend> {
  const [row] = await connection`
    select pid, backend_start::text as started from pg_stat_activity
    where pid = pg_backend_pid()`;
  return { pid: row.pid, started: row.started };
}

/** Runs each of `tasks` in turn. */
async function runEach(tasks: (() => Promise<void>)[]): Promise<void> {
  for (const task of tasks) await task();
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
