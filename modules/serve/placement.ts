/**
 * Where a new serve replica runs: a pure decision over the nodes that may host replicas
 * (in a cluster, the live nodes that run jobs; on one machine, the head's own node).
 */

/** A node that may host a replica, and what it hosts now. */
export interface ReplicaCandidate {
  name: string;
  /** Replicas of the deployment being placed that run or start there now. */
  ofDeployment: number;
  /** Replicas of every deployment that run or start there now. */
  total: number;
}

/**
 * The node for a deployment's next replica: the one with the fewest of its replicas (so
 * a node's death takes as few of them as possible), then the fewest replicas of all, then
 * by name, so the choice is stable. Undefined when no node may host one.
 */
export function placeReplica(candidates: readonly ReplicaCandidate[]): string | undefined {
  let best: ReplicaCandidate | undefined;
  for (const candidate of candidates) {
    if (!best || compare(candidate, best) < 0) best = candidate;
  }
  return best?.name;
}

function compare(a: ReplicaCandidate, b: ReplicaCandidate): number {
  return a.ofDeployment - b.ofDeployment || a.total - b.total ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
