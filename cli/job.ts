/**
 * `jobhead job …`: submit, follow, inspect, stop, list and delete jobs on a running head,
 * the way `ray job …` does. Human output by default, `--json` for scripts; logs go to
 * stdout and everything else to stderr, so `> out.txt` keeps only the job's output.
 * @module
 */
import {
  ConnectionError,
  JobheadError,
  TailClosedError,
  WorkingDirError,
} from "../client/errors.ts";
import { JobClient } from "../client/http_client.ts";
import { errorMessage } from "../storage/errors.ts";
import type { JobDetails } from "../modules/jobs/schemas.ts";
import {
  connectionOf,
  type Flags,
  hasMetadata,
  jobIdOf,
  metadataFilterOf,
  parseCommandArgs,
  positiveIntegerOf,
  statusesOf,
  SUBMIT_FLAGS,
  submitOptionsOf,
  tailLines,
  UsageError,
} from "./args.ts";
import {
  formatBytes,
  formatJobStatus,
  formatJobTable,
  oneLine,
  OrderedOutput,
  Spinner,
  writeErr,
  writeOut,
} from "./output.ts";

/**
 * Exit codes of `job` commands. A `submit` that waits (and a `stop` that waits) ends with
 * the job's outcome: SUCCEEDED 0, FAILED 1, STOPPED 3.
 */
export const EXIT_CODES = {
  /** The command did what was asked; a waited-for job SUCCEEDED. */
  OK: 0,
  /** The job waited for ended FAILED. */
  FAILED: 1,
  /** The command line is wrong. */
  USAGE: 2,
  /** The job waited for ended STOPPED. */
  STOPPED: 3,
  /** The head could not be reached, or refused the request (401, 403, 404, 409, …). */
  ERROR: 4,
  /** Ctrl-C detached from a followed job; it keeps running. */
  DETACHED: 130,
} as const;

const USAGE = `Usage: jobhead job <command> [options]

Commands:
  submit [options] -- ENTRYPOINT…   submit a job and follow its logs until it ends
  status ID                         show a job's status
  logs ID [--follow] [--tail N]     print a job's log; --follow streams it until the job ends
  stop ID [--no-wait]               stop a job and wait until it has stopped
  list [--status S,S] [--limit N]   list jobs, newest first, with the resources each
                                    asked for and why a PENDING one waits
  delete ID                         delete an ended job and its log

Options of every command:
  --address URL    the head (JOBHEAD_ADDRESS, default http://127.0.0.1:8265)
  --token TOKEN    bearer token (JOBHEAD_AUTH_TOKEN)
  --json           machine-readable output on stdout
  -h, --help       help for the command

Exit codes: 0 ok (a followed job SUCCEEDED), 1 the job FAILED, 2 bad command line,
3 the job was STOPPED, 4 the head could not be reached or refused (401, 403, 404, 409, …),
130 Ctrl-C detached from the job (it keeps running).`;

const SUBMIT_USAGE = `Usage: jobhead job submit [options] -- ENTRYPOINT…

Runs ENTRYPOINT with /bin/sh -c on the head. One word is taken as written
("echo a && echo b"); several are quoted so each stays one argument.
The job waits PENDING until the head has the resources it asks for free
(jobhead cluster shows what is in use; jobhead job list shows why it waits).
Without --no-wait it streams the job's logs and exits with its outcome:
0 SUCCEEDED, 1 FAILED, 3 STOPPED. Ctrl-C asks whether to stop the job (y)
or keep following it (n); Ctrl-C again detaches (exit 130), and so does the
first one when stdin is not a terminal. The job's stdin is /dev/null: this
command does not forward its own stdin.

Options:
  --submission-id ID          the job's id (default: generated)
  --working-dir DIR           upload local DIR (zipped, skipping .git and what its
                              .gitignore files name) and run the job in it; a
                              pkg://… or gcs://… URI is used as is
  --exclude PATTERN           leave more out of DIR, .gitignore-style; repeatable
  --runtime-env-json JSON     runtime_env: env_vars, working_dir (a directory on the
                              head or a package URI), excludes (for --working-dir)
  --metadata-json JSON        metadata, an object of strings
  --num-cpus N                CPUs the job needs (fractions too: 0.5)
  --num-gpus N                GPUs the job needs
  --memory BYTES              memory the job needs: bytes, or with K, M, G, T (16G)
  --resources JSON            custom resources it needs, e.g. '{"license": 1}'
                              (Ray's names work too: --entrypoint-num-cpus,
                              --entrypoint-num-gpus, --entrypoint-memory,
                              --entrypoint-resources)
  --priority N                higher starts first among waiting jobs (default 0;
                              a negative one as --priority=-1)
  --no-wait                   print the job id and exit at once
  --address URL  --token TOKEN  --json`;

