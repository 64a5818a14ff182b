/**
 * Serve deployments: status, version, replicas and their logs; create, scale, delete.
 * @module
 */
import { api, ApiError, seg } from "../api.js";
import {
  alertBox,
  badge,
  coalesce,
  field,
  formatBytes,
  formatTime,
  h,
  onConfirmedClick,
} from "../dom.js";

/** @typedef {import("../main.js").ViewContext} ViewContext */

/** @param {ViewContext} ctx */
export function deploymentsView(ctx) {
  const errors = alertBox();
  const list = h("div", { class: "deployments" });
  const empty = h(
    "p",
    { class: "empty", hidden: true },
    "No deployments. Create one here, or with ",
    h("code", { text: "POST /api/serve/deployments" }),
    ".",
  );
  const create = createForm(() => load());
  const el = h(
    "section",
    { class: "view deployments-view" },
    h(
      "div",
      { class: "toolbar" },
      h("h1", { text: "Deployments" }),
      h("button", { id: "new-deployment", text: "New deployment", onclick: create.toggle }),
      h("button", { text: "Refresh", onclick: () => load() }),
    ),
    create.el,
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
      // The card whose replica count is being typed stays as it is (a new one would lose
      // the caret and selection mid-keystroke); the next change redraws it once the field
      // has lost focus. Not redrawn on blur: a redraw between the press and the release of
      // a click on Scale would swallow the click.
      const active = document.activeElement;
      const editing = active instanceof HTMLInputElement && list.contains(active)
        ? active.closest("article")
        : null;
      const cards = deployments.map((/** @type {any} */ d) =>
        editing?.getAttribute("data-name") === d.name ? editing : renderDeployment(d)
      );
      const kept = editing ? cards.indexOf(editing) : -1;
      if (kept < 0) {
        list.replaceChildren(...cards);
      } else {
        for (const child of [...list.children]) if (child !== editing) child.remove();
        /** @type {HTMLElement} */ (editing).before(...cards.slice(0, kept));
        /** @type {HTMLElement} */ (editing).after(...cards.slice(kept + 1));
      }
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
    // In a cluster each replica runs on a node: its name is shown.
    const clustered = d.replicas.some((/** @type {any} */ r) => r.node);
    const deleteErrors = alertBox();
    const deleteButton = h("button", {
      class: "danger delete-deployment",
      text: "Delete",
      disabled: d.status === "DELETING",
    });
    onConfirmedClick(deleteButton, {
      title: `Delete deployment ${d.name}?`,
      body: "Every replica is stopped, then the deployment and its replicas' logs are removed.",
      confirm: "Delete deployment",
      danger: true,
    }, async () => {
      await api(`/api/serve/deployments/${seg(d.name)}`, { method: "DELETE" });
      await load();
    }, deleteErrors);
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
      h(
        "div",
        { class: "toolbar" },
        h("h2", {}, h("code", { text: d.name })),
        badge(d.status),
        h("span", { class: "spacer" }),
        deleteButton,
      ),
      deleteErrors.el,
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
              [
                "Replica",
                "State",
                ...(clustered ? ["Node"] : []),
                "Version",
                "Pid",
                "Port",
                "Ready",
                "Restarts",
                "Log",
              ].map((t) => h("th", { text: t })),
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
                ...(clustered ? [h("td", { class: "node", text: r.node ?? "—" })] : []),
                h("td", {}, h("code", { text: r.version })),
                h("td", { class: "num", text: r.pid ?? "—" }),
                h("td", { class: "num", text: r.port }),
                // Ready only while it runs: a replica that ended is not, whatever it last was.
                h("td", {
                  class: "ready",
                  text: r.state === "ALIVE" && r.ready ? "✓ yes" : "✕ no",
                }),
                h("td", { class: "num", text: r.num_restarts }),
                h(
                  "td",
                  {},
                  h("a", {
                    class: "replica-log",
                    href: `#/deployments/${seg(d.name)}/replicas/${seg(r.actor_id)}/logs`,
                    "aria-label": `Log of replica ${r.replica_tag}`,
                    text: "Log",
                  }),
                ),
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
    ctx.live.on("deployment", load),
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

/**
 * The form that creates a deployment (name, entrypoint, replicas, version), hidden until
 * `toggle` shows it.
 * @param {() => Promise<void>} onCreated
 */
function createForm(onCreated) {
  const errors = alertBox();
  const name = h("input", { required: true, autocomplete: "off", spellcheck: "false" });
  const entrypoint = h("textarea", { rows: "2", required: true, spellcheck: "false" });
  const replicas = h("input", { type: "number", min: "0", max: "100", value: "1" });
  const version = h("input", { autocomplete: "off", spellcheck: "false" });
  const el = h(
    "form",
    { class: "card create-deployment", hidden: true, novalidate: true },
    h("h2", { text: "New deployment" }),
    field(
      "deployment-name",
      "Name",
      name,
      "A-Z a-z 0-9 _ - (a deployment of this name is updated)",
    ),
    field("deployment-entrypoint", "Entrypoint", entrypoint, "Run with /bin/sh -c; serve on $PORT"),
    field("deployment-replicas", "Replicas", replicas),
    field("deployment-version", "Version", version, "Optional: derived from the entrypoint"),
    errors.el,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", text: "Cancel", onclick: () => toggle() }),
      h("button", { type: "submit", class: "primary", text: "Create" }),
    ),
  );
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    /** @type {Record<string, unknown>} */
    const spec = {
      name: name.value.trim(),
      entrypoint: entrypoint.value,
      num_replicas: Number(replicas.value),
    };
    if (version.value.trim()) spec.version = version.value.trim();
    try {
      await api("/api/serve/deployments", { method: "POST", body: spec });
      el.reset();
      el.hidden = true;
      await onCreated();
    } catch (err) {
      errors.show(err);
    }
  });
  function toggle() {
    el.hidden = !el.hidden;
    if (!el.hidden) name.focus();
  }
  return { el, toggle };
}

/** Bytes of a replica's log the page shows: its end. */
const REPLICA_LOG_BYTES = 256 * 1024;

/**
 * The end of one replica's log (`#/deployments/<name>/replicas/<actor_id>/logs`).
 * @param {ViewContext} _ctx
 * @param {string} name
 * @param {string} actorId
 */
export function replicaLogView(_ctx, name, actorId) {
  const errors = alertBox();
  const size = h("span", { class: "muted", role: "status" });
  const pre = h("pre", { class: "code replica-log-text", tabindex: "0" });
  async function load() {
    try {
      const range = await api(
        `/api/serve/deployments/${seg(name)}/replicas/${seg(actorId)}/logs`,
        { query: { offset: String(-REPLICA_LOG_BYTES) } },
      );
      errors.clear();
      pre.textContent = range.logs || "(empty)";
      size.textContent = range.offset > 0
        ? `the last ${formatBytes(range.size - range.offset)} of ${formatBytes(range.size)}`
        : formatBytes(range.size);
      pre.scrollTop = pre.scrollHeight;
    } catch (err) {
      errors.show(err);
    }
  }
  const el = h(
    "section",
    { class: "view replica-log-view" },
    h("p", {}, h("a", { href: "#/deployments", text: "← All deployments" })),
    h(
      "div",
      { class: "toolbar" },
      h("h1", {}, "Log of ", h("code", { text: actorId })),
      size,
      h("button", { text: "Refresh", onclick: load }),
    ),
    errors.el,
    pre,
  );
  load();
  return { el, title: `Log of ${actorId}`, dispose() {} };
}
