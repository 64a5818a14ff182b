/**
 * The submit form: entrypoint, submission id, working directory, environment variables
 * and metadata. The head's error message shows when it refuses a submission.
 * @module
 */
import { api } from "../api.js";
import { alertBox, h } from "../dom.js";

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

/** @param {ViewContext} _ctx */
export function submitView(_ctx) {
  const errors = alertBox();
  /**
   * @param {string} id
   * @param {string} label
   * @param {HTMLElement} input
   * @param {string} [hint]
   */
  const field = (id, label, input, hint) => {
    input.id = id;
    return h(
      "div",
      { class: "field" },
      h("label", { for: id, text: label }),
      input,
      hint ? h("small", { class: "muted", text: hint }) : null,
    );
  };
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
    errors.el,
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.clear();
    /** @type {Record<string, unknown>} */
    const request = { entrypoint: entrypoint.value };
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

  const el = h("section", { class: "view submit" }, h("h1", { text: "Submit a job" }), form);
  queueMicrotask(() => entrypoint.focus());
  return { el, title: "Submit a job", dispose() {} };
}
