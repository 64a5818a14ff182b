/**
 * The scheduler: the nodes' capacity, the queue of jobs waiting for it, and what running
 * jobs hold. It decides (with `admit()`) and tells each job's owner when and where to
 * start it; the owner records and starts the job, and tells it when the job ends. In
 * memory only: owners rebuild it from their store at start (`hold()` what runs,
 * `enqueue()` what waits).
 */
import {
  admit,
  impossibleDemand,
  type NodeState,
  type PendingJob,
  type Placement,
  type PlacementStrategy,
  queueOrder,
  waitingReason,
} from "./admission.ts";
import { type Labels, matchesSelector } from "./labels.ts";
import { NodeIndex } from "./node_index.ts";
import { addResources, fieldOf, type Resources, subtractResources } from "./resources.ts";

/** A node and everything it has. */
export interface NodeCapacity {
  name: string;
  total: Resources;
  /** Its labels, for `entrypoint_label_selector`; absent: none. */
  labels?: Labels;
}

/** A job waiting to start, as the scheduler is told it. */
export interface QueuedJob extends PendingJob {
  /** When it fails for having waited too long (ms since the epoch); undefined: never. */
  deadline?: number;
  /** Told when it is to start, already counted as running (`release()` it when it ends). */
  onPlace: (placement: Placement) => void;
  /** Told when it waited past its deadline, already out of the queue. */
  onExpire?: () => void;
}

/** What a running job holds. */
export interface Allocation {
  id: string;
  node: string;
  demand: Resources;
  gpus: number[];
}

/** One node's figures, as `GET /api/cluster` answers them. */
export interface NodeUse {
  name: string;
  total: Resources;
  used: Resources;
  free: Resources;
  /** GPU indices held by running jobs. */
  gpus_in_use: number[];
  running: number;
  /** Queued jobs this node could ever hold. */
  pending: number;
}

/** The scheduler's state for readers (the API, the dashboard, modules). */
export interface ClusterState {
  nodes: NodeUse[];
  running: number;
  pending: number;
  max_running_jobs: number | null;
  reserve_after_s: number;
}

/** A job that left the queue to start or because it waited past its deadline. */
export interface QueueExit {
  id: string;
  outcome: "placed" | "expired";
  /** Time from its `queuedAt` to leaving the queue. */
  waitedMs: number;
}

/** How the scheduler is set up. */
export interface SchedulerOptions {
  nodes: NodeCapacity[];
  reserveAfterMs: number;
  maxRunningJobs?: number;
  /** Among the nodes a job fits: the most CPU free (spread, the default) or the least (pack). */
  placement?: PlacementStrategy;
}