/** Runs `job <command> …` and resolves to the process's exit code. */
export async function runJobCommand(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<number> {
  const [command, ...rest] = args;
  const commands: Record<string, (args: string[], env: Env) => Promise<number>> = {
    submit,
    status,
    logs,
    stop,
    list,
    delete: remove,
  };
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    await writeOut(`${USAGE}\n`);
    return command === undefined ? EXIT_CODES.USAGE : EXIT_CODES.OK;
  }
  const run = commands[command];
  if (!run) {
    await writeErr(`jobhead: unknown command "job ${command}"\n${USAGE}\n`);
    return EXIT_CODES.USAGE;
  }
  let token: string | undefined;
  let address = "";
  try {
    return await run(rest, {
      vars: env,
      connect(flags) {
        ({ address, token } = connectionOf(flags, env));
        return new JobClient({ address, token });
      },
    });
  } catch (err) {
    if (err instanceof UsageError) {
      await writeErr(`jobhead: ${err.message} (see: jobhead job ${command} --help)\n`);
      return EXIT_CODES.USAGE;
    }
    await writeErr(`jobhead: ${describeError(err, address, token)}\n`);
    return EXIT_CODES.ERROR;
  }
}

/** What a command gets besides its arguments. */
interface Env {
  vars: Record<string, string | undefined>;
  /** A client for the head the flags (or the environment) name. */
  connect(flags: Flags): JobClient;
}

/** One line saying what went wrong, and what to do about it when that is known. */
export function describeError(err: unknown, address: string, token: string | undefined): string {
  if (err instanceof ConnectionError) {
    return `${err.message}: is it running? Point to it with --address or JOBHEAD_ADDRESS`;
  }
  if (err instanceof JobheadError && err.status === 401) {
    return `the head at ${address} requires a token: pass --token or set JOBHEAD_AUTH_TOKEN`;
  }
  // A wrong token is a 403 (API.md); without a token a 403 says why itself.
  if (err instanceof JobheadError && err.status === 403 && token !== undefined) {
    return `the head at ${address} rejected the token: check --token or JOBHEAD_AUTH_TOKEN`;
  }
  if (err instanceof JobheadError || err instanceof WorkingDirError) return oneLine(err.message);
  if (err instanceof Deno.errors.BrokenPipe) return "output closed";
  return oneLine(errorMessage(err));
}

async function submit(args: string[], env: Env): Promise<number> {
  const { flags, positionals } = parseCommandArgs(args, SUBMIT_FLAGS);
  if (flags.help) return await help(SUBMIT_USAGE);
  const options = submitOptionsOf(flags, positionals);
  const client = env.connect(flags);
  let request = options;
  if (options.workingDir !== undefined) {
    const { workingDir, excludes, maxWorkingDirBytes: _, ...rest } = options;
    const uri = await uploadWorkingDir(client, workingDir, excludes);
    request = { ...rest, runtime_env: { ...rest.runtime_env, working_dir: uri } };
  }
  const { submission_id: id, job_id } = await client.submitJob(request);
  if (flags["no-wait"]) {
    if (flags.json) await writeOut(`${JSON.stringify({ job_id, submission_id: id })}\n`);
    else await writeOut(`${id}\n`);
    await writeErr(
      `Job '${id}' submitted to ${client.address}. Follow it: jobhead job logs --follow ${id}\n`,
    );
    return EXIT_CODES.OK;
  }
  await writeErr(
    `Job '${id}' submitted to ${client.address}\n` +
      `Following its logs; Ctrl-C to stop it or detach (--no-wait skips this)\n`,
  );
  // With --json, stdout carries the job's final details alone, so the logs go to stderr.
  const job = await followJob(client, id, { toStderr: Boolean(flags.json), interactive: true });
  if (job === undefined) {
    await writeErr(
      `\nDetached: job '${id}' keeps running. Follow it: jobhead job logs --follow ${id}\n`,
    );
    return EXIT_CODES.DETACHED;
  }
  if (flags.json) await writeOut(`${JSON.stringify(job)}\n`);
  await writeErr(`${outcomeLine(job)}\n`);
  return outcomeCode(job);
}

