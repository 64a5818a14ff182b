/**
 * jobhead's command line. `jobhead start [options]` runs the head (`deno task start`);
 * `jobhead job <command>` and `jobhead cluster` talk to a running one
 * (`deno task jobhead job …`).
 * @module
 */
import { type Command, ConfigError, nodeUsage, parseConfig, startUsage } from "./host/config.ts";
import { DataDirInUseError } from "./host/datadir.ts";
import { startHead } from "./host/head.ts";
import { returnLargeBuffersToTheSystem } from "./host/allocator.ts";
import { collectStartupGarbage } from "./host/heap.ts";
import { BUILT_IN_MODULES, NODE_MODULES } from "./modules/mod.ts";
import { errorMessage } from "./storage/errors.ts";
import { createLogger, setLogFormat } from "./kit/log.ts";
import denoJson from "./deno.json" with { type: "json" };

const USAGE = `Usage: jobhead <command>
  start [options]   run the head (see: jobhead start --help)
  node [options]    run a worker node of a cluster (see: jobhead node --help)
  job <command>     submit, follow, stop, list and delete jobs (see: jobhead job --help)
  cluster           each node's capacity and use, and the queue (see: jobhead cluster --help)
  --version         print jobhead's version`;

/**
 * Runs the head (`start`), or a worker node (`node`: the jobs and serve modules alone, their
 * routes the agent endpoint heads reach it at), until SIGTERM or SIGINT.
 */
async function runHead(args: string[], command: Command): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(command === "start" ? startUsage() : nodeUsage());
    return 0;
  }
  returnLargeBuffersToTheSystem();
  let config;
  try {
    config = parseConfig(args, Deno.env.toObject(), command);
    if (command === "node" && config.store === "kv") {
      throw new ConfigError(
        "A node joins a cluster: give its store with --store postgres://USER@HOST:PORT/DB " +
          "(or JOBHEAD_STORE)",
      );
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`jobhead: ${err.message}`);
    return 2;
  }
  setLogFormat(config.logFormat);
  const logger = createLogger("head");
  // A stray rejection is a bug to log, never a reason to take the head and its API down.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger.error("unhandled rejection:", event.reason);
  });
  let head;
  try {
    head = await startHead(config, command === "start" ? BUILT_IN_MODULES : NODE_MODULES);
  } catch (err) {
    // A data directory in use is said as is; anything else is why the head cannot start.
    const message = err instanceof DataDirInUseError
      ? err.message
      : `cannot start: ${errorMessage(err)}`;
    // Scripts and people read this line: in text it stays `jobhead: …`, as before the log.
    if (config.logFormat === "json") logger.error(message);
    else console.error(`jobhead: ${message}`);
    return 1;
  }
  // What starting left behind goes now, not once V8 finds the head idle.
  collectStartupGarbage();
  console.log(
    command === "start"
      ? `jobhead listening on ${head.info.address}`
      : `jobhead node ${config.nodeName} listening on ${head.info.address}`,
  );
  const openable = openableAddresses(head.info.address);
  if (openable) console.log(`jobhead: open ${openable}`);
  const stop = () => head.shutdown();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await head.finished;
  await head.shutdown();
  return 0;
}

/**
 * For a head listening on every address (0.0.0.0, ::), addresses a browser can open:
 * loopback here, the host's name from elsewhere. Undefined for a specific address.
 */
export function openableAddresses(address: string): string | undefined {
  const url = new URL(address);
  if (url.hostname !== "0.0.0.0" && url.hostname !== "[::]") return undefined;
  return `http://127.0.0.1:${url.port}/ on this machine, or http://${Deno.hostname()}:${url.port}/ ` +
    `from others`;
}

if (import.meta.main) {
  // Under `deno task` the working directory is the checkout; paths the user types
  // (--data-dir, --module, --working-dir) are meant from where they typed them.
  const userCwd = Deno.env.get("INIT_CWD");
  if (userCwd) {
    try {
      Deno.chdir(userCwd);
    } catch {
      // gone or not ours: stay where the task runs
    }
  }
  const [command, ...rest] = Deno.args;
  let code: number;
  if (command === "job") {
    // Loaded only here: the job commands need none of the head's modules.
    const { runJobCommand } = await import("./cli/job.ts");
    code = await runJobCommand(rest);
  } else if (command === "cluster") {
    const { runClusterCommand } = await import("./cli/cluster.ts");
    code = await runClusterCommand(rest);
  } else if (command === "start" || command === "node") {
    code = await runHead(rest, command);
  } else if (command === "--version" || command === "version") {
    console.log(`jobhead ${denoJson.version}`);
    code = 0;
  } else {
    console.error(USAGE);
    code = command === undefined || command === "--help" ? 0 : 2;
  }
  Deno.exit(code);
}
