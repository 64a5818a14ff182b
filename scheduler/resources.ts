/**
 * Resources as the scheduler counts them: named amounts (`CPU`, `GPU`, `memory` in bytes,
 * and custom ones), what a job needs, and what a node has. Pure: no I/O.
 */

/** Named amounts; a missing name is 0. */
export type Resources = Record<string, number>;

/** The resources every node has, whether or not it was told their amount. */
export const STANDARD_RESOURCES = ["CPU", "GPU", "memory"] as const;

/** Below this, an amount is 0: fractional requests (0.5 CPU) must add up without drift. */
const EPSILON = 1e-9;

/** What a job asks for at submit (Ray's fields; missing ones are 0). */
export interface ResourceRequest {
  entrypoint_num_cpus?: number | null;
  entrypoint_num_gpus?: number | null;
  entrypoint_memory?: number | null;
  entrypoint_resources?: Record<string, number> | null;
}

/** The resources a job needs to start: nonzero amounts only. */
export function demandOf(request: ResourceRequest): Resources {
  const demand: Resources = {
    CPU: request.entrypoint_num_cpus ?? 0,
    GPU: request.entrypoint_num_gpus ?? 0,
    memory: request.entrypoint_memory ?? 0,
    ...request.entrypoint_resources,
  };
  return withoutZeros(demand);
}

/** `a + b`, name by name. */
export function addResources(a: Resources, b: Resources): Resources {
  const sum: Resources = { ...a };
  for (const name in b) sum[name] = (sum[name] ?? 0) + b[name];
  return withoutZeros(sum);
}

/** `a - b`, name by name; may go below 0 (a reservation takes more than is free). */
export function subtractResources(a: Resources, b: Resources): Resources {
  const difference: Resources = { ...a };
  for (const name in b) difference[name] = (difference[name] ?? 0) - b[name];
  return withoutZeros(difference);
}

/** The names whose demand exceeds what `available` has, in the demand's order. */
export function shortOf(available: Resources, demand: Resources): string[] {
  return Object.entries(demand)
    .filter(([name, amount]) => amount > (available[name] ?? 0) + EPSILON)
    .map(([name]) => name);
}

/** Whether everything in `demand` is in `available`. */
export function fits(available: Resources, demand: Resources): boolean {
  for (const name in demand) if (demand[name] > (available[name] ?? 0) + EPSILON) return false;
  return true;
}

/** An amount as people read it: memory in binary units, others as numbers. */
export function formatAmount(name: string, amount: number): string {
  if (name !== "memory") return String(Math.round(amount * 10_000) / 10_000);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = amount;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, "");
  return `${shown} ${units[unit]}`;
}

/** The submit field a resource comes from, for error messages. */
export function fieldOf(name: string): string {
  switch (name) {
    case "CPU":
      return "entrypoint_num_cpus";
    case "GPU":
      return "entrypoint_num_gpus";
    case "memory":
      return "entrypoint_memory";
    default:
      return `entrypoint_resources.${name}`;
  }
}

const SIZE_SUFFIXES: Record<string, number> = {
  "": 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/**
 * Parses a byte count: digits with an optional `K`, `M`, `G` or `T` (binary units; a
 * trailing `B`, `iB` and lower case are accepted: `16G`, `512Mi`, `2gb`). Undefined when
 * it is not one.
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b?)\s*$/i.exec(text);
  if (!match) return undefined;
  const bytes = Number(match[1]) * SIZE_SUFFIXES[match[2].toUpperCase()];
  return Number.isFinite(bytes) ? Math.floor(bytes) : undefined;
}

function withoutZeros(resources: Resources): Resources {
  const kept: Resources = {};
  for (const name in resources) {
    if (Math.abs(resources[name]) > EPSILON) kept[name] = resources[name];
  }
  return kept;
}
