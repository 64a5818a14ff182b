/**
 * Small helpers to build the page: elements, badges, times and durations.
 * @module
 */

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 */

/**
 * Makes an element. `props` sets attributes; `on<event>` ones add listeners, and
 * `class`, `text` and `hidden` do what they say.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any>} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "hidden") {
      el.hidden = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "object" ? child : String(child));
  }
  return el;
}

/** Icons that tell statuses apart without colour; the text says it too. */
const ICONS = {
  PENDING: "○",
  RUNNING: "▶",
  SUCCEEDED: "✓",
  FAILED: "✕",
  STOPPED: "■",
  PENDING_CREATION: "○",
  ALIVE: "▶",
  RESTARTING: "↻",
  DEAD: "■",
  UPDATING: "↻",
  HEALTHY: "✓",
  UNHEALTHY: "✕",
  DELETING: "■",
};

/**
 * A status badge: icon, text and colour.
 * @param {string} status
 */
export function badge(status) {
  const icon = /** @type {Record<string, string>} */ (ICONS)[status] ?? "•";
  return h(
    "span",
    { class: `badge s-${status.toLowerCase()}`, "data-status": status },
    h("span", { class: "icon", "aria-hidden": "true", text: icon }),
    status,
  );
}

/**
 * A time as the reader's local date and time, or "—".
 * @param {number | null | undefined} ms epoch milliseconds
 */
export function formatTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString() : date.toLocaleString();
}

/**
 * A duration such as `850 ms`, `12.3 s`, `4 m 05 s` or `2 h 03 m`.
 * @param {number} ms
 */
