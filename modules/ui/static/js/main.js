/**
 * The dashboard's entry point: signs in when the head wants a token, opens the event
 * stream, adds the modules' views to the nav, shows the view the address (`#/…`) names,
 * and answers the keyboard.
 * @module
 */
import { api, setUnauthorizedHandler } from "./api.js";
import { alertBox, h } from "./dom.js";
import { onShortcut } from "./keys.js";
import { Live } from "./live.js";
import { listModuleViews, moduleView } from "./module_view.js";
import { actorsView } from "./views/actors.js";
import { clusterView } from "./views/cluster.js";
import { deploymentsView, replicaLogView } from "./views/deployments.js";
import { jobView } from "./views/job.js";
import { jobsView } from "./views/jobs.js";
import { snapshotView } from "./views/snapshot.js";
import { submitView } from "./views/submit.js";

/**
 * What every view gets.
 * @typedef {object} ViewContext
 * @property {Live} live
 */
/**
 * A view on the page; `dispose` closes what it opened.
 * @typedef {object} View
 * @property {HTMLElement} el
 * @property {string} title
 * @property {() => void} dispose
 */

const main = /** @type {HTMLElement} */ (document.getElementById("view"));
const nav = /** @type {HTMLElement} */ (document.querySelector("nav"));
const liveState = /** @type {HTMLElement} */ (document.getElementById("live"));
const logout = /** @type {HTMLButtonElement} */ (document.getElementById("logout"));

const live = new Live((connected) => {
  liveState.textContent = connected ? "● Live" : "○ Offline";
  liveState.dataset.connected = String(connected);
});

/** @type {View | undefined} */
let current;
/** @type {import("./module_view.js").ModuleViewEntry[]} */
let moduleViews = [];

/** Shows the view the address names. */
function route() {
  current?.dispose();
  const [path, query] = (location.hash.slice(1) || "/jobs").split("?");
  const params = new URLSearchParams(query ?? "");
  const ctx = { live };
  const job = /^\/jobs\/([^/]+)$/.exec(path);
  const replicaLog = /^\/deployments\/([^/]+)\/replicas\/([^/]+)\/logs$/.exec(path);
  const contributed = /^\/m\/([^/]+)\/([^/]+)$/.exec(path);
  /** @type {[string, () => View][]} */
  const views = [
    ["/submit", () => submitView(ctx, params)],
    ["/actors", () => actorsView(ctx)],
    ["/cluster", () => clusterView(ctx)],
    ["/deployments", () => deploymentsView(ctx)],
    ["/snapshot", () => snapshotView(ctx)],
  ];
  /** @type {[string, () => View]} */
  const [section, make] = job
    ? ["/jobs", () => jobView(ctx, decodeURIComponent(job[1]), params)]
    : replicaLog
    ? ["/deployments", () =>
      replicaLogView(ctx, decodeURIComponent(replicaLog[1]), decodeURIComponent(replicaLog[2]))]
    : contributed
    ? [path, () => {
      const [module, id] = [contributed[1], contributed[2]].map(decodeURIComponent);
      const entry = moduleViews.find((v) =>
        v.module === module && v.id === id
      );
      return moduleView(ctx, entry, `${module}/${id}`);
    }]
    : views.find(([p]) => p === path) ?? ["/jobs", () => jobsView(ctx, params)];
  try {
    current = make();
  } catch (err) {
    const box = alertBox();
    box.show(err);
    current = { el: box.el, title: "Error", dispose() {} };
  }
  for (const link of document.querySelectorAll("nav a")) {
    const here = link.getAttribute("href") === `#${section}`;
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${current.title} · jobhead`;
  main.replaceChildren(current.el);
}

/** Asks for the token, then starts the page. */
function showLogin() {
  current?.dispose();
  current = undefined;
  live.close();
  logout.hidden = true;
  liveState.textContent = "";
  const errors = alertBox();
  const token = h("input", {
    id: "token",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const form = h(
    "form",
    { class: "login card" },
    h("h1", { text: "Sign in" }),
    h("p", {
      text:
        "This head wants its token. You are asked once: the head then keeps you signed in with a cookie.",
    }),
    h("div", { class: "field" }, h("label", { for: "token", text: "Token" }), token),
    errors.el,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", text: "Sign in" }),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    try {
      await api("/api/session", { method: "POST", body: { token: token.value } });
      token.value = "";
      await start();
    } catch (err) {
      errors.show(err);
      token.select();
    }
  });
  document.title = "Sign in · jobhead";
  main.replaceChildren(form);
  token.focus();
}

async function start() {
  const session = await api("/api/session");
  logout.hidden = !session.token_required || !session.authenticated;
  if (!session.authenticated) {
    showLogin();
    return;
  }
  await live.open();
  moduleViews = await listModuleViews();
  for (const link of nav.querySelectorAll("a[data-module]")) link.remove();
  nav.append(
    ...moduleViews.map((v) =>
      h("a", {
        href: `#/m/${encodeURIComponent(v.module)}/${encodeURIComponent(v.id)}`,
        "data-module": v.module,
        text: v.title,
      })
    ),
  );
  route();
}

let asking = false;
setUnauthorizedHandler(() => {
  if (asking) return;
  asking = true;
  queueMicrotask(() => {
    asking = false;
    showLogin();
  });
});
logout.addEventListener("click", async () => {
  await api("/api/session", { method: "DELETE" });
  showLogin();
});
addEventListener("hashchange", () => {
  if (current) route();
});
addEventListener("keydown", (event) => onShortcut(event, main));
start().catch((err) => {
  const box = alertBox();
  box.show(err);
  main.replaceChildren(box.el);
});
