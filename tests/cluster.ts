/** Helpers of the cluster tests: processes of a cluster on a throwaway PostgreSQL. */
import type { HeadOptions, RunningHead } from "./harness.ts";
import type { TestDatabase } from "./postgres.ts";
import { waitFor } from "./poll.ts";

/** How to start one process of a cluster on `db`. */
export function member(
  db: TestDatabase,
  name: string,
  options: HeadOptions & { args?: string[] } = {},
): HeadOptions {
  return {
    ...options,
    env: { PGPASSWORD: db.password, ...options.env },
    extraArgs: ["--store", db.url, "--name", name, ...(options.args ?? [])],
  };
}

/** Waits until `head` sees the ALIVE nodes `names` (true polling: nodes join by themselves). */
export async function waitForNodes(head: RunningHead, names: string[]): Promise<void> {
  await waitFor(`nodes ${names.join(", ")} alive`, async () => {
    const { body } = await head.json("/api/cluster");
    const alive = body.nodes.filter((n: { state: string }) => n.state === "ALIVE")
      .map((n: { name: string }) => n.name);
    return names.every((name) => alive.includes(name)) || undefined;
  }, { timeoutMs: 30_000, intervalMs: 100 });
}