/** Uploads a working dir unless the head has it, saying which; resolves to its URI. */
async function uploadWorkingDir(
  client: JobClient,
  dir: string,
  excludes: string[] | undefined,
): Promise<string> {
  const spinner = new Spinner();
  spinner.start(`Packing working dir ${dir}`);
  let upload;
  try {
    upload = await client.uploadWorkingDir(dir, { excludes });
  } finally {
    spinner.stop();
  }
  const what = `${upload.entries} entries, ${formatBytes(upload.bytes)}`;
  await writeErr(
    upload.uploaded
      ? `Uploaded working dir ${dir} as ${upload.uri} (${what})\n`
      : `Working dir ${dir} is on the head already as ${upload.uri} (${what})\n`,
  );
  if (upload.skipped.length) {
    await writeErr(
      `Left out (links to nothing packed, special files): ${upload.skipped.join(", ")}\n`,
    );
  }
  return upload.uri;
}

async function status(args: string[], env: Env): Promise<number> {
  const { flags, positionals } = parseCommandArgs(args);
  if (flags.help) return await help("Usage: jobhead job status ID [--json]");
  const job = await env.connect(flags).getJob(jobIdOf(positionals, "status"));
  await writeOut(flags.json ? `${JSON.stringify(job)}\n` : formatJobStatus(job));
  return EXIT_CODES.OK;
}

const LOGS_USAGE = `Usage: jobhead job logs ID [--follow] [--tail N | --raw]

Prints the job's whole log; --follow keeps printing until the job ends.
  --tail N   only the last N lines (with --follow: then what comes)
  --raw      the log's exact bytes (binary output unchanged), not with --follow`;

async function logs(args: string[], env: Env): Promise<number> {
  const { flags, positionals } = parseCommandArgs(args, {
    follow: { type: "boolean", short: "f" },
    tail: { type: "string" },
    raw: { type: "boolean" },
  });
  if (flags.help) return await help(LOGS_USAGE);
  const id = jobIdOf(positionals, "logs");
  const lines = positiveIntegerOf("--tail", flags.tail as string | undefined);
  if (flags.raw && (flags.follow || lines !== undefined)) {
    throw new UsageError("--raw prints the whole log as it is: not with --follow or --tail");
  }
  const client = env.connect(flags);
  if (flags.raw) {
    await (await client.getJobLogsRaw(id)).pipeTo(Deno.stdout.writable, { preventClose: true });
    return EXIT_CODES.OK;
  }
  const tail = lines === undefined ? undefined : await lastLines(client, id, lines);
  if (flags.follow) {
    if (tail) await writeOut(tail.text);
    await followJob(client, id, { toStderr: false, interactive: false, offset: tail?.end });
    return EXIT_CODES.OK;
  }
  await writeOut(tail ? tail.text : (await client.getJobLogs(id)).logs);
  return EXIT_CODES.OK;
}

/**
 * The last `count` lines of a job's log, read backwards in growing ranges, and the byte
 * offset where the log stood when they were read (a follow resumes there).
 */
