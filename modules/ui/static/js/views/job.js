/**
 * One job: its details, Stop and Delete, and its log (opened at its end, following live
 * while the job runs). A failed job shows why first: its error type in words, and the
 * end of its message; a PENDING one, what it waits for.
 * @module
 */
import { api, ApiError, seg } from "../api.js";
import {
  alertBox,
  badge,
  coalesce,
  formatTime,
  h,
  isTerminal,
  liveDuration,
  onConfirmedClick,
} from "../dom.js";
import { LogView } from "../log_view.js";
import { formatDemand } from "../resources.js";

/** @typedef {import("../main.js").ViewContext} ViewContext */

const TAIL_STATES = {
  connecting: "Connecting…",
  live: "● Live",
  ended: "✓ Complete: the job has ended",
  reconnecting: "○ Connection lost: reconnecting",
  gone: "The job no longer exists",
  paused: "❚❚ Not following: showing earlier output",
};

/** What each error type (API.md, "error_type") means, in words. */
export const ERROR_TYPES = {
  JOB_ENTRYPOINT_COMMAND_ERROR: "The command exited with a non-zero status",
  JOB_ENTRYPOINT_COMMAND_START_ERROR: "The command could not be started",
  RUNTIME_ENV_SETUP_FAILURE:
    "Setting up the runtime environment (working_dir, env vars) failed before the command ran",
  JOB_SUPERVISOR_ACTOR_DIED:
    "The job's supervisor process was killed or lost; the job's processes were stopped with it",
  JOB_SUPERVISOR_ACTOR_START_TIMEOUT: "The job stayed PENDING too long and never started",
};

/**
 * @param {ViewContext} ctx
 * @param {string} id
 * @param {URLSearchParams} [params] `line`: the log line (from 1) to open at
 */
