/**
 * The head's node and its scheduler: capacity from the machine and the configuration,
 * and `GET /api/cluster` (jobhead's addition, API.md) over the scheduler's state.
 */
import { Hono } from "hono";
import type { HeadConfig } from "../kit/config.ts";
import type { Logger } from "../kit/log.ts";
import { describeRoute } from "../kit/route_doc.ts";
import { detectCapacity } from "../scheduler/capacity.ts";
import { formatAmount, type Resources } from "../scheduler/resources.ts";
import { Scheduler } from "../scheduler/scheduler.ts";
import { ClusterResponse } from "./schemas.ts";
import type { Cluster } from "../kit/cluster.ts";
import type { ClusterLink } from "./cluster_link.ts";

/**
 * The scheduler of this head's node: detected capacity, with each configured amount in
 * its place (in a cluster, the nodes join as they register). Logs this node's capacity in
 * one line.
 */
export async function createScheduler(
  config: HeadConfig,
  options: { nodeName: string; logger: Logger; clustered: boolean },
): Promise<{ scheduler: Scheduler; total: Resources }> {
  const detected = await detectCapacity();
  const total: Resources = {
    ...detected.resources,
    ...config.resources,
    ...(config.numCpus !== undefined && { CPU: config.numCpus }),
    ...(config.numGpus !== undefined && { GPU: config.numGpus }),
    ...(config.memoryBytes !== undefined && { memory: config.memoryBytes }),
  };
  const shown = Object.entries(total).map(([name, amount]) =>
    `${name} ${formatAmount(name, amount)}`
  );
  options.logger.info(`capacity of node ${options.nodeName}: ${shown.join(", ")}`);
  const scheduler = new Scheduler({
    // In a cluster the nodes join as they register, this one too.
    nodes: options.clustered ? [] : [{ name: options.nodeName, total, labels: config.labels }],
    reserveAfterMs: config.reserveAfterS * 1000,
    maxRunningJobs: config.maxRunningJobs,
    placement: config.placement,
  });
  return { scheduler, total };
}

/** `GET /api/cluster`: the nodes' capacity and use, and the queue's length. */
export function clusterRoutes(scheduler: Scheduler, cluster?: ClusterLink): Hono {
  return new Hono().get(
    "/api/cluster",
    describeRoute({
      summary: "The nodes' capacity, use and state, and the queue's length",
      response: ClusterResponse,
    }),
    async (c) => {
      await cluster?.refreshNodes(); // their latest heartbeats
      return c.json(clusterState(scheduler, cluster) satisfies ClusterResponse);
    },
  );
}

/**
 * The scheduler's state as `GET /api/cluster` answers it; in a cluster, every node the
 * store knows, alive or dead, with its state and last heartbeat.
 */
export function clusterState(scheduler: Scheduler, cluster?: Cluster): ClusterResponse {
  const state = scheduler.state();
  if (!cluster) {
    const now = Date.now();
    return {
      ...state,
      nodes: state.nodes.map((node) => ({ ...node, state: "ALIVE", last_heartbeat: now })),
    };
  }
  const use = new Map(state.nodes.map((node) => [node.name, node]));
  return {
    ...state,
    nodes: cluster.nodes().map((node) => {
      const used = node.state === "ALIVE" ? use.get(node.name) : undefined;
      return {
        name: node.name,
        state: node.state,
        last_heartbeat: node.lastHeartbeat,
        address: node.address,
        labels: node.labels,
        total: node.total,
        used: used?.used ?? {},
        free: used?.free ?? node.total,
        gpus_in_use: used?.gpus_in_use ?? [],
        running: used?.running ?? 0,
        pending: used?.pending ?? 0,
      };
    }),
  };
}