async function lastLines(
  client: JobClient,
  id: string,
  count: number,
): Promise<{ text: string; end: number }> {
  for (let bytes = 64 * 1024;; bytes *= 4) {
    const page = await client.getJobLogs(id, { offset: -bytes, limit: bytes });
    const size = page.size ?? 0;
    const start = page.offset ?? 0;
    const text = tailLines(page.logs, count);
    const whole = start === 0 || text.length < page.logs.length;
    if (whole || bytes >= MAX_TAIL_READ_BYTES) {
      return { text, end: Math.min(size, start + new TextEncoder().encode(page.logs).length) };
    }
  }
}

/** The most one `--tail` reads from the end of a log before it prints what it has. */
const MAX_TAIL_READ_BYTES = 16 * 1024 * 1024;

async function stop(args: string[], env: Env): Promise<number> {
  const { flags, positionals } = parseCommandArgs(args, { "no-wait": { type: "boolean" } });
  if (flags.help) {
    return await help(
      "Usage: jobhead job stop ID [--no-wait]\n" +
        "Stops the job (SIGTERM to all its processes, SIGKILL after the grace period)\n" +
        "and waits until it has ended, unless --no-wait.",
    );
  }
  const id = jobIdOf(positionals, "stop");
  const client = env.connect(flags);
  const stopped = await client.stopJob(id);
  if (!stopped || flags["no-wait"]) {
    const job = await client.getJob(id);
    if (flags.json) await writeOut(`${JSON.stringify({ stopped, job })}\n`);
    else if (stopped) await writeErr(`Job '${id}' is stopping\n`);
    else await writeErr(`Job '${id}' had already ended: ${job.status}\n`);
    return EXIT_CODES.OK;
  }
  const spinner = new Spinner();
  spinner.start(`Stopping job '${id}'`);
  let job: JobDetails;
  try {
    job = await client.waitForJob(id);
  } finally {
    spinner.stop();
  }
  if (flags.json) await writeOut(`${JSON.stringify({ stopped, job })}\n`);
  else await writeErr(`${outcomeLine(job)}\n`);
  return EXIT_CODES.OK;
}

const LIST_USAGE =
  `Usage: jobhead job list [--status S,S] [--metadata KEY=VALUE]… [--limit N [--cursor C]]

Lists jobs, newest first: every job, or with --limit the N newest (then the next
page's --cursor is printed on stderr), with the resources each asked for; under
a PENDING job, its message says what it waits for. --status keeps jobs in those statuses
(the head filters); --metadata keeps jobs whose metadata has KEY=VALUE, every
one given (repeatable; applied to what the head returned).

Options:
  --status S,S         PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED
  --metadata KEY=VALUE repeatable
  --limit N            at most N jobs, one page
  --cursor C           the page after the one that printed C
  --address URL  --token TOKEN  --json`;

async function list(args: string[], env: Env): Promise<number> {
  const { flags, positionals } = parseCommandArgs(args, {
    status: { type: "string" },
    metadata: { type: "string", multiple: true },
    limit: { type: "string" },
    cursor: { type: "string" },
  });
  if (flags.help) return await help(LIST_USAGE);
  if (positionals.length) throw new UsageError(`list takes no arguments, got ${positionals[0]}`);
  const status = statusesOf(flags.status as string | undefined);
  const metadata = metadataFilterOf((flags.metadata as string[] | undefined) ?? []);
  const limit = positiveIntegerOf("--limit", flags.limit as string | undefined);
  const cursor = flags.cursor as string | undefined;
  if (cursor !== undefined && limit === undefined) {
    throw new UsageError("--cursor pages: give --limit N too");
  }
  const client = env.connect(flags);
  const page = await client.listJobs({ status, limit, cursor });
  const jobs = page.jobs.filter((job) => hasMetadata(job, metadata));
  if (flags.json) await writeOut(`${JSON.stringify(jobs)}\n`);
  else if (jobs.length === 0) await writeErr("No jobs\n");
  else await writeOut(formatJobTable(jobs));
  if (page.nextCursor) {
    await writeErr(`More: jobhead job list --limit ${limit} --cursor ${page.nextCursor}\n`);
  }
  return EXIT_CODES.OK;
}