export function jobView(ctx, id, params) {
  const errors = alertBox();
  const title = h("h1", { class: "job-title" }, h("code", { text: id }));
  const statusSlot = h("span", { class: "status-slot" });
  const stopButton = h("button", { class: "danger", id: "stop-job", hidden: true, text: "■ Stop" });
  const deleteButton = h("button", { id: "delete-job", hidden: true, text: "Delete" });
  const factList = h("dl", { class: "facts" });
  const details = h("dl", { class: "details" });
  const tailState = h("span", { class: "tail-state", role: "status" });
  const why = h("div", { class: "why", hidden: true });
  const logView = new LogView(id, {
    onState: showTailState,
    jobExists: async () => {
      try {
        await api(`/api/jobs/${seg(id)}`);
        return true;
      } catch (err) {
        return !(err instanceof ApiError && err.status === 404);
      }
    },
  });
  const el = h(
    "section",
    { class: "view job" },
    h("p", {}, h("a", { href: "#/jobs", text: "← All jobs" })),
    h(
      "div",
      { class: "toolbar" },
      title,
      statusSlot,
      h("span", { class: "spacer" }),
      h("a", {
        class: "button",
        id: "rerun-job",
        href: `#/submit?from=${seg(id)}`,
        text: "↻ Re-run",
      }),
      stopButton,
      deleteButton,
    ),
    errors.el,
    why,
    factList,
    details,
    h("div", { class: "toolbar" }, h("h2", { text: "Log" }), tailState),
    logView.el,
  );

  /** @type {any} */
  let job;

  const load = coalesce(async () => {
    try {
      job = await api(`/api/jobs/${seg(id)}`);
      render();
    } catch (err) {
      errors.show(err);
      if (err instanceof ApiError && err.status === 404) {
        stopButton.hidden = deleteButton.hidden = true;
      }
    }
  });

  function render() {
    statusSlot.replaceChildren(badge(job.status));
    el.dataset.status = job.status;
    stopButton.hidden = isTerminal(job.status);
    deleteButton.hidden = !isTerminal(job.status);
    /** @type {[string, string | Node][]} */
    const facts = [
      ["Submitted", formatTime(job.start_time)],
      ["Ended", formatTime(job.end_time)],
      ["Duration", liveDuration(job.start_time, job.end_time, !isTerminal(job.status))],
      ["Exit code", job.driver_exit_code === null ? "—" : String(job.driver_exit_code)],
      ["Supervisor pid", job.driver_info?.pid ?? "—"],
      ["Resources", formatDemand(job) || "none"],
    ];
    // Jobs of a head without a scheduler have no priority.
    if (job.priority !== undefined) facts.push(["Priority", String(job.priority)]);
    if (job.error_type) facts.push(["Error type", job.error_type]);
    const explained = ERROR_TYPES[/** @type {keyof ERROR_TYPES} */ (job.error_type)];
    const pending = job.status === "PENDING";
    why.hidden = !job.error_type && !pending;
    why.classList.toggle("waiting", pending);
    if (pending) {
      why.replaceChildren(
        h("strong", { text: "Not started yet: " }),
        h("span", { class: "pending-reason", text: job.message }),
      );
    } else {
      why.replaceChildren(h("strong", { text: explained ?? job.error_type ?? "" }));
      if (explained) why.append(h("span", { class: "muted", text: ` (${job.error_type})` }));
    }
    factList.replaceChildren(
      ...facts.map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))),
    );
    /** @type {[string, string | Node][]} */
    const items = [
      ["Entrypoint", h("pre", { class: "code", text: job.entrypoint })],
      ["Message", h("pre", { class: "message", text: job.message || "—" })],
      ["Metadata", keyValues(job.metadata)],
      ["Runtime env", h("pre", { class: "code", text: JSON.stringify(job.runtime_env, null, 2) })],
    ];
    details.replaceChildren(
      ...items.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", {}, value)]),
    );
    // The end of a message is where an error says what went wrong.
    for (const box of details.querySelectorAll("pre.message")) box.scrollTop = box.scrollHeight;
  }

  onConfirmedClick(stopButton, {
    title: `Stop job ${id}?`,
    body: "Its processes get SIGTERM, then SIGKILL after the grace period. It ends STOPPED.",
    confirm: "Stop job",
    danger: true,
  }, async () => {
    await api(`/api/jobs/${seg(id)}/stop`, { method: "POST" });
    await load();
  }, errors);

  onConfirmedClick(deleteButton, {
    title: `Delete job ${id}?`,
    body: "Its record and its whole log are removed from the head. This cannot be undone.",
    confirm: "Delete job",
    danger: true,
  }, async () => {
    await api(`/api/jobs/${seg(id)}`, { method: "DELETE" });
    location.hash = "#/jobs";
  }, errors);

  /**
   * @param {import("../log_view.js").TailState} state
   * @param {string} [detail]
   */
  function showTailState(state, detail) {
    tailState.textContent = `${TAIL_STATES[state]}${detail ? ` ${detail}` : ""}`;
    tailState.dataset.state = state;
    if (state === "ended") load(); // the job has ended: its final status and exit code
  }

  const unsubscribe = [
    ctx.live.on("job", (row) => {
      // What a PENDING job waits for changes as other jobs start and end.
      if (row.submission_id === id || job?.status === "PENDING") load();
    }),
    ctx.live.on("resync", load),
  ];
  const line = Number(params?.get("line"));
  if (!(line > 0)) logView.prefetchEnd();
  load().then(async () => {
    if (!job) return;
    const running = !isTerminal(job.status);
    try {
      await logView.open({ running, line: line > 0 ? line : undefined });
    } catch (err) {
      errors.show(err);
    }
    if (!running) showTailState("ended");
  });
  return {
    el,
    title: `Job ${id}`,
    dispose() {
      logView.dispose();
      for (const off of unsubscribe) off();
    },
  };
}

/**
 * A small key/value table, or "—" when empty.
 * @param {Record<string, string>} entries
 */
function keyValues(entries) {
  const list = Object.entries(entries ?? {});
  if (list.length === 0) return "—";
  return h(
    "table",
    { class: "kv" },
    h("tbody", {}, list.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: v })))),
  );
}
