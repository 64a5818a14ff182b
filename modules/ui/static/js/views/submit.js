/**
 * The submit form: entrypoint, submission id, working directory, environment variables,
 * metadata and priority, empty or filled in from a job to re-run (`#/submit?from=<id>`).
 * The head's error message shows when it refuses a submission.
 * @module
 */
import { api, seg } from "../api.js";
import { alertBox, field, h } from "../dom.js";

/** @typedef {import("../main.js").ViewContext} ViewContext */

/**
 * Parses `KEY=value` lines (blank lines are skipped); throws naming the bad line.
 * @param {string} text
 * @param {string} what the field, for messages
 * @returns {Record<string, string> | undefined}
 */
export function parsePairs(text, what) {
  /** @type {Record<string, string>} */
  const pairs = {};
  const lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`${what}, line ${i + 1}: expected KEY=value, got "${line}"`);
    pairs[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return Object.keys(pairs).length ? pairs : undefined;
}

/**
 * `KEY=value` lines of a record, the reverse of parsePairs.
 * @param {Record<string, string> | null | undefined} pairs
 */
export function formatPairs(pairs) {
  return Object.entries(pairs ?? {}).map(([key, value]) => `${key}=${value}`).join("\n");
}

/** Fields of a job that a copy keeps although the form does not show them. */
const KEPT_FIELDS = [
  "entrypoint_num_cpus",
  "entrypoint_num_gpus",
  "entrypoint_memory",
  "entrypoint_resources",
];

/**
 * @param {ViewContext} _ctx
 * @param {URLSearchParams} [params] `from`: the id of a job to copy
 */
export function submitView(_ctx, params = new URLSearchParams()) {
  const from = params.get("from");
  const errors = alertBox();
  /**
   * Fields of the copied job the form does not show, sent as they were.
   * @type {Record<string, unknown>}
   */
  let kept = {};
  const copied = h("p", { class: "notice", role: "status", hidden: true });
  const entrypoint = h("textarea", {
    name: "entrypoint",
    rows: "3",
    required: true,
    spellcheck: "false",
  });
  const submissionId = h("input", {
    name: "submission_id",
    autocomplete: "off",
    spellcheck: "false",
  });
  const workingDir = h("input", { name: "working_dir", autocomplete: "off", spellcheck: "false" });
  const envVars = h("textarea", { name: "env_vars", rows: "3", spellcheck: "false" });
  const metadata = h("textarea", { name: "metadata", rows: "2", spellcheck: "false" });
  const priority = h("input", {
    name: "priority",
    type: "number",
    step: "1",
    inputmode: "numeric",
    placeholder: "0",
  });
  const submit = h("button", { type: "submit", class: "primary", text: "Submit job" });
  const form = h(
    "form",
    { class: "submit-form", novalidate: true },
    field("entrypoint", "Entrypoint", entrypoint, "Run with /bin/sh -c on the head"),
    field(
      "submission-id",
      "Submission id",
      submissionId,
      "Optional: A-Z a-z 0-9 _ . - (generated when empty)",
    ),
    field(
      "working-dir",
      "Working directory",
      workingDir,
      "Optional: a directory on the head, or a pkg:// package",
    ),
    field("env-vars", "Environment variables", envVars, "One KEY=value per line"),
    field("metadata", "Metadata", metadata, "One key=value per line"),
    field(
      "priority",
      "Priority",
      priority,
      "Optional: a whole number; higher starts first among jobs waiting for resources (default 0)",
    ),
    errors.el,
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    /** @type {Record<string, unknown>} */
    const request = { ...kept, entrypoint: entrypoint.value };
    try {
      if (submissionId.value.trim()) request.submission_id = submissionId.value.trim();
      /** @type {Record<string, unknown>} */
      const runtimeEnv = {};
      const env = parsePairs(envVars.value, "Environment variables");
      if (env) runtimeEnv.env_vars = env;
      if (workingDir.value.trim()) runtimeEnv.working_dir = workingDir.value.trim();
      if (Object.keys(runtimeEnv).length) request.runtime_env = runtimeEnv;
      const meta = parsePairs(metadata.value, "Metadata");
      if (meta) request.metadata = meta;
      // Left out when empty: a head without a scheduler knows no priority.
      if (priority.value.trim()) {
        const value = Number(priority.value);
        if (!Number.isInteger(value)) throw new Error("Priority: expected a whole number");
        request.priority = value;
      }
    } catch (err) {
      errors.show(err);
      return;
    }
    submit.disabled = true;
    try {
      const { submission_id } = await api("/api/jobs/", { method: "POST", body: request });
      location.hash = `#/jobs/${encodeURIComponent(submission_id)}`;
    } catch (err) {
      errors.show(err);
    } finally {
      submit.disabled = false;
    }
  });

  /** Fills the form in from job `id`: everything but its submission id. */
  async function copyFrom(/** @type {string} */ id) {
    try {
      const job = await api(`/api/jobs/${seg(id)}`);
      entrypoint.value = job.entrypoint;
      envVars.value = formatPairs(job.runtime_env?.env_vars);
      workingDir.value = job.runtime_env?.working_dir ?? "";
      // Jobs recorded by earlier heads carry these two for themselves: the copy gets its own.
      const { job_submission_id: _id, ...meta } = job.metadata ?? {};
      if (meta.job_name === id) delete meta.job_name;
      metadata.value = formatPairs(meta);
      priority.value = job.priority ? String(job.priority) : "";
      kept = Object.fromEntries(
        KEPT_FIELDS.filter((key) => job[key] !== null && job[key] !== undefined)
          .map((key) => [key, job[key]]),
      );
      copied.textContent = `A copy of job ${id}: change what you like, then submit it.` +
        (Object.keys(kept).length ? ` Also kept: ${Object.keys(kept).join(", ")}.` : "");
      copied.hidden = false;
      entrypoint.focus();
    } catch (err) {
      errors.show(err);
    }
  }

  const el = h(
    "section",
    { class: "view submit" },
    h("h1", { text: from ? "Re-run a job" : "Submit a job" }),
    copied,
    form,
  );
  if (from) copyFrom(from);
  else queueMicrotask(() => entrypoint.focus());
  return { el, title: from ? `Re-run ${from}` : "Submit a job", dispose() {} };
}
