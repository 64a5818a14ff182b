/**
 * The nodes kept in placement order as what is free on them changes: the most CPU free
 * first (spread) or the least (pack), ties in the order the nodes were added. A placement
 * looks at the nodes from the front and stops at the first that holds the job, so it costs
 * a walk to that node, not a walk of every node and what runs on it. Pure: no I/O.
 */
import type { NodeState, PlacementStrategy } from "./admission.ts";
import { fits, type Resources, STANDARD_RESOURCES, subtractResources } from "./resources.ts";

/** Below this, an amount is 0 (as in resources.ts). */
const EPSILON = 1e-9;

/** A node in the index: its state, what is free on it, and its place among the nodes. */
interface Entry {
  node: NodeState;
  free: Resources;
  /** `free.CPU`, the placement order's key. */
  cpu: number;
  /** When it was added: breaks ties of `cpu`, and keeps the nodes' own order. */
  seq: number;
}

/** Nodes by name, in placement order, with what is free on each. */
export class NodeIndex {
  #strategy: PlacementStrategy;
  /** By name, in the order the nodes were added (a replaced node keeps its place). */
  #entries = new Map<string, Entry>();
  /** Every entry, sorted by `#compare`. */
  #order: Entry[] = [];
  /** By resource other than CPU, GPU and memory (a `node:<name>` pin): the nodes that have it. */
  #byResource = new Map<string, Set<Entry>>();
  #seq = 0;
  #running = 0;
  #nodes?: NodeState[];
  /** While `trial()` runs: each node's `free` before its first `take()`. */
  #journal?: Map<Entry, Resources>;

  constructor(strategy: PlacementStrategy = "spread") {
    this.#strategy = strategy;
  }

  /** An index of `nodes`, in their order. */
  static of(nodes: readonly NodeState[], strategy?: PlacementStrategy): NodeIndex {
    const index = new NodeIndex(strategy);
    for (const node of nodes) index.set(node);
    return index;
  }

