/**
 * The jobs table: newest first, filtered by status and searched on the head, a page at
 * a time, and kept up to date from the event stream (rows change in place, new jobs
 * appear at the top). Each row shows the resources its job asked for, and a PENDING
 * job what it waits for.
 * @module
 */
import { api } from "../api.js";
import {
  alertBox,
  badge,
  coalesce,
  copyButton,
  explainErrorType,
  formatTime,
  h,
  isTerminal,
  liveDuration,
  newerJob,
} from "../dom.js";
import { matchesSearch } from "../match.js";
import { formatDemand } from "../resources.js";

/** Short names of error types for the table; the row's title explains them in words. */
const SHORT_ERRORS = {
  JOB_ENTRYPOINT_COMMAND_ERROR: "exit code",
  JOB_ENTRYPOINT_COMMAND_START_ERROR: "did not start",
  RUNTIME_ENV_SETUP_FAILURE: "runtime env",
  JOB_SUPERVISOR_ACTOR_DIED: "supervisor died",
  JOB_SUPERVISOR_ACTOR_START_TIMEOUT: "start timeout",
};

/** Rows asked for at a time. */
const PAGE_SIZE = 100;
/**
 * How long after a job event the page reads again why its PENDING jobs wait (their
 * place and what is free change as other jobs start and end): a burst makes one read.
 */
const REASONS_DELAY_MS = 500;
/** PENDING jobs whose reasons are read at most (the newest). */
const MAX_REASONS = 1000;

/** @typedef {import("../main.js").ViewContext} ViewContext */
/**
 * @typedef {object} JobRow
 * @property {string} submission_id
 * @property {string} status
 * @property {string} entrypoint
 * @property {string | null} error_type
 * @property {number} start_time
 * @property {number | null} end_time
 * @property {number | null} driver_exit_code
 * @property {Record<string, string>} metadata
 * @property {number} entrypoint_num_cpus
 * @property {number} entrypoint_num_gpus
 * @property {number} entrypoint_memory
 * @property {Record<string, number>} entrypoint_resources
 * @property {string | null} [node] the node it runs on, in a cluster
 */

const FILTERS = [
  ["", "All statuses"],
  ["PENDING,RUNNING", "Active"],
  ["PENDING", "Pending"],
  ["RUNNING", "Running"],
  ["SUCCEEDED", "Succeeded"],
  ["FAILED", "Failed"],
  ["STOPPED", "Stopped"],
];

/**
 * @param {ViewContext} ctx
 * @param {URLSearchParams} params `status` and `q` from the address
 */
