/**
 * Serve deployments: status, version, replicas, and scaling.
 * @module
 */
import { api, ApiError } from "../api.js";
import { alertBox, badge, coalesce, formatTime, h } from "../dom.js";

/** @typedef {import("../main.js").ViewContext} ViewContext */

/** @param {ViewContext} ctx */
export function deploymentsView(ctx) {
  const errors = alertBox();
  const list = h("div", { class: "deployments" });
  const empty = h(
    "p",
    { class: "empty", hidden: true },
    "No deployments. Create one with ",
    h("code", { text: "POST /api/serve/deployments" }),
    ".",
  );
  const el = h(
    "section",
    { class: "view deployments-view" },
    h(
      "div",
      { class: "toolbar" },
      h("h1", { text: "Deployments" }),
      h("button", { text: "Refresh", onclick: () => load() }),
    ),
    errors.el,
    list,
    empty,
  );

  /** Replica counts typed but not applied yet, by deployment: a redraw keeps them. */
  const drafts = new Map();
  const load = coalesce(async () => {
    try {
      const deployments = await api("/api/serve/deployments");
      errors.clear();
      const focused = document.activeElement?.getAttribute("data-name");
      list.replaceChildren(...deployments.map(renderDeployment));
      const input = focused && list.querySelector(`input[data-name="${CSS.escape(focused)}"]`);
      if (input) /** @type {HTMLInputElement} */ (input).focus();
      empty.hidden = deployments.length > 0;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        errors.show("The serve module is not loaded on this head.");
      } else {
        errors.show(err);
      }
    }
  });

  /** @param {any} d */
  function renderDeployment(d) {
    const alive = d.replicas.filter((/** @type {any} */ r) => r.state === "ALIVE").length;
    const replicas = h("input", {
      type: "number",
      min: "0",
      max: "100",
      value: drafts.get(d.name) ?? String(d.spec.num_replicas),
      "data-name": d.name,
      "aria-label": `Replicas of ${d.name}`,
      class: "replicas-input",
    });
    replicas.addEventListener("input", () => drafts.set(d.name, replicas.value));
    const scaleErrors = alertBox();
    const scale = h(
      "form",
      { class: "scale" },
      h("label", { text: "Replicas" }),
      replicas,
      h("button", { type: "submit", text: "Scale" }),
      scaleErrors.el,
    );
    scale.addEventListener("submit", async (event) => {
      event.preventDefault();
      scaleErrors.clear();
      try {
        await api("/api/serve/deployments", {
          method: "POST",
          body: { ...d.spec, num_replicas: Number(replicas.value) },
        });
        drafts.delete(d.name);
        await load();
      } catch (err) {
        scaleErrors.show(err);
      }
    });
    return h(
      "article",
      { class: "card deployment", "data-name": d.name },
      h("div", { class: "toolbar" }, h("h2", {}, h("code", { text: d.name })), badge(d.status)),
      h(
        "dl",
        { class: "details compact" },
        h("dt", { text: "Version" }),
        h("dd", {}, h("code", { text: d.spec.version })),
        h("dt", { text: "Replicas" }),
        h("dd", { text: `${alive} alive of ${d.spec.num_replicas} wanted` }),
        h("dt", { text: "Entrypoint" }),
        h("dd", {}, h("code", { text: d.spec.entrypoint })),
        d.message ? [h("dt", { text: "Message" }), h("dd", { text: d.message })] : null,
        h("dt", { text: "Updated" }),
        h("dd", { text: formatTime(d.updated_at) }),
      ),
      scale,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Replica", "State", "Version", "Pid", "Port", "Ready", "Restarts"].map((t) =>
                h("th", { text: t })
              ),
            ),
          ),
          h(
            "tbody",
            {},
            d.replicas.map((/** @type {any} */ r) =>
              h(
                "tr",
                {},
                h("td", {}, h("code", { text: r.replica_tag })),
                h("td", {}, badge(r.state)),
                h("td", {}, h("code", { text: r.version })),
                h("td", { class: "num", text: r.pid ?? "—" }),
                h("td", { class: "num", text: r.port }),
                h("td", { text: r.ready ? "✓ yes" : "✕ no" }),
                h("td", { class: "num", text: r.num_restarts }),
              )
            ),
          ),
        ),
      ),
    );
  }

  const unsubscribe = [
    ctx.live.on("actor", (actor) => {
      if (actor.owner?.kind === "deployment") load();
    }),
    ctx.live.on("resync", load),
  ];
  load();
  return {
    el,
    title: "Deployments",
    dispose() {
      for (const off of unsubscribe) off();
    },
  };
}
