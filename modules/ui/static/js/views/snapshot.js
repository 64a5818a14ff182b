/**
 * `GET /api/snapshot` as a tree: objects and arrays fold and unfold, large ones start
 * folded, and folded parts are drawn only once opened.
 * @module
 */
import { api } from "../api.js";
import { alertBox, formatBytes, h } from "../dom.js";

/** @typedef {import("../main.js").ViewContext} ViewContext */

/** Objects and arrays with more entries than this start folded. */
const OPEN_MAX_ENTRIES = 20;
/** Levels below this start folded, whatever their size. */
const OPEN_MAX_DEPTH = 4;

/**
 * A JSON value as a tree of `<details>` (objects and arrays) and coloured leaves.
 * @param {unknown} value
 * @param {string} [key] its key in the parent, shown before it
 * @param {number} [depth]
 * @returns {HTMLElement}
 */
export function jsonTree(value, key, depth = 0) {
  const label = key === undefined ? null : h("span", { class: "json-key", text: `${key}: ` });
  if (value === null || typeof value !== "object") {
    const type = value === null ? "null" : typeof value;
    return h(
      "div",
      { class: "json-leaf" },
      label,
      h("span", { class: `json-${type}`, text: JSON.stringify(value) }),
    );
  }
  const entries = Array.isArray(value)
    ? value.map((v, i) => /** @type {[string, unknown]} */ ([String(i), v]))
    : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  const node = h(
    "details",
    { class: "json-node" },
    h("summary", {}, label, h("span", { class: "json-count", text: summary })),
  );
  let drawn = false;
  const draw = () => {
    if (drawn || !node.open) return;
    drawn = true;
    node.append(
      h("div", { class: "json-children" }, entries.map(([k, v]) => jsonTree(v, k, depth + 1))),
    );
  };
  node.addEventListener("toggle", draw);
  node.open = entries.length <= OPEN_MAX_ENTRIES && depth < OPEN_MAX_DEPTH;
  draw();
  return node;
}

/** @param {ViewContext} _ctx */
export function snapshotView(_ctx) {
  const errors = alertBox();
  const size = h("span", { class: "muted", role: "status" });
  const tree = h("div", { class: "json-tree snapshot", "aria-label": "Snapshot" });
  async function load() {
    try {
      const data = await api("/api/snapshot");
      errors.clear();
      tree.replaceChildren(jsonTree(data));
      const bytes = JSON.stringify(data).length;
      size.textContent = `${formatBytes(bytes)} · ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      errors.show(err);
    }
  }
  /** @param {boolean} open */
  const setAll = (open) => {
    for (const node of tree.querySelectorAll("details")) {
      /** @type {HTMLDetailsElement} */ (node).open = open;
    }
  };
  const el = h(
    "section",
    { class: "view snapshot-view" },
    h(
      "div",
      { class: "toolbar" },
      h("h1", { text: "Snapshot" }),
      size,
      h("span", { class: "spacer" }),
      h("button", { text: "Fold all", onclick: () => setAll(false) }),
      h("button", { text: "Refresh", onclick: load }),
    ),
    errors.el,
    tree,
  );
  load();
  return { el, title: "Snapshot", dispose() {} };
}
