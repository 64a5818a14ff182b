/**
 * `jobhead cluster`: each node's capacity and use, and the queue, from a running head's
 * `GET /api/cluster`. Human lines by default, `--json` for scripts.
 * @module
 */
import { JobheadError } from "../client/errors.ts";
import { JobClient } from "../client/http_client.ts";
import { connectionOf, parseCommandArgs, UsageError } from "./args.ts";
import { describeError, EXIT_CODES } from "./job.ts";
import { formatCluster, writeErr, writeOut } from "./output.ts";

const USAGE = `Usage: jobhead cluster [--json]

Prints each node of the head: its state and last heartbeat, every resource's use
(CPU 1.5/2 used, memory in GiB), and its running and pending jobs; then the
cluster's totals. --json prints GET /api/cluster as it is.

Options:
  --address URL    the head (JOBHEAD_ADDRESS, default http://127.0.0.1:8265)
  --token TOKEN    bearer token (JOBHEAD_AUTH_TOKEN)
  --json           machine-readable output on stdout
  -h, --help       this help

Exit codes: 0 ok, 2 bad command line, 4 the head could not be reached or refused.`;

/** Runs `cluster …` and resolves to the process's exit code. */
export async function runClusterCommand(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  let connection: { address: string; token?: string } = { address: "" };
  try {
    const { flags, positionals } = parseCommandArgs(args);
    if (flags.help) {
      await writeOut(`${USAGE}\n`);
      return EXIT_CODES.OK;
    }
    if (positionals.length) {
      throw new UsageError(`cluster takes no arguments, got ${positionals[0]}`);
    }
    connection = connectionOf(flags, env);
    const cluster = await new JobClient(connection).getCluster();
    await writeOut(flags.json ? `${JSON.stringify(cluster)}\n` : formatCluster(cluster));
    return EXIT_CODES.OK;
  } catch (err) {
    if (err instanceof UsageError) {
      await writeErr(`jobhead: ${err.message} (see: jobhead cluster --help)\n`);
      return EXIT_CODES.USAGE;
    }
    const { address, token } = connection;
    const why = err instanceof JobheadError && err.status === 404
      ? `the head at ${address} has no GET /api/cluster: it is older than the scheduler`
      : describeError(err, address, token);
    await writeErr(`jobhead: ${why}\n`);
    return EXIT_CODES.ERROR;
  }
}