export function formatDuration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)} m ${pad(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${pad(Math.floor(s / 60) % 60)} m`;
}

/**
 * A byte count such as `512 B`, `3.4 KiB` or `12.0 MiB`.
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * An error box (`role="alert"`) that `show` fills and `clear` empties.
 */
export function alertBox() {
  const el = h("div", { class: "alert", role: "alert", hidden: true });
  return {
    el,
    /** @param {unknown} err */
    show(err) {
      el.textContent = err instanceof Error ? err.message : String(err);
      el.hidden = false;
    },
    clear() {
      el.textContent = "";
      el.hidden = true;
    },
  };
}

/**
 * Asks a yes/no question in the page's dialog; resolves true when confirmed.
 * @param {{ title: string, body: string, confirm: string, danger?: boolean }} question
 * @returns {Promise<boolean>}
 */
export function confirmAction(question) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById("confirm"));
  const yes = h("button", {
    value: "yes",
    class: question.danger ? "danger" : "primary",
    text: question.confirm,
  });
  dialog.replaceChildren(
    h(
      "form",
      { method: "dialog" },
      h("h2", { text: question.title }),
      h("p", { text: question.body }),
      h("div", { class: "actions" }, h("button", { value: "no", text: "Cancel" }), yes),
    ),
  );
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
    yes.focus();
  });
}

/** Statuses, as far along as they go: a change never moves a job back. */
const RANK = { PENDING: 0, RUNNING: 1, SUCCEEDED: 2, FAILED: 2, STOPPED: 2 };

/**
 * Of two copies of one job, the one further along (the later when equal).
 * @template {{ status: string }} T
 * @param {T | undefined} known
 * @param {T} update
 * @returns {T}
 */
export function newerJob(known, update) {
  if (!known) return update;
  const rank = /** @type {Record<string, number>} */ (RANK);
  return rank[update.status] >= rank[known.status] ? update : known;
}

/**
 * Whether a job in `status` has ended for good.
 * @param {string} status
 */
export function isTerminal(status) {
  return status === "SUCCEEDED" || status === "FAILED" || status === "STOPPED";
}

/**
 * Wraps `task` so that calls made while it runs add up to one more run after it: a burst
 * of events costs at most two fetches, and the last one sees the latest state.
 * @param {() => Promise<void>} task
 * @returns {() => Promise<void>}
 */
export function coalesce(task) {
  let running = false;
  let again = false;
  return async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await task();
      } while (again);
    } finally {
      running = false;
    }
  };
}

/**
 * Makes `button` ask `question` first, then run `action`; an error shows in `errors`.
 * @param {HTMLButtonElement} button
 * @param {Parameters<typeof confirmAction>[0]} question
 * @param {() => Promise<void>} action
 * @param {ReturnType<typeof alertBox>} errors
 */
export function onConfirmedClick(button, question, action, errors) {
  button.addEventListener("click", async () => {
    if (!(await confirmAction(question))) return;
    errors.clear();
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      errors.show(err);
    } finally {
      button.disabled = false;
    }
  });
}

/** Elements whose duration ticks: `data-since` holds the start, in epoch milliseconds. */
const TICKING = "[data-since]";
/** @type {ReturnType<typeof setInterval> | undefined} */
let ticker;

/**
 * A duration that moves on by itself while `running`: every element this makes is
 * updated once a second by one shared timer (the first call starts it). Ended: a fixed
 * `end - start`, or "—" without an end.
 * @param {number} start epoch milliseconds
 * @param {number | null | undefined} end epoch milliseconds
 * @param {boolean} running
 */
export function liveDuration(start, end, running) {
  if (!running) {
    return h("span", { class: "duration", text: end ? formatDuration(end - start) : "—" });
  }
  ticker ??= setInterval(() => {
    for (const el of document.querySelectorAll(TICKING)) {
      const since = Number(/** @type {HTMLElement} */ (el).dataset.since);
      el.textContent = formatDuration(Date.now() - since);
    }
  }, 1000);
  return h("span", {
    class: "duration",
    "data-since": String(start),
    text: formatDuration(Date.now() - start),
  });
}

/** Ray's error types, in words. */
const ERROR_TYPES = {
  JOB_ENTRYPOINT_COMMAND_ERROR: "The entrypoint exited with a non-zero code",
  JOB_ENTRYPOINT_COMMAND_START_ERROR: "The entrypoint could not be started",
  RUNTIME_ENV_SETUP_FAILURE: "The runtime environment (working_dir, env_vars) could not be set up",
  JOB_SUPERVISOR_ACTOR_DIED: "The job's supervisor died (killed, or the head lost it)",
  JOB_SUPERVISOR_ACTOR_START_TIMEOUT: "The job's supervisor did not start in time",
};

/**
 * What an error type means, in words (the type itself when unknown).
 * @param {string} type
 */
export function explainErrorType(type) {
  return /** @type {Record<string, string>} */ (ERROR_TYPES)[type] ?? type;
}

/**
 * A button that copies `text` to the clipboard and says so.
 * @param {string} text
 * @param {string} label what is copied, for screen readers (e.g. "Copy id of job a1")
 */
export function copyButton(text, label) {
  const button = h("button", { type: "button", class: "copy", title: label, "aria-label": label });
  /** @param {string} state "", "done" or "failed" */
  const show = (state) => {
    button.dataset.state = state;
    button.setAttribute(
      "aria-label",
      state === "done" ? "Copied" : state === "failed" ? "Could not copy" : label,
    );
    button.replaceChildren(state === "done" ? "✓" : state === "failed" ? "✕" : copyIcon());
  };
  show("");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      show("done");
    } catch {
      show("failed"); // no clipboard here (an insecure origin): nothing copied
    }
  });
  button.addEventListener("blur", () => show(""));
  return button;
}

/** Two overlapping sheets, drawn: no font has to hold the glyph. */
function copyIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "12");
  svg.setAttribute("height", "12");
  svg.setAttribute("aria-hidden", "true");
  for (const [x, y] of [[5, 1], [1, 5]]) {
    const rect = document.createElementNS(ns, "rect");
    for (const [key, value] of Object.entries({ x, y, width: 10, height: 10, rx: 1.5 })) {
      rect.setAttribute(key, String(value));
    }
    rect.setAttribute("fill", x === 1 ? "var(--panel)" : "none");
    rect.setAttribute("stroke", "currentColor");
    rect.setAttribute("stroke-width", "1.5");
    svg.append(rect);
  }
  return svg;
}

/**
 * A form field: `input` (given `id`) under its label, with an optional hint below.
 * @param {string} id
 * @param {string} label
 * @param {HTMLElement} input
 * @param {string} [hint]
 * @returns {HTMLElement}
 */
export function field(id, label, input, hint) {
  input.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    input,
    hint ? h("small", { class: "muted", text: hint }) : null,
  );
}