export function jobsView(ctx, params) {
  let status = params.get("status") ?? "";
  let search = params.get("q") ?? "";
  /** @type {Map<string, JobRow>} */
  const rows = new Map();
  /** @type {Map<string, HTMLTableRowElement>} */
  const rowEls = new Map();
  /**
   * Why each PENDING job on the page waits: its message, which the head works out when
   * the job is read (`GET /api/jobs/`); rows and events do not carry it.
   * @type {Map<string, string>}
   */
  const reasons = new Map();
  /** @type {string | null} */
  let nextCursor = null;
  let generation = 0;
  /** Rows changed by events, drawn at the next animation frame. */
  const dirty = new Set();
  let frame = 0;

  const errors = alertBox();
  const filter = h(
    "select",
    { id: "status-filter", "aria-label": "Status", onchange: () => changeQuery() },
    FILTERS.map(([value, label]) => h("option", { value, text: label })),
  );
  filter.value = status;
  const searchBox = h("input", {
    id: "job-search",
    type: "search",
    placeholder: "Search id, entrypoint, key=value",
    "aria-label": "Search jobs",
    value: search,
  });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let searchTimer;
  searchBox.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(changeQuery, 250);
  });
  const count = h("span", { class: "muted", role: "status" });
  const tbody = h("tbody", { "data-keyboard-list": "" });
  const empty = h("p", { class: "empty", hidden: true, text: "No jobs match." });
  const more = h("button", {
    class: "more",
    hidden: true,
    text: "Load older jobs",
    onclick: loadMore,
  });
  const el = h(
    "section",
    { class: "view jobs" },
    h(
      "div",
      { class: "toolbar" },
      h("h1", { text: "Jobs" }),
      filter,
      searchBox,
      count,
      h("a", { class: "button primary", href: "#/submit", text: "Submit a job" }),
    ),
    errors.el,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "jobs-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { text: "ID" }),
            h("th", { text: "Status" }),
            h("th", { text: "Error" }),
            h("th", { text: "Entrypoint" }),
            h("th", { text: "Resources" }),
            h("th", { class: "node", text: "Node" }),
            h("th", { class: "wide", text: "Started" }),
            h("th", { text: "Duration" }),
            h("th", { class: "num", text: "Exit" }),
            h("th", {}, h("span", { class: "visually-hidden", text: "Actions" })),
          ),
        ),
        tbody,
      ),
    ),
    empty,
    more,
  );

  function changeQuery() {
    status = filter.value;
    search = searchBox.value.trim();
    const query = new URLSearchParams();
    if (status) query.set("status", status);
    if (search) query.set("q", search);
    const hash = `#/jobs${query.size ? `?${query}` : ""}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    reload();
  }

  /** @param {JobRow} row */
  function matches(row) {
    return (!status || status.split(",").includes(row.status)) && matchesSearch(row, search);
  }

  async function reload() {
    const mine = ++generation;
    try {
      const page = await api("/api/ui/jobs", {
        query: { status, q: search, limit: String(PAGE_SIZE) },
      });
      if (mine !== generation) return;
      rows.clear();
      reasons.clear();
      rowEls.clear();
      tbody.replaceChildren();
      show(page);
    } catch (err) {
      if (mine === generation) errors.show(err);
    }
  }

  async function loadMore() {
    const mine = generation;
    more.disabled = true;
    try {
      const page = await api("/api/ui/jobs", {
        query: { status, q: search, limit: String(PAGE_SIZE), cursor: nextCursor ?? undefined },
      });
      if (mine === generation) show(page);
    } catch (err) {
      errors.show(err);
    } finally {
      more.disabled = false;
    }
  }

  /** @param {{ jobs: JobRow[], next_cursor: string | null }} page */
  function show(page) {
    errors.clear();
    for (const job of page.jobs) {
      if (rows.has(job.submission_id)) continue; // arrived live meanwhile
      rows.set(job.submission_id, job);
      const tr = renderRow(job);
      rowEls.set(job.submission_id, tr);
      tbody.append(tr);
    }
    nextCursor = page.next_cursor;
    updateFooter();
    refreshReasons();
  }

  function updateFooter() {
    more.hidden = nextCursor === null;
    empty.hidden = rows.size > 0 || nextCursor !== null;
    count.textContent = `${rows.size}${nextCursor ? "+" : ""} shown`;
  }

  /** @param {JobRow} job */
  function renderRow(job) {
    const tr = h("tr", { "data-id": job.submission_id, "data-status": job.status });
    fillRow(tr, job);
    return tr;
  }

  /**
   * @param {HTMLTableRowElement} tr
   * @param {JobRow} job
   */
  function fillRow(tr, job) {
    tr.dataset.status = job.status;
    // The node column shows once a job has a node: in a cluster.
    if (job.node) tbody.parentElement?.classList.add("has-nodes");
    const exit = job.driver_exit_code;
    const error = job.error_type;
    tr.replaceChildren(
      h(
        "td",
        { class: "id" },
        h("a", {
          href: `#/jobs/${encodeURIComponent(job.submission_id)}`,
          text: job.submission_id,
        }),
        copyButton(job.submission_id, `Copy the id of job ${job.submission_id}`),
      ),
      h("td", { class: "status" }, badge(job.status)),
      h(
        "td",
        { class: "error-type" },
        error
          ? h("span", {
            title: `${error}: ${explainErrorType(error)}`,
            "data-error-type": error,
            text: /** @type {Record<string, string>} */ (SHORT_ERRORS)[error] ?? error,
          })
          : null,
      ),
      h(
        "td",
        { class: "entrypoint" },
        h("code", { title: job.entrypoint, text: job.entrypoint }),
        job.status === "PENDING" && reasons.has(job.submission_id)
          ? h("div", { class: "pending-reason", text: reasons.get(job.submission_id) })
          : null,
      ),
      h("td", { class: "resources", text: formatDemand(job) || "—" }),
      h("td", { class: "node", text: job.node ?? "—" }),
      h("td", { class: "wide", text: formatTime(job.start_time) }),
      h(
        "td",
        { class: "duration" },
        liveDuration(job.start_time, job.end_time, !isTerminal(job.status)),
      ),
      h("td", { class: "num", text: exit === null ? "—" : String(exit) }),
      h(
        "td",
        { class: "row-actions" },
        h("a", {
          class: "button rerun",
          href: `#/submit?from=${encodeURIComponent(job.submission_id)}`,
          title: `Submit a copy of job ${job.submission_id}`,
          "aria-label": `Re-run job ${job.submission_id}`,
          text: "↻ Re-run",
        }),
      ),
    );
  }

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let reasonsTimer;
  function refreshReasonsSoon() {
    reasonsTimer ??= setTimeout(() => {
      reasonsTimer = undefined;
      refreshReasons();
    }, REASONS_DELAY_MS);
  }

  /**
   * Reads again why the PENDING jobs on the page wait: the messages of the newest PENDING
   * jobs, as many as the page shows and a few more (jobs submitted meanwhile come first).
   */
  const refreshReasons = coalesce(async () => {
    const waiting = [...rows.values()].filter((row) => row.status === "PENDING").length;
    if (waiting === 0) return;
    try {
      const jobs = await api("/api/jobs/", {
        query: { status: "PENDING", limit: String(Math.min(MAX_REASONS, waiting + 20)) },
      });
      for (const job of /** @type {{ submission_id: string, message: string }[]} */ (jobs)) {
        const id = job.submission_id;
        if (rows.get(id)?.status !== "PENDING" || reasons.get(id) === job.message) continue;
        reasons.set(id, job.message);
        dirty.add(id);
      }
      frame ||= requestAnimationFrame(draw);
    } catch {
      // The next job event reads them again.
    }
  });

  /** @param {JobRow} update */
  function onJob(update) {
    refreshReasonsSoon();
    const id = update.submission_id;
    const job = newerJob(rows.get(id), update);
    const tr = rowEls.get(id);
    if (tr) {
      rows.set(id, job);
    } else {
      // Only jobs inside the loaded window: older ones come with "Load older jobs".
      const oldest = [...rows.values()].at(-1);
      if (!matches(job) || (nextCursor !== null && oldest && job.start_time < oldest.start_time)) {
        return;
      }
      rows.set(id, job);
    }
    dirty.add(id);
    frame ||= requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    for (const id of dirty) {
      const job = rows.get(id);
      if (!job) continue;
      let tr = rowEls.get(id);
      if (!matches(job)) {
        tr?.remove();
        rows.delete(id);
        rowEls.delete(id);
        continue;
      }
      if (tr) {
        fillRow(tr, job);
        continue;
      }
      tr = renderRow(job);
      rowEls.set(id, tr);
      const next = [...tbody.rows].find((other) =>
        (rows.get(other.dataset.id ?? "")?.start_time ?? 0) <= job.start_time
      );
      tbody.insertBefore(tr, next ?? null);
    }
    dirty.clear();
    updateFooter();
  }

  const unsubscribe = [ctx.live.on("job", onJob), ctx.live.on("resync", reload)];
  reload();
  return {
    el,
    title: "Jobs",
    dispose() {
      clearTimeout(searchTimer);
      clearTimeout(reasonsTimer);
      cancelAnimationFrame(frame);
      for (const off of unsubscribe) off();
    },
  };
}
