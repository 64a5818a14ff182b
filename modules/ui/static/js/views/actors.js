/**
 * Actors (supervised processes: job supervisors, serve replicas), live, with a graceful
 * stop and a forced kill.
 * @module
 */
import { api, ApiError } from "../api.js";
import { alertBox, badge, coalesce, formatTime, h, onConfirmedClick } from "../dom.js";

/** @typedef {import("../main.js").ViewContext} ViewContext */

/** Actors listed at most. */
const LIMIT = 500;
const LIVE_STATES = "PENDING_CREATION,ALIVE,RESTARTING";

/** @param {ViewContext} ctx */
export function actorsView(ctx) {
  const errors = alertBox();
  const notice = h("p", { class: "notice", role: "status", hidden: true });
  const filter = h(
    "select",
    { id: "actor-filter", "aria-label": "State", onchange: () => load() },
    h("option", { value: LIVE_STATES, text: "Not dead" }),
    h("option", { value: "", text: "All states" }),
    h("option", { value: "DEAD", text: "Dead" }),
  );
  const tbody = h("tbody", { "data-keyboard-list": "" });
  const empty = h("p", { class: "empty", hidden: true, text: "No actors match." });
  /** @type {Map<string, HTMLTableRowElement>} */
  const rowEls = new Map();
  const el = h(
    "section",
    { class: "view actors" },
    h("div", { class: "toolbar" }, h("h1", { text: "Actors" }), filter),
    h(
      "p",
      { class: "muted" },
      "Each job runs under a supervisor actor, and each serve replica is one. Killing a job's supervisor ends the job FAILED.",
    ),
    errors.el,
    notice,
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
            ["Actor", "Class", "Owner", "State", "Pid", "Started", "Restarts", ""].map((t) =>
              h("th", { text: t })
            ),
          ),
        ),
        tbody,
      ),
    ),
    empty,
  );

  /** @param {any} actor */
  function matches(actor) {
    return !filter.value || filter.value.split(",").includes(actor.state);
  }

  /** A read of the list is under way: its answer may predate the events seen meanwhile. */
  let loading = false;
  /** Reads the list again; a call during a read makes one more read after it. */
  const load = coalesce(async () => {
    loading = true;
    try {
      const actors = await api("/api/actors", {
        query: { state: filter.value, limit: String(LIMIT) },
      });
      errors.clear();
      rowEls.clear();
      tbody.replaceChildren(...actors.map(renderRow));
      empty.hidden = actors.length > 0;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        errors.show("The actors module is not loaded on this head.");
      } else {
        errors.show(err);
      }
    } finally {
      loading = false;
    }
  });

  /** @param {any} actor */
  function renderRow(actor) {
    const owner = actor.owner.kind === "job"
      ? h("a", {
        href: `#/jobs/${encodeURIComponent(actor.owner.id)}`,
        text: `job ${actor.owner.id}`,
      })
      : actor.owner.kind === "deployment"
      ? h("a", { href: "#/deployments", text: `deployment ${actor.owner.id}` })
      : `${actor.owner.kind} ${actor.owner.id}`;
    const alive = actor.state !== "DEAD";
    const tr = h(
      "tr",
      { "data-id": actor.actor_id, "data-state": actor.state },
      h("td", { class: "id" }, h("code", { text: actor.actor_id })),
      h("td", { text: actor.class_name }),
      h("td", {}, owner),
      h(
        "td",
        {},
        badge(actor.state),
        actor.death_cause ? h("div", { class: "muted small", text: actor.death_cause }) : null,
      ),
      h("td", { class: "num", text: actor.pid ?? "—" }),
      h("td", { text: formatTime(actor.start_time) }),
      h("td", { class: "num", text: actor.num_restarts }),
      h(
        "td",
        { class: "row-actions" },
        alive ? killButton(actor, false) : null,
        alive ? killButton(actor, true) : null,
      ),
    );
    rowEls.set(actor.actor_id, tr);
    return tr;
  }

  /**
   * A button that stops (SIGTERM, then SIGKILL) or kills (SIGKILL) the actor, asking first.
   * @param {any} actor
   * @param {boolean} force
   */
  function killButton(actor, force) {
    const button = h("button", {
      class: force ? "danger kill-force" : "kill-graceful",
      text: force ? "Kill" : "Stop",
    });
    onConfirmedClick(button, {
      title: `${force ? "Kill" : "Stop"} actor ${actor.actor_id}?`,
      body: force
        ? "Its whole process group gets SIGKILL now."
        : "Its process group gets SIGTERM, then SIGKILL after the grace period.",
      confirm: force ? "Kill now" : "Stop",
      danger: true,
    }, async () => {
      const answer = await api("/api/actors/kill", {
        query: { actor_id: actor.actor_id, force_kill: String(force) },
      });
      notice.textContent = answer.msg || `Actor ${actor.actor_id} killed`;
      notice.hidden = false;
    }, errors);
    return button;
  }

  /** @param {any} actor */
  function onActor(actor) {
    // A list read under way would overwrite this change with what it read before it:
    // read once more after it instead.
    if (loading) {
      load();
      return;
    }
    const tr = rowEls.get(actor.actor_id);
    if (!matches(actor)) {
      tr?.remove();
      rowEls.delete(actor.actor_id);
      return;
    }
    const fresh = renderRow(actor);
    if (tr) tr.replaceWith(fresh);
    else tbody.prepend(fresh);
    empty.hidden = true;
  }

  const unsubscribe = [ctx.live.on("actor", onActor), ctx.live.on("resync", load)];
  load();
  return {
    el,
    title: "Actors",
    dispose() {
      for (const off of unsubscribe) off();
    },
  };
}
