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

/**
 * The scheduler of this head's node: detected capacity, with each configured amount in
 * its place. Logs the capacity in one line.
 */
export async function createScheduler(
  config: HeadConfig,
  options: { nodeName: string; logger: Logger },
): Promise<Scheduler> {
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
  return new Scheduler({
    nodes: [{ name: options.nodeName, total }],
    reserveAfterMs: config.reserveAfterS * 1000,
    maxRunningJobs: config.maxRunningJobs,
  });
}

/** `GET /api/cluster`: the nodes' capacity and use, and the queue's length. */
export function clusterRoutes(scheduler: Scheduler): Hono {
  return new Hono().get(
    "/api/cluster",
    describeRoute({
      summary: "The nodes' capacity, use and state, and the queue's length",
      response: ClusterResponse,
    }),
    (c) => c.json(clusterState(scheduler) satisfies ClusterResponse),
  );
}

/** The scheduler's state as `GET /api/cluster` answers it. */
export function clusterState(scheduler: Scheduler): ClusterResponse {
  const state = scheduler.state();
  const now = Date.now();
  return {
    ...state,
    nodes: state.nodes.map((node) => ({ ...node, state: "ALIVE", last_heartbeat: now })),
  };
}
