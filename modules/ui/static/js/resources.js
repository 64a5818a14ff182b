/**
 * Resources as the page writes them: what a job asks for (`2 CPU · 1 GPU · 4 GiB`) and
 * how much of a node's capacity is in use (`1.5 / 2`, memory in GiB).
 * @module
 */

/**
 * What a job asks for (JobDetails' or a row's `entrypoint_*` fields).
 * @typedef {object} ResourceRequest
 * @property {number | null} [entrypoint_num_cpus]
 * @property {number | null} [entrypoint_num_gpus]
 * @property {number | null} [entrypoint_memory]
 * @property {Record<string, number> | null} [entrypoint_resources]
 */

/**
 * A job's request as named amounts, nonzero ones only, in the order CPU, GPU, memory,
 * then the custom ones.
 * @param {ResourceRequest} job
 * @returns {[string, number][]}
 */
export function demandOf(job) {
  /** @type {[string, number][]} */
  const named = [
    ["CPU", job.entrypoint_num_cpus ?? 0],
    ["GPU", job.entrypoint_num_gpus ?? 0],
    ["memory", job.entrypoint_memory ?? 0],
    ...Object.entries(job.entrypoint_resources ?? {}),
  ];
  return named.filter(([, amount]) => amount > 0);
}

/**
 * What a job asks for, compactly: `2 CPU · 1 GPU · 4 GiB · 1 license`; "" for nothing.
 * @param {ResourceRequest} job
 */
export function formatDemand(job) {
  return demandOf(job).map(([name, amount]) =>
    name === "memory" ? formatAmount(name, amount) : `${formatAmount(name, amount)} ${name}`
  ).join(" · ");
}

/**
 * An amount as people read it: memory in binary units (`4 GiB`, `1.5 MiB`), others as
 * numbers with at most 4 decimals.
 * @param {string} name
 * @param {number} amount
 */
export function formatAmount(name, amount) {
  if (name !== "memory") return String(Math.round(amount * 10_000) / 10_000);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = amount;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

/**
 * How much of a resource is in use: `1.5 / 2` (memory: `3.2 / 15.5 GiB`).
 * @param {string} name
 * @param {number} used
 * @param {number} total
 */
export function formatUse(name, used, total) {
  if (name !== "memory") return `${formatAmount(name, used)} / ${formatAmount(name, total)}`;
  const gib = (/** @type {number} */ bytes) => (bytes / 1024 ** 3).toFixed(1);
  return `${gib(used)} / ${gib(total)} GiB`;
}
