/**
 * The cluster: a card per node with its state, last heartbeat, a bar per resource (used
 * of total, in words too) and its running and pending jobs, read from `GET /api/cluster`
 * and read again as jobs start and end. A head without a scheduler gets a note.
 * @module
 */
import { api, ApiError } from "../api.js";
import { alertBox, badge, coalesce, formatTime, h } from "../dom.js";
import { formatUse } from "../resources.js";

/**
 * After the last of a burst of job events, the view reads once more this much later: a
 * job's resources may be freed just after its end is announced, with no event of its own.
 */
const TRAILING_READ_MS = 1000;

/** @typedef {import("../main.js").ViewContext} ViewContext */
/**
 * One node of `GET /api/cluster`.
 * @typedef {object} ClusterNode
 * @property {string} name
 * @property {string} state
 * @property {number} last_heartbeat
 * @property {Record<string, number>} total
 * @property {Record<string, number>} used
 * @property {Record<string, number>} free
 * @property {number[]} gpus_in_use
 * @property {number} running
 * @property {number} pending
 * @property {string} [address] its agent, in a cluster
 * @property {Record<string, string>} [labels] its labels, in a cluster
 */
/**
 * The body of `GET /api/cluster`.
 * @typedef {object} Cluster
 * @property {ClusterNode[]} nodes
 * @property {number} running
 * @property {number} pending
 * @property {number | null} max_running_jobs
 * @property {number} reserve_after_s
 */

/** @param {ViewContext} ctx */
export function clusterView(ctx) {
  const errors = alertBox();
  const note = h("p", { class: "notice", role: "status", hidden: true });
  const summary = h("p", { class: "cluster-summary", role: "status" });
  const nodes = h("div", { class: "nodes" });
  const el = h(
    "section",
    { class: "view cluster" },
    h("div", { class: "toolbar" }, h("h1", { text: "Cluster" })),
    summary,
    errors.el,
    note,
    nodes,
  );

  const load = coalesce(async () => {
    try {
      /** @type {Cluster} */
      const cluster = await api("/api/cluster");
      errors.clear();
      note.hidden = true;
      render(cluster);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        summary.textContent = "";
        nodes.replaceChildren();
        note.textContent = "This head has no scheduler (it does not serve GET /api/cluster): " +
          "it is older than the cluster view, and starts every job as soon as it is submitted.";
        note.hidden = false;
      } else {
        errors.show(err);
      }
    }
  });

  /** @param {Cluster} cluster */
  function render(cluster) {
    const cap = cluster.max_running_jobs === null
      ? ""
      : ` (at most ${cluster.max_running_jobs} running at a time)`;
    summary.textContent = `${cluster.nodes.length} ${
      cluster.nodes.length === 1 ? "node" : "nodes"
    }: ${cluster.running} running, ${cluster.pending} pending${cap}.`;
    nodes.replaceChildren(...cluster.nodes.map(renderNode));
  }

  /** @param {ClusterNode} node */
  function renderNode(node) {
    const headingId = `node-${node.name}`;
    return h(
      "article",
      {
        class: "card node",
        "data-node": node.name,
        "data-state": node.state,
        "aria-labelledby": headingId,
      },
      h(
        "div",
        { class: "toolbar" },
        h("h2", { id: headingId }, h("code", { text: node.name })),
        badge(node.state),
        h("span", {
          class: "muted small",
          text: `Last heartbeat ${formatTime(node.last_heartbeat)}`,
        }),
        node.address ? h("code", { class: "muted small", text: node.address }) : null,
      ),
      node.labels && Object.keys(node.labels).length > 0
        ? h("p", {
          class: "labels muted small",
          text: `Labels: ${
            Object.entries(node.labels).map(([key, value]) => `${key}=${value}`).join(", ")
          }`,
        })
        : null,
      h(
        "dl",
        { class: "capacity" },
        Object.keys(node.total).map((name) => resourceUse(node, name)),
      ),
      h(
        "p",
        { class: "node-jobs" },
        h("span", { "data-count": "running", text: `${node.running} running` }),
        " · ",
        h("span", { "data-count": "pending", text: `${node.pending} pending` }),
        node.gpus_in_use.length ? ` · GPUs in use: ${node.gpus_in_use.join(", ")}` : null,
      ),
    );
  }

  /**
   * A resource's row: its name, a bar of used over total, and the same in words.
   * @param {ClusterNode} node
   * @param {string} name
   */
  function resourceUse(node, name) {
    const total = node.total[name];
    const used = node.used[name] ?? 0;
    const full = total > 0 && (node.free[name] ?? 0) <= 0;
    const words = total === 0 ? "none on this node" : `${formatUse(name, used, total)} used` +
      (full ? " (full)" : "");
    return h(
      "div",
      { class: `resource${full ? " full" : ""}`, "data-resource": name },
      h("dt", { text: name }),
      h(
        "dd",
        {},
        h("meter", {
          min: "0",
          max: String(total || 1),
          value: String(Math.min(used, total)),
          "aria-label": `${name} in use: ${words}`,
        }),
        h("span", { class: "use", text: words }),
      ),
    );
  }

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let trailing;
  function onJob() {
    load();
    clearTimeout(trailing);
    trailing = setTimeout(load, TRAILING_READ_MS);
  }

  const unsubscribe = [ctx.live.on("job", onJob), ctx.live.on("resync", load)];
  load();
  return {
    el,
    title: "Cluster",
    dispose() {
      clearTimeout(trailing);
      for (const off of unsubscribe) off();
    },
  };
}
