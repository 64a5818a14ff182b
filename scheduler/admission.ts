/**
 * The admission decision: which pending jobs start now, on which node, with which GPUs,
 * and why the others wait. Pure: the caller gathers the state and performs the starts.
 *
 * Order is priority (higher first), then arrival (`queueOrder`). A job that does not fit does not hold
 * back smaller ones behind it (backfill), but once it has waited `reserveAfterMs`, what it
 * needs is set aside on the node where it fits best, as it frees up, so it cannot starve.
 */
import { formatSelector, type LabelCondition, type Labels, matchesSelector } from "./labels.ts";
import { NodeIndex } from "./node_index.ts";
import { fits, formatAmount, type Resources, shortOf, subtractResources } from "./resources.ts";

/** A node as the scheduler sees it. */
export interface NodeState {
  name: string;
  /** Everything the node has (`CPU`, `GPU`, `memory`, custom ones). */
  total: Resources;
  /** What its running jobs hold. */
  used: Resources;
  /** GPU indices its running jobs hold. */
  gpusInUse: readonly number[];
  /** Jobs running on it now. */
  running: number;
  /** Its labels, for `entrypoint_label_selector`; absent: none. */
  labels?: Labels;
}

/** A job waiting to start. */
export interface PendingJob {
  id: string;
  demand: Resources;
  priority: number;
  /** Arrival order: smaller came first (ties of priority go by it). */
  seq: number;
  /** When it started waiting (ms since the epoch). */
  queuedAt: number;
  /** The labels a node must have to run it (`entrypoint_label_selector`); absent: any. */
  selector?: readonly LabelCondition[];
}

/** A job to start now. */
export interface Placement {
  id: string;
  node: string;
  /** GPU indices, as many as it asked for (whole GPUs), lowest free first. */
  gpus: number[];
}

/** Everything the decision needs besides the nodes and the queue. */
export interface AdmissionPolicy {
  now: number;
  /** A job that waited this long gets its resources set aside as they free up. */
  reserveAfterMs: number;
  /** At most this many jobs run at once over all nodes; undefined: no limit. */
  maxRunningJobs?: number;
  /**
   * Among the nodes a job fits: `spread` (the default) takes the one with the most CPU
   * free, `pack` the one with the least, filling a node before the next.
   */
  placement?: PlacementStrategy;
}

/** How a job is placed among the nodes it fits (`--placement`). */
export type PlacementStrategy = "spread" | "pack";

/** The outcome: who starts where, and which waiting jobs have resources set aside. */
export interface AdmissionResult {
  placements: Placement[];
  /** Waiting jobs whose resources are set aside as they free up: the node, in queue order. */
  reserved: Map<string, string>;
}

/** Pending jobs in the order they are considered: priority first, then arrival. */
export function queueOrder(a: PendingJob, b: PendingJob): number {
  return b.priority - a.priority || a.seq - b.seq;
}

/**
 * Decides which jobs of `queue` (in `queueOrder`) start now on `nodes` under `policy`.
 * Linear in the queue: a demand that did not fit is not tried again in the same pass
 * (what is free only shrinks during a pass). `nodes` may be a NodeIndex kept by the
 * caller (in `policy.placement`'s order): it is as it was once the decision is made.
 */
export function admit(
  nodes: readonly NodeState[] | NodeIndex,
  queue: readonly PendingJob[],
  policy: AdmissionPolicy,
): AdmissionResult {
  const index = nodes instanceof NodeIndex ? nodes : NodeIndex.of(nodes, policy.placement);
  return index.trial(() => {
    /** GPU indices in use, by node: made for a node when a job of it asks for GPUs. */
    const gpusInUse = new Map<string, Set<number>>();
    let running = index.running;
    const placements: Placement[] = [];
    const reserved = new Map<string, string>();
    /** Demands that found no node in this pass (until a reservation changes nothing back). */
    const refused = new Set<string>();
    const freeOf = (node: NodeState) => index.freeOn(node.name)!;
    for (const job of queue) {
      if (policy.maxRunningJobs !== undefined && running >= policy.maxRunningJobs) break;
      const signature = signatureOf(job);
      const node = refused.has(signature) ? undefined : index.find(
        job.demand,
        (node) =>
          gpuIndicesSuffice(node, job.demand) &&
          (!job.selector || matchesSelector(node.labels ?? {}, job.selector)),
      );
      if (node) {
        let inUse = gpusInUse.get(node.name);
        if (!inUse) gpusInUse.set(node.name, inUse = new Set(node.gpusInUse));
        const gpus = pickGpus(node.total.GPU ?? 0, inUse, job.demand.GPU ?? 0);
        for (const gpu of gpus) inUse.add(gpu);
        index.take(node.name, job.demand);
        placements.push({ id: job.id, node: node.name, gpus });
        running++;
        continue;
      }
      refused.add(signature);
      if (policy.now - job.queuedAt >= policy.reserveAfterMs) {
        // Set aside on the node that could hold it and lacks the least of what it needs.
        const target = reservationNode(index.nodes, freeOf, job.demand, job.selector);
        if (target) {
          index.take(target.name, job.demand);
          reserved.set(job.id, target.name);
        }
      }
    }
    return { placements, reserved };
  });
}