/** Places queued jobs on nodes as capacity allows. */
export class Scheduler {
  #options: SchedulerOptions;
  /** The nodes with what their running jobs hold, in placement order. */
  #index: NodeIndex;
  /** Waiting jobs, kept in `queueOrder`. */
  #queue: QueuedJob[] = [];
  #queued = new Set<string>();
  #running = new Map<string, Allocation>();
  /** By node (known or not yet): what its running jobs hold, kept as they start and end. */
  #use = new Map<string, NodeUseCount>();
  /** From the last pass: waiting jobs whose resources are set aside, and where. */
  #reserved = new Map<string, string>();
  #passPending = false;
  #deadlineTimer?: ReturnType<typeof setTimeout>;
  #nextDeadline = Infinity;
  #closed = false;
  #exitListeners = new Set<(exit: QueueExit) => void>();

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#index = new NodeIndex(options.placement);
    for (const node of options.nodes) this.#index.set(this.#stateOf(withPin(node)));
  }

  /**
   * Adds a node (one already known gets the new capacity and labels): queued jobs that
   * fit it start.
   */
  addNode(node: NodeCapacity): void {
    this.#index.set(this.#stateOf(withPin(node)));
    this.#schedulePass();
  }

  /**
   * Removes a node (it died): the jobs running on it no longer count, and their ids are
   * returned. Queued jobs stay queued for the other nodes.
   */
  removeNode(name: string): string[] {
    this.#index.delete(name);
    const lost = [...this.#running.values()].filter((a) => a.node === name).map((a) => a.id);
    for (const id of lost) this.#stopRunning(id);
    this.#schedulePass();
    return lost;
  }

  /**
   * Why no node could ever hold `demand`, naming the submit field:
   * `entrypoint_num_cpus: 64 requested, the largest node has 8`; undefined when one can.
   */
  refusal(demand: Resources): string | undefined {
    const impossible = impossibleDemand(this.#nodeStates(), demand);
    return impossible && `${fieldOf(impossible.resource)}: ${impossible.message}`;
  }

  /** Adds a job to the queue; it starts (`onPlace`) as soon as it is its turn and it fits. */
  enqueue(job: QueuedJob): void {
    if (this.#queued.has(job.id) || this.#running.has(job.id)) return;
    let low = 0;
    let high = this.#queue.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (queueOrder(this.#queue[middle], job) <= 0) low = middle + 1;
      else high = middle;
    }
    this.#queue.splice(low, 0, job);
    this.#queued.add(job.id);
    if (job.deadline !== undefined) this.#watchDeadline(job.deadline);
    // Nothing else changed: unless the new job could start now, a pass would decide as the
    // last one did, at the cost of a walk of the whole queue. (One is coming already: no
    // need to look.)
    if (!this.#passPending && this.#fitsNow(job)) this.#schedulePass();
  }

  /** Whether `job` fits what is free on a node of its labels now, and a slot is open. */
  #fitsNow({ demand, selector }: QueuedJob): boolean {
    const max = this.#options.maxRunningJobs;
    if (max !== undefined && this.#running.size >= max) return false;
    const gpus = Math.ceil(demand.GPU ?? 0);
    return this.#index.find(
      demand,
      (node) =>
        gpus <= (node.total.GPU ?? 0) - node.gpusInUse.length &&
        (!selector || matchesSelector(node.labels ?? {}, selector)),
    ) !== undefined;
  }

  /** Takes a waiting job out of the queue (stopped, deleted); false if it was not waiting. */
  cancel(id: string): boolean {
    if (!this.#queued.delete(id)) return false;
    this.#queue = this.#queue.filter((job) => job.id !== id);
    this.#reserved.delete(id);
    this.#disarmIfIdle();
    this.#schedulePass();
    return true;
  }

  /** The names of the nodes, the head's own first. */
  get nodeNames(): string[] {
    return this.#index.nodes.map((node) => node.name);
  }

  /** Counts a job that runs without having been placed now (re-adopted at start). */
  hold(allocation: Allocation): void {
    this.cancel(allocation.id);
    this.#stopRunning(allocation.id); // held already: counted once
    this.#startRunning(allocation);
  }

  /** A running job ended: what it held is free again. */
  release(id: string): void {
    if (this.#stopRunning(id)) this.#schedulePass();
  }

  /** What a running job holds; undefined when it is not running. */
  allocationOf(id: string): Allocation | undefined {
    return this.#running.get(id);
  }

  /** Whether `id` waits in the queue. */
  isQueued(id: string): boolean {
    return this.#queued.has(id);
  }

  /** Why a queued job waits (its place, what it lacks); undefined when it does not. */
  reasonFor(id: string): string | undefined {
    if (!this.#queued.has(id)) return undefined;
    return this.reasons(new Set([id])).get(id);
  }

  /**
   * Why each of the queued jobs among `ids` waits, in one walk of the queue. A job that
   * waited past the reservation wait counts as reserved, as the next pass will have it.
   */
  reasons(ids: ReadonlySet<string>): Map<string, string> {
    const reasons = new Map<string, string>();
    const nodes = this.#nodeStates();
    const states = new Map(nodes.map((node) => [node.name, node]));
    const max = this.#options.maxRunningJobs;
    const slotsFull = max !== undefined && this.#running.size >= max ? max : undefined;
    const now = Date.now();
    const setAside = new Map<string, Resources>();
    for (const [ahead, job] of this.#queue.entries()) {
      if (reasons.size === ids.size) break;
      const reserved = now - job.queuedAt >= this.#options.reserveAfterMs;
      if (ids.has(job.id)) {
        reasons.set(
          job.id,
          waitingReason(nodes, job.demand, {
            ahead,
            reserved,
            setAside,
            slotsFull,
            selector: job.selector,
          }),
        );
      }
      if (!reserved) continue;
      const node = this.#reserved.get(job.id) ??
        nodes.find((candidate) => impossibleDemand([candidate], job.demand) === undefined)?.name;
      if (node && states.has(node)) {
        setAside.set(node, addResources(setAside.get(node) ?? {}, job.demand));
      }
    }
    return reasons;
  }

  /** How many jobs wait in the queue. */
  get queueLength(): number {
    return this.#queue.length;
  }

  /**
   * Tells `listener` of every job that leaves the queue to start or expire (not of jobs
   * cancelled or re-adopted), before its owner hears of it; it must not throw. Returns
   * the unsubscribe.
   */
  onQueueExit(listener: (exit: QueueExit) => void): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  /** The nodes' capacity and use, and the queue's length. */
  state(): ClusterState {
    const nodes = this.#nodeStates().map((node): NodeUse => ({
      name: node.name,
      total: publicResources(node.total),
      used: publicResources(node.used),
      free: publicResources(freeOf(node)),
      gpus_in_use: [...node.gpusInUse].sort((a, b) => a - b),
      running: node.running,
      pending: this.#queue.filter((job) => impossibleDemand([node], job.demand) === undefined)
        .length,
    }));
    return {
      nodes,
      running: this.#running.size,
      pending: this.#queue.length,
      max_running_jobs: this.#options.maxRunningJobs ?? null,
      reserve_after_s: this.#options.reserveAfterMs / 1000,
    };
  }

  /** Stops deciding: no more placements or expiries. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#deadlineTimer);
  }

  /** Counts a running job in what its node holds. */
  #startRunning(allocation: Allocation): void {
    this.#running.set(allocation.id, allocation);
    const use = this.#use.get(allocation.node) ?? NO_USE;
    this.#used(allocation.node, {
      used: addResources(use.used, allocation.demand),
      gpusInUse: [...use.gpusInUse, ...allocation.gpus],
      running: use.running + 1,
    });
  }

  /** A running job no longer counts; false if it was not running. */
  #stopRunning(id: string): boolean {
    const allocation = this.#running.get(id);
    if (!allocation) return false;
    this.#running.delete(id);
    const use = this.#use.get(allocation.node)!;
    this.#used(
      allocation.node,
      use.running === 1 ? NO_USE : {
        used: subtractResources(use.used, allocation.demand),
        gpusInUse: use.gpusInUse.filter((gpu) => !allocation.gpus.includes(gpu)),
        running: use.running - 1,
      },
    );
    return true;
  }

  /** Node `name`'s running jobs hold `use` now. */
  #used(name: string, use: NodeUseCount): void {
    if (use === NO_USE) this.#use.delete(name);
    else this.#use.set(name, use);
    const node = this.#index.get(name);
    if (node) this.#index.set({ ...node, ...use });
  }

  /** A node with what its running jobs hold. */
  #stateOf(node: NodeCapacity): NodeState {
    return {
      name: node.name,
      total: node.total,
      labels: node.labels,
      ...(this.#use.get(node.name) ?? NO_USE),
    };
  }

  /** Each node with what its running jobs hold, in the order they were added. */
  #nodeStates(): readonly NodeState[] {
    return this.#index.nodes;
  }

  #schedulePass(): void {
    if (this.#passPending || this.#closed) return;
    this.#passPending = true;
    // Coalesced: a burst of submits or ends makes one pass.
    queueMicrotask(() => {
      this.#passPending = false;
      if (!this.#closed) this.#pass();
    });
  }

  #pass(): void {
    const { placements, reserved } = admit(this.#index, this.#queue, {
      now: Date.now(),
      reserveAfterMs: this.#options.reserveAfterMs,
      maxRunningJobs: this.#options.maxRunningJobs,
      placement: this.#options.placement,
    });
    this.#reserved = reserved;
    if (placements.length === 0) return;
    const placed = new Map(placements.map((placement) => [placement.id, placement]));
    const started: [QueuedJob, Placement][] = [];
    this.#queue = this.#queue.filter((job) => {
      const placement = placed.get(job.id);
      if (!placement) return true;
      this.#queued.delete(job.id);
      this.#startRunning({ ...placement, demand: job.demand });
      started.push([job, placement]);
      return false;
    });
    this.#disarmIfIdle();
    const now = Date.now();
    for (const [job] of started) this.#exited(job, "placed", now);
    for (const [job, placement] of started) job.onPlace(placement);
  }

  #exited(job: QueuedJob, outcome: QueueExit["outcome"], now: number): void {
    const exit = { id: job.id, outcome, waitedMs: Math.max(0, now - job.queuedAt) };
    for (const listener of this.#exitListeners) listener(exit);
  }

  #watchDeadline(deadline: number): void {
    if (deadline >= this.#nextDeadline || this.#closed) return;
    clearTimeout(this.#deadlineTimer);
    this.#nextDeadline = deadline;
    this.#deadlineTimer = setTimeout(() => this.#expire(), Math.max(0, deadline - Date.now()));
  }

  /** An empty queue needs no deadline timer (a timer that fires finding none re-arms). */
  #disarmIfIdle(): void {
    if (this.#queue.length > 0) return;
    clearTimeout(this.#deadlineTimer);
    this.#nextDeadline = Infinity;
  }

  #expire(): void {
    this.#nextDeadline = Infinity;
    const now = Date.now();
    const expired = this.#queue.filter((job) => job.deadline !== undefined && job.deadline <= now);
    for (const job of expired) this.cancel(job.id);
    const next = Math.min(...this.#queue.map((job) => job.deadline ?? Infinity));
    if (next !== Infinity) this.#watchDeadline(next);
    for (const job of expired) this.#exited(job, "expired", now);
    for (const job of expired) job.onExpire?.();
  }
}

/** What a node's running jobs hold. */
interface NodeUseCount {
  used: Resources;
  gpusInUse: number[];
  running: number;
}

const NO_USE: NodeUseCount = { used: {}, gpusInUse: [], running: 0 };

/** A node with Ray's `node:<name>` resource, which pins a job to it: every node has its own. */
function withPin(node: NodeCapacity): NodeCapacity {
  return { ...node, total: { ...node.total, [`node:${node.name}`]: 1 } };
}

/** What is free on `node`, every resource of its total named (0 included). */
function freeOf(node: NodeState): Resources {
  const free = subtractResources(node.total, node.used);
  return Object.fromEntries(Object.keys(node.total).map((name) => [name, free[name] ?? 0]));
}

/** Resources as readers see them: without the `node:<name>` pins. */
function publicResources(resources: Resources): Resources {
  return Object.fromEntries(
    Object.entries(resources).filter(([name]) => !name.startsWith("node:")),
  );
}
