/**
 * Node liveness: which nodes are dead, and what a node that was declared dead must kill
 * when it comes back (fencing). Pure: the caller reads the nodes and jobs, and acts.
 */

/** A node as its row in the store says. */
export interface NodeBeat {
  name: string;
  state: "ALIVE" | "DEAD";
  /** Its last heartbeat (ms, on the store's clock). */
  lastHeartbeat: number;
}

/**
 * The ALIVE nodes whose last heartbeat is more than `timeoutMs` before `now` (the
 * store's clock, as the heartbeats): they are to be declared DEAD.
 */
export function overdueNodes(nodes: readonly NodeBeat[], now: number, timeoutMs: number): string[] {
  return nodes.filter((node) => node.state === "ALIVE" && now - node.lastHeartbeat > timeoutMs)
    .map((node) => node.name);
}

/** What the store says of a job a node still has a process of. */
export interface StoredRun {
  /** Absent: the job was deleted. */
  status?: string;
  /** The node the record places it on; absent: none. */
  node?: string;
}

/**
 * The jobs whose processes a node must kill (fencing): those the store has ended or
 * deleted, or given to another node, while this node was away. Others keep running.
 */
export function jobsToFence(
  node: string,
  running: ReadonlyMap<string, StoredRun>,
  terminal: (status: string) => boolean,
): string[] {
  return [...running].filter(([, stored]) =>
    stored.status === undefined || terminal(stored.status) || stored.node !== node
  ).map(([id]) => id);
}