/** What a waiting job is told, besides the nodes: its place and the queue's state. */
export interface WaitContext {
  /** Jobs before it in the queue. */
  ahead: number;
  /** Its resources are set aside as they free up. */
  reserved: boolean;
  /** By node: what is set aside for jobs ahead of it (not free for it). */
  setAside?: ReadonlyMap<string, Resources>;
  /** `--max-running-jobs`, when it is what holds the job back. */
  slotsFull?: number;
  /** The job's `entrypoint_label_selector`, parsed. */
  selector?: readonly LabelCondition[];
}

/**
 * Why a job waits, e.g. `Waiting for resources: needs CPU 4, 2 of 8 free; 3 jobs ahead`,
 * said against the node closest to holding it.
 */
export function waitingReason(
  nodes: readonly NodeState[],
  demand: Resources,
  context: WaitContext,
): string {
  const ahead = `${context.ahead} ${context.ahead === 1 ? "job" : "jobs"} ahead`;
  if (context.slotsFull !== undefined) {
    return `Waiting for a running slot: --max-running-jobs ${context.slotsFull} reached; ${ahead}`;
  }
  const selector = context.selector ?? [];
  const matching = nodes.filter((node) => matchesSelector(node.labels ?? {}, selector));
  if (matching.length === 0) {
    return selector.length > 0
      ? `Waiting for a node with labels ${formatSelector(selector)}: no node has them; ${ahead}`
      : `Waiting for a node: none is alive; ${ahead}`;
  }
  const free = new Map(nodes.map((node) => {
    const aside = context.setAside?.get(node.name) ?? {};
    return [node.name, subtractResources(subtractResources(node.total, node.used), aside)];
  }));
  const node = reservationNode(matching, (node) => free.get(node.name)!, demand) ?? matching[0];
  const available = node ? free.get(node.name)! : {};
  const short = shortOf(available, demand);
  const needs = (short.length > 0 ? short : Object.keys(demand)).map((name) => {
    const freeNow = Math.max(0, available[name] ?? 0);
    const total = node?.total[name] ?? 0;
    return `${name} ${formatAmount(name, demand[name])}, ` +
      `${formatAmount(name, freeNow)} of ${formatAmount(name, total)} free`;
  });
  const reserved = context.reserved ? "; reserved as they free up" : "";
  return `Waiting for resources: needs ${needs.join("; ")}; ${ahead}${reserved}`;
}

const signatures = new WeakMap<Resources, string>();

/**
 * A job's demand and selector as a string, equal for jobs no node can tell apart; the
 * demand's part cached per demand object.
 */
function signatureOf(job: PendingJob): string {
  let signature = signatures.get(job.demand);
  if (signature === undefined) {
    signature = Object.entries(job.demand).sort(([a], [b]) => a < b ? -1 : 1)
      .map(([name, amount]) => `${name}=${amount}`).join(",");
    signatures.set(job.demand, signature);
  }
  return job.selector?.length ? `${signature}|${JSON.stringify(job.selector)}` : signature;
}

/**
 * The lowest `count` GPU indices below `total` not in `inUse`. A fractional request
 * (0.5 GPU) gets one index; GPUs are not shared between jobs by index.
 */
export function pickGpus(total: number, inUse: ReadonlySet<number>, count: number): number[] {
  const wanted = Math.ceil(count);
  const picked: number[] = [];
  for (let index = 0; index < total && picked.length < wanted; index++) {
    if (!inUse.has(index)) picked.push(index);
  }
  return picked;
}

/**
 * Refuses a demand no node could ever hold: the message names the first resource and the
 * largest node's amount, e.g. `CPU: 64 requested, the largest node has 8`.
 */
export function impossibleDemand(
  nodes: readonly NodeState[],
  demand: Resources,
): { resource: string; message: string } | undefined {
  if (nodes.some((node) => fitsWhole(node, demand))) return undefined;
  for (const [resource, amount] of Object.entries(demand)) {
    if (nodes.some((node) => (node.total[resource] ?? 0) >= amount)) continue;
    const largest = Math.max(0, ...nodes.map((node) => node.total[resource] ?? 0));
    return {
      resource,
      message: `${formatAmount(resource, amount)} requested, the largest node has ` +
        formatAmount(resource, largest),
    };
  }
  // Each amount fits some node, but no node has all of them.
  return {
    resource: Object.keys(demand)[0],
    message: "no node has all of the requested resources at once",
  };
}

function fitsWhole(node: NodeState, demand: Resources): boolean {
  return fits(node.total, demand) && gpuIndicesSuffice(node, demand);
}

function gpuIndicesSuffice(node: NodeState, demand: Resources): boolean {
  return Math.ceil(demand.GPU ?? 0) <= (node.total.GPU ?? 0);
}

function reservationNode(
  nodes: readonly NodeState[],
  freeOf: (node: NodeState) => Resources,
  demand: Resources,
  selector?: readonly LabelCondition[],
): NodeState | undefined {
  let best: NodeState | undefined;
  let bestShort = Infinity;
  for (const node of nodes) {
    if (!fitsWhole(node, demand)) continue;
    if (selector && !matchesSelector(node.labels ?? {}, selector)) continue;
    const lacking = subtractResources(demand, freeOf(node));
    const short = Object.values(lacking).filter((amount) => amount > 0)
      .reduce((sum, amount) => sum + amount, 0);
    if (short < bestShort) [best, bestShort] = [node, short];
  }
  return best;
}
