/**
 * The raw `GET /api/snapshot`, pretty-printed.
 * @module
 */
import { api } from "../api.js";
import { alertBox, formatBytes, h } from "../dom.js";

/** @typedef {import("../main.js").ViewContext} ViewContext */

/** @param {ViewContext} _ctx */
export function snapshotView(_ctx) {
  const errors = alertBox();
  const size = h("span", { class: "muted", role: "status" });
  const pre = h("pre", { class: "code snapshot", tabindex: "0" });
  async function load() {
    try {
      const text = JSON.stringify(await api("/api/snapshot"), null, 2);
      errors.clear();
      pre.textContent = text;
      size.textContent = `${formatBytes(text.length)} · ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      errors.show(err);
    }
  }
  const el = h(
    "section",
    { class: "view snapshot-view" },
    h(
      "div",
      { class: "toolbar" },
      h("h1", { text: "Snapshot" }),
      size,
      h("button", { text: "Refresh", onclick: load }),
    ),
    errors.el,
    pre,
  );
  load();
  return { el, title: "Snapshot", dispose() {} };
}
