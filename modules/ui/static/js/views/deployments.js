// @ts-check
/// <reference lib="dom" />
/**
 * Serve deployments: status, version, replicas, and scaling.
 * @module
 */
import { api, ApiError } from "../api.js";
import { alertBox, badge, formatTime, h } from "../dom.js";

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

  let loading = false;
  let again = false;
  async function load() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      do {
        again = false;
        const deployments = await api("/api/serve/deployments");
        errors.clear();
        list.replaceChildren(...deployments.map(renderDeployment));
        empty.hidden = deployments.length > 0;
      } while (again);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        errors.show("The serve module is not loaded on this head.");
      } else {
        errors.show(err);
      }
    } finally {
      loading = false;
    }
  }

  /** @param {any} d */
  function renderDeployment(d) {
    const alive = d.replicas.filter((/** @type {any} */ r) => r.state === "ALIVE").length;
    const replicas = h("input", {
      type: "number",
      min: "0",
      max: "100",
      value: String(d.spec.num_replicas),
      "aria-label": `Replicas of ${d.name}`,
      class: "replicas-input",
    });
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