async function remove(args: string[], env: Env): Promise<number> {
  const { flags, positionals } = parseCommandArgs(args);
  if (flags.help) {
    return await help("Usage: jobhead job delete ID\nDeletes an ended job and its log.");
  }
  const id = jobIdOf(positionals, "delete");
  const deleted = await env.connect(flags).deleteJob(id);
  if (flags.json) await writeOut(`${JSON.stringify({ deleted })}\n`);
  else await writeErr(`Job '${id}' deleted\n`);
  return EXIT_CODES.OK;
}

async function help(text: string): Promise<number> {
  await writeOut(`${text}\n`);
  return EXIT_CODES.OK;
}

/**
 * Streams a job's log until the job ends and returns it; undefined when Ctrl-C detached.
 * With `interactive`, Ctrl-C on a terminal asks whether to stop the job or detach (a
 * second Ctrl-C detaches); without a terminal on stdin it detaches at once.
 */
async function followJob(
  client: JobClient,
  id: string,
  options: { toStderr: boolean; interactive: boolean; offset?: number },
): Promise<JobDetails | undefined> {
  const output = new OrderedOutput(options.toStderr ? writeErr : writeOut);
  const detach = new AbortController();
  const spinner = new Spinner();
  let asking = false;
  let stopping = false;
  const onInterrupt = () => {
    // A second Ctrl-C while asking, or any without a terminal to ask on, detaches.
    if (!options.interactive || asking || stopping || !Deno.stdin.isTerminal()) {
      detach.abort();
      return;
    }
    asking = true;
    spinner.stop();
    output.hold();
    askToStop(id).then(async (stopIt) => {
      asking = false;
      if (!stopIt) {
        await writeErr(`Still following job '${id}'; Ctrl-C to ask again\n`);
        return;
      }
      stopping = true;
      await client.stopJob(id);
      await writeErr(`Stopping job '${id}'…\n`);
    }).catch(async (err) => {
      await writeErr(`jobhead: ${describeError(err, client.address, undefined)}\n`);
    }).finally(() => output.release());
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  spinner.start(`Job '${id}' is running: waiting for output`);
  try {
    const tail = client.tailJobLogs(id, { offset: options.offset, signal: detach.signal });
    for await (const text of tail) {
      spinner.stop();
      await output.write(text);
    }
  } catch (err) {
    if (detach.signal.aborted) return undefined;
    if (err instanceof TailClosedError) {
      throw new JobheadError(
        `${err.message}; the job may still be running: jobhead job logs --follow ${id}`,
        { code: err.code, status: 0 },
      );
    }
    throw err;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    spinner.stop();
  }
  await output.release();
  return await client.getJob(id);
}

/** Asks on the terminal whether to stop job `id`; true for yes. */
async function askToStop(id: string): Promise<boolean> {
  await writeErr(`\nStop job '${id}'? [y/N] (Ctrl-C again to detach) `);
  const buffer = new Uint8Array(1024);
  const n = await Deno.stdin.read(buffer);
  const answer = n === null ? "" : new TextDecoder().decode(buffer.subarray(0, n)).trim();
  return /^y(es)?$/i.test(answer);
}

function outcomeLine(job: JobDetails): string {
  const id = job.submission_id;
  switch (job.status) {
    case "SUCCEEDED":
      return `Job '${id}' succeeded`;
    case "STOPPED":
      return `Job '${id}' was stopped`;
    case "FAILED":
      // The log tail in the message was just streamed: the first line says enough.
      return `Job '${id}' failed${job.error_type ? ` (${job.error_type})` : ""}: ` +
        job.message.split("\n", 1)[0].replace(/, last available logs .*$/, "");
    default:
      return `Job '${id}' is ${job.status}`;
  }
}

function outcomeCode(job: JobDetails): number {
  if (job.status === "FAILED") return EXIT_CODES.FAILED;
  if (job.status === "STOPPED") return EXIT_CODES.STOPPED;
  return EXIT_CODES.OK;
}
