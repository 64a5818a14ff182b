/**
 * The cluster as modules see it (`ModuleContext.cluster`): present when the head or node
 * shares a PostgreSQL store with other processes, absent on a single machine (Deno KV).
 * The host implements it (host/cluster/): node rows and heartbeats, the scheduling lock,
 * and the bridge that carries job changes between processes.
 */
import type { Resources } from "../scheduler/resources.ts";
import type { Labels } from "../scheduler/labels.ts";

/** A node of the cluster, as its row in the store says. */
export interface ClusterNode {
  name: string;
  /** Ray's node id: 56 hex digits, new each time the node registers. */
  id: string;
  /** Its agent: the URL heads reach its jobs API at, e.g. `http://10.0.0.7:8266`. */
  address: string;
  total: Resources;
  labels: Labels;
  state: "ALIVE" | "DEAD";
  /** Its last heartbeat (ms since the epoch, on the store's clock). */
  lastHeartbeat: number;
}

/** What a process learns of another's change of a job. */
export interface RemoteJobChange {
  jobId: string;
  /** The job was deleted (its record is gone). */
  deleted: boolean;
  /** The node the job was placed on, for a deleted job's node to remove its log. */
  node?: string;
}

/** The cluster link a module gets. */
export interface Cluster {
  /** This process's node; undefined when it runs no jobs (a head with `--no-local-jobs`). */
  readonly node?: ClusterNode;
  /** The node named `name`, alive or dead, as last read; undefined when unknown. */
  nodeNamed(name: string): ClusterNode | undefined;
  /** Every node known, alive or dead. */
  nodes(): ClusterNode[];
  /**
   * Registers what this process does once it holds the scheduling lock (at most one
   * process of the cluster at a time), and when a node is declared DEAD while it holds it.
   * Each module may register; they are called in the order they registered.
   */
  onScheduling(handlers: SchedulingHandlers): void;
  /**
   * Registers what this node does when it finds it was declared DEAD while it was away,
   * before it joins again: kill what the store ended meanwhile (fencing).
   */
  onFence(fence: () => Promise<void>): void;
  /**
   * Registers what this process does when the store is back after it was away: changes
   * announced meanwhile were lost, so it looks at every unfinished job again.
   */
  onResync(resync: () => Promise<void>): void;
  /** The bearer token of the cluster, for requests to other nodes' agents. */
  readonly token?: string;
  /** Where the other processes of the cluster reach this one's API. */
  readonly address: string;
}

/** What the scheduling process does. */
export interface SchedulingHandlers {
  /** This process now schedules: rebuild the queue and the running jobs from the store. */
  takeOver(): Promise<void>;
  /** A node was declared DEAD: its jobs end FAILED. `silentS`: seconds since its heartbeat. */
  nodeDied(node: ClusterNode, silentS: number): Promise<void>;
}