  /** Adds a node, or replaces the one of its name (capacity, labels or use changed). */
  set(node: NodeState): void {
    const known = this.#entries.get(node.name);
    if (known?.node.total === node.total) {
      // Only its use changed (a job started or ended there): it moves in the order.
      this.#running += node.running - known.node.running;
      known.node = node;
      this.#move(known, freeOnNode(node));
      this.#nodes = undefined;
      return;
    }
    if (known) this.#unlink(known);
    const entry: Entry = { node, free: freeOnNode(node), cpu: 0, seq: known?.seq ?? ++this.#seq };
    entry.cpu = entry.free.CPU ?? 0;
    this.#entries.set(node.name, entry);
    this.#insert(entry);
    for (const name of Object.keys(node.total)) {
      if ((STANDARD_RESOURCES as readonly string[]).includes(name)) continue;
      let having = this.#byResource.get(name);
      if (!having) this.#byResource.set(name, having = new Set());
      having.add(entry);
    }
    this.#running += node.running;
    this.#nodes = undefined;
  }

  /** Removes a node; false if there was none of that name. */
  delete(name: string): boolean {
    const entry = this.#entries.get(name);
    if (!entry) return false;
    this.#unlink(entry);
    this.#entries.delete(name);
    this.#nodes = undefined;
    return true;
  }

  /** The node named `name`; undefined when there is none. */
  get(name: string): NodeState | undefined {
    return this.#entries.get(name)?.node;
  }

  /** What is free on node `name` (less what `take()` took in a trial); undefined: no node. */
  freeOn(name: string): Resources | undefined {
    return this.#entries.get(name)?.free;
  }

  /** Every node, in the order they were added. */
  get nodes(): readonly NodeState[] {
    this.#nodes ??= [...this.#entries.values()].map((entry) => entry.node);
    return this.#nodes;
  }

  /** Jobs running over every node. */
  get running(): number {
    return this.#running;
  }

  /**
   * The first node in placement order where `demand` fits what is free and `accept`
   * holds (labels, GPU indices); undefined when none.
   */
  find(demand: Resources, accept?: (node: NodeState) => boolean): NodeState | undefined {
    const holds = (entry: Entry) => fits(entry.free, demand) && (!accept || accept(entry.node));
    // A job asking for a resource few nodes have (a pin) looks at those nodes only.
    let few: Set<Entry> | undefined;
    for (const name in demand) {
      if (demand[name] <= EPSILON || (STANDARD_RESOURCES as readonly string[]).includes(name)) {
        continue;
      }
      const having = this.#byResource.get(name);
      if (!having) return undefined;
      if (!few || having.size < few.size) few = having;
    }
    if (few) {
      let best: Entry | undefined;
      for (const entry of few) {
        if (holds(entry) && (!best || this.#compare(entry, best) < 0)) best = entry;
      }
      return best?.node;
    }
    const cpu = demand.CPU ?? 0;
    const order = this.#order;
    if (this.#strategy === "spread") {
      // The most CPU free first: past the first node short of CPU, all are.
      for (const entry of order) {
        if (cpu > entry.cpu + EPSILON) return undefined;
        if (holds(entry)) return entry.node;
      }
      return undefined;
    }
    // The least CPU free first: start at the first node with enough.
    let low = 0;
    let high = order.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cpu > order[middle].cpu + EPSILON) low = middle + 1;
      else high = middle;
    }
    for (let i = low; i < order.length; i++) if (holds(order[i])) return order[i].node;
    return undefined;
  }

  /**
   * Takes `demand` from what is free on node `name` (it may go below 0: a reservation),
   * moving it to its new place in the order. Only inside `trial()`.
   */
  take(name: string, demand: Resources): void {
    const entry = this.#entries.get(name);
    if (!entry || !this.#journal) throw new Error(`take() outside a trial, or no node ${name}`);
    if (!this.#journal.has(entry)) this.#journal.set(entry, entry.free);
    this.#move(entry, subtractResources(entry.free, demand));
  }

  /** Runs `decide`, in which `take()` may be called; then gives back all it took. */
  trial<T>(decide: () => T): T {
    this.#journal = new Map();
    try {
      return decide();
    } finally {
      const journal = this.#journal;
      this.#journal = undefined;
      for (const [entry, free] of journal) {
        if (this.#entries.get(entry.node.name) === entry) this.#move(entry, free);
      }
    }
  }

  #move(entry: Entry, free: Resources): void {
    this.#order.splice(this.#position(entry), 1);
    entry.free = free;
    entry.cpu = free.CPU ?? 0;
    this.#insert(entry);
  }

  #unlink(entry: Entry): void {
    this.#order.splice(this.#position(entry), 1);
    for (const name of Object.keys(entry.node.total)) {
      const having = this.#byResource.get(name);
      if (!having) continue;
      having.delete(entry);
      if (having.size === 0) this.#byResource.delete(name);
    }
    this.#running -= entry.node.running;
  }

  #insert(entry: Entry): void {
    this.#order.splice(this.#lowerBound(entry), 0, entry);
  }

  /** Where `entry` is in the order (its key is unique). */
  #position(entry: Entry): number {
    const at = this.#lowerBound(entry);
    if (this.#order[at] !== entry) throw new Error(`node ${entry.node.name} is out of order`);
    return at;
  }

  /** The first place in the order whose entry does not come before `entry`. */
  #lowerBound(entry: Entry): number {
    const order = this.#order;
    let low = 0;
    let high = order.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#compare(order[middle], entry) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  #compare(a: Entry, b: Entry): number {
    const byCpu = this.#strategy === "spread" ? b.cpu - a.cpu : a.cpu - b.cpu;
    return byCpu || a.seq - b.seq;
  }
}

/** `node.total - node.used`: `total` itself when nothing is used. */
export function freeOnNode(node: NodeState): Resources {
  for (const _ in node.used) return subtractResources(node.total, node.used);
  return node.total;
}
