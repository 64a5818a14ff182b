/**
 * `deno task cluster`: a cluster to try on one machine: a throwaway PostgreSQL server, a
 * head and two worker nodes (labels `zone=a` and `zone=b`), each with its own data
 * directory and port. Prints the dashboard's URL; Ctrl-C stops everything and removes it.
 * @module
 */
import { join } from "node:path";
import { startPrivateServer } from "../tests/postgres.ts";
import { headRunFlags } from "./run_flags.ts";

const MAIN_TS = new URL("../main.ts", import.meta.url).pathname;
const LISTENING = /listening on (http:\/\/\S+)/;

/** A process of the cluster, started with `args`; resolves once it prints its address. */
async function launch(
  name: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ child: Deno.ChildProcess; url: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...headRunFlags(), MAIN_TS, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  for (;;) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`${name} exited before it listened`);
    seen += value;
    const match = LISTENING.exec(seen);
    if (match) {
      // Its later output goes on to this terminal.
      (async () => {
        for (;;) {
          const next = await lines.read();
          if (next.done) return;
          await Deno.stdout.write(new TextEncoder().encode(next.value));
        }
      })();
      return { child, url: match[1] };
    }
  }
}

/** Runs the cluster until SIGINT or SIGTERM, then stops it and removes its files. */
async function main(): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "jobhead-cluster-" });
  await using server = await startPrivateServer();
  const db = await server.createDatabase();
  const env = { PGPASSWORD: db.password };
  const store = ["--store", db.url, "--port", "0"];
  const children: Deno.ChildProcess[] = [];
  try {
    const head = await launch(
      "the head",
      ["start", ...store, "--name", "head", "--no-local-jobs", "--data-dir", join(root, "head")],
      env,
    );
    children.push(head.child);
    for (const [name, zone] of [["node1", "a"], ["node2", "b"]]) {
      const node = await launch(name, [
        "node",
        ...store,
        "--name",
        name,
        "--labels",
        `zone=${zone}`,
        "--data-dir",
        join(root, name),
      ], env);
      children.push(node.child);
    }
    console.log(
      `\njobhead cluster: a head and two nodes on PostgreSQL (${db.url})\n` +
        `Dashboard: ${head.url}/\n` +
        `Try: JOBHEAD_ADDRESS=${head.url} deno task jobhead job submit -- hostname\n` +
        `Ctrl-C stops the cluster and removes its files.`,
    );
    await new Promise<void>((resolve) => {
      Deno.addSignalListener("SIGINT", resolve);
      Deno.addSignalListener("SIGTERM", resolve);
    });
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(children.map((child) => child.status));
    await Deno.remove(root, { recursive: true });
  }
}

if (import.meta.main) {
  await main();
  Deno.exit(0); // the signal listeners would keep it alive
}
