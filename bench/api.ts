/** The head's API as the benchmark sections call it. */
import type { RunningHead } from "../tests/harness.ts";

/** How long a section waits for one answer of the head. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Submits a job (`body` as POST /api/jobs/ takes it); resolves to its submission id. */
export async function submit(head: RunningHead, body: Record<string, unknown>): Promise<string> {
  const res = await head.fetch("/api/jobs/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST /api/jobs/ answered ${res.status}: ${text}`);
  return JSON.parse(text).submission_id;
}
