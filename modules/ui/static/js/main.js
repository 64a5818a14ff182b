/**
 * The dashboard's entry point: signs in when the head wants a token, opens the event
 * stream, and shows the view the address (`#/…`) names.
 * @module
 */
import { api, setUnauthorizedHandler } from "./api.js";
import { alertBox, h } from "./dom.js";
import { Live } from "./live.js";
import { actorsView } from "./views/actors.js";
import { deploymentsView } from "./views/deployments.js";
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
const liveState = /** @type {HTMLElement} */ (document.getElementById("live"));
const logout = /** @type {HTMLButtonElement} */ (document.getElementById("logout"));

const live = new Live((connected) => {
  liveState.textContent = connected ? "● Live" : "○ Offline";
  liveState.dataset.connected = String(connected);
});

/** @type {View | undefined} */
let current;

/** Shows the view the address names. */
function route() {
  current?.dispose();
  const [path, query] = (location.hash.slice(1) || "/jobs").split("?");
  const params = new URLSearchParams(query ?? "");
  const ctx = { live };
  const job = /^\/jobs\/([^/]+)$/.exec(path);
  /** @type {[string, () => View][]} */
  const views = [
    ["/submit", () => submitView(ctx)],
    ["/actors", () => actorsView(ctx)],
    ["/deployments", () => deploymentsView(ctx)],
    ["/snapshot", () => snapshotView(ctx)],
  ];
  const make = job
    ? () => jobView(ctx, decodeURIComponent(job[1]), params)
    : views.find(([p]) => p === path)?.[1] ?? (() => jobsView(ctx, params));
  current = make();
  const section = job ? "/jobs" : views.some(([p]) => p === path) ? path : "/jobs";
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
start().catch((err) => {
  const box = alertBox();
  box.show(err);
  main.replaceChildren(box.el);
});
