/**
 * Which jobs a search matches. Shared by the head (`GET /api/ui/jobs?q=`) and the page
 * (rows that arrive live), so both agree on what a search shows.
 * @module
 */

/**
 * @typedef {object} SearchableJob
 * @property {string} submission_id
 * @property {string} entrypoint
 * @property {Record<string, string>} metadata
 */

/**
 * Whether `job` matches `query`: every word of it, ignoring case, is in the job's id, its
 * entrypoint, or one of its metadata entries written `key=value`.
 * @param {SearchableJob} job
 * @param {string} query
 * @returns {boolean}
 */
export function matchesSearch(job, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const haystack = [
    job.submission_id,
    job.entrypoint,
    ...Object.entries(job.metadata).map(([key, value]) => `${key}=${value}`),
  ].join("\n").toLowerCase();
  return words.every((word) => haystack.includes(word));
}
