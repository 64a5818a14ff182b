/**
 * A throwaway PostgreSQL server for tests: one per test process, shared by its test files
 * (they run as workers of one process), started on first use and gone when the process
 * is. It lives in a temp directory (`initdb` as `nobody` when running as root), in memory
 * (/dev/shm) when there is room there: on a disk, creating a database takes a second.
 * It listens on a free port on 127.0.0.1 only, without fsync, with password
 * authentication; every head gets a fresh database of its own.
 *
 * The first worker to create the server's directory starts it and writes `server.json`;
 * the others wait for that file. A small watchdog, started with the server, stops it and
 * removes the directory once the test process has exited, however it ended. Neither carries
 * the run's TMPDIR, so that CI's sweep of that run's processes leaves the stop to it.
 *
 * @example
 * ```ts
 * const db = await createTestDatabase();
 * const store = await openPostgresStore(db.url, { password: db.password });
 * ```
 * @module
 */
import { join } from "node:path";
import { waitFor } from "./poll.ts";

/** A database of the throwaway server. */
export interface TestDatabase {
  /** `postgres://jobhead@127.0.0.1:PORT/NAME`, without the password. */
  url: string;
  /** The password of the user in `url`. */
  password: string;
  /** The database's name. */
  name: string;
  /** The server's port. */
  port: number;
}

/** The server a test process shares, as `server.json` says it. */
interface ServerInfo {
  port: number;
  password: string;
  /** The server's data directory, for `pg_ctl`. */
  data: string;
}

/** The user every test database belongs to: the server's superuser. */
export const TEST_USER = "jobhead";
/** How long the first start may take (initdb runs first). */
const START_TIMEOUT_MS = 120_000;
/** Free space /dev/shm needs for the server to live there. */
const MIN_SHM_FREE_KIB = 2 * 1024 * 1024;

let counter = 0;
let server: Promise<ServerInfo> | undefined;

/** Where PostgreSQL 15+ binaries are on Debian; PATH otherwise. */
export function postgresBin(name: string): string {
  for (const version of ["17", "16", "15"]) {
    const path = `/usr/lib/postgresql/${version}/bin/${name}`;
    try {
      Deno.statSync(path);
      return path;
    } catch { /* not this version */ }
  }
  return name;
}

/** A fresh database on this process's throwaway server (started first if need be). */
export async function createTestDatabase(): Promise<TestDatabase> {
  return await createDatabase(await (server ??= sharedServer()));
}

/** Drops a database `createTestDatabase()` made, once nothing uses it any more. */
export async function dropTestDatabase(db: TestDatabase): Promise<void> {
  const info = await (server ??= sharedServer());
  await run(postgresBin("dropdb"), ["--force", ...clientArgs(info), db.name], {
    PGPASSWORD: info.password,
  });
}

/** A throwaway server of a test's own, for faults that would hurt the tests sharing one. */
export interface PrivateServer extends AsyncDisposable {
  /** A fresh database on this server. */
  createDatabase(): Promise<TestDatabase>;
  /**
   * Stops the server (`pg_ctl stop -m fast`: clients are disconnected), runs `whileDown`,
   * and starts it again on the same port and data: a PostgreSQL restart as clients see it.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
}

/** Starts a server for one test; dispose of it to stop it and remove its files. */
export async function startPrivateServer(): Promise<PrivateServer> {
  const dir = await Deno.makeTempDir({ dir: await serverRoot(), prefix: "jobhead-test-pg-" });
  const info = await startServer(dir);
  const log = join(dir, "server.log");
  return {
    createDatabase: () => createDatabase(info),
    async restart(whileDown) {
      await pgCtl(["stop", "-w", "-m", "fast", "-D", info.data]);
      try {
        await whileDown?.();
      } finally {
        await pgCtl(["start", "-w", "-D", info.data, "-l", log]);
      }
    },
    async [Symbol.asyncDispose]() {
      await pgCtl(["stop", "-w", "-m", "immediate", "-D", info.data]).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The arguments that point PostgreSQL's client programs at the test user on `info`'s server. */
function clientArgs(info: ServerInfo): string[] {
  return ["-h", "127.0.0.1", "-p", String(info.port), "-U", TEST_USER];
}

async function createDatabase(info: ServerInfo): Promise<TestDatabase> {
  const name = `jobhead_test_${Deno.pid}_${crypto.randomUUID().slice(0, 8)}_${++counter}`;
  await run(postgresBin("createdb"), [...clientArgs(info), name], { PGPASSWORD: info.password });
  return {
    url: `postgres://${TEST_USER}@127.0.0.1:${info.port}/${name}`,
    password: info.password,
    name,
    port: info.port,
  };
}

/** The server of this test process: started here, or by another worker of it. */
async function sharedServer(): Promise<ServerInfo> {
  const dir = join(await serverRoot(), `jobhead-test-pg-${Deno.pid}`);
  const infoFile = join(dir, "server.json");
  const failedFile = join(dir, "failed");
  try {
    await Deno.mkdir(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    // Another worker of this process starts it: poll, nothing announces the file.
    return await waitFor("the test PostgreSQL server another test file starts", async () => {
      const failed = await Deno.readTextFile(failedFile).catch(() => undefined);
      if (failed !== undefined) throw new Error(`the test PostgreSQL server failed: ${failed}`);
      const text = await Deno.readTextFile(infoFile).catch(() => undefined);
      return text === undefined ? undefined : JSON.parse(text) as ServerInfo;
    }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 50 });
  }
  try {
    const info = await startServer(dir);
    await Deno.writeTextFile(`${infoFile}.tmp`, JSON.stringify(info));
    await Deno.rename(`${infoFile}.tmp`, infoFile);
    return info;
  } catch (err) {
    await Deno.writeTextFile(failedFile, String(err));
    throw err;
  }
}

async function startServer(dir: string): Promise<ServerInfo> {
  const data = join(dir, "data");
  const password = crypto.randomUUID();
  const pwfile = join(dir, "pwfile");
  await Deno.writeTextFile(pwfile, password);
  if (Deno.uid() === 0) {
    // PostgreSQL refuses to run as root: the server is nobody's, in a directory it owns.
    await Deno.chown(dir, 65534, 65534);
    await Deno.chown(pwfile, 65534, 65534);
  }
  await asServerUser(postgresBin("initdb"), [
    "-D",
    data,
    "-U",
    TEST_USER,
    `--pwfile=${pwfile}`,
    "--auth=scram-sha-256",
    "--no-locale",
    "--encoding=UTF8",
    "--no-sync",
  ]);
  await Deno.remove(pwfile);
  const port = freePort();
  const settings = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = ''",
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    "max_connections = 500",
    "shared_buffers = 32MB",
    "dynamic_shared_memory_type = mmap", // in the data directory, removed with it
  ];
  const conf = join(data, "postgresql.conf");
  await Deno.writeTextFile(conf, `\n${settings.join("\n")}\n`, { append: true });
  // Like its watchdog, the server does not carry the run's TMPDIR: CI's sweep, which runs
  // the moment the test process has exited, would kill it before the watchdog stops it.
  await asServerUser("env", [
    "-u",
    "TMPDIR",
    postgresBin("pg_ctl"),
    ...["start", "-w", "-D", data, "-l", join(dir, "server.log")],
  ]);
  await startWatchdog(dir, data);
  return { port, password, data };
}

/**
 * Starts, in the background and detached from this process, a shell that waits for this
 * process to end, then stops the server and removes `dir`.
 */
async function startWatchdog(dir: string, data: string): Promise<void> {
  const stop = `${asServerUserPrefix()}${postgresBin("pg_ctl")} stop -m immediate -D "$2"`;
  const script = `while kill -0 "$1" 2>/dev/null; do sleep 0.2; done; ` +
    `${stop} >/dev/null 2>&1; rm -rf "$3"`;
  await run("sh", [
    "-c",
    `env -u TMPDIR setsid sh -c '${script}' watchdog "$1" "$2" "$3" </dev/null >/dev/null 2>&1 &`,
    "sh",
    String(Deno.pid),
    data,
    dir,
  ]);
}

function pgCtl(args: string[]): Promise<void> {
  return asServerUser(postgresBin("pg_ctl"), args);
}

/** Runs a server command as nobody when this process is root, as itself otherwise. */
function asServerUser(command: string, args: string[]): Promise<void> {
  if (Deno.uid() !== 0) return run(command, args);
  return run("runuser", ["-u", "nobody", "--", command, ...args]);
}

function asServerUserPrefix(): string {
  return Deno.uid() === 0 ? "runuser -u nobody -- " : "";
}

async function run(command: string, args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(new Uint8Array([...stdout, ...stderr]));
    throw new Error(`${command} ${args.join(" ")} exited with ${code}: ${text}`);
  }
}

/** A port nothing listens on now (PostgreSQL takes it a moment later). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** /dev/shm when it is a directory with room, the temp directory otherwise. */
async function serverRoot(): Promise<string> {
  const { code, stdout } = await new Deno.Command("df", {
    args: ["-Pk", "/dev/shm"],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => ({ code: 1, stdout: new Uint8Array() }));
  const available = Number(new TextDecoder().decode(stdout).trim().split("\n")[1]?.split(/\s+/)[3]);
  if (code === 0 && available >= MIN_SHM_FREE_KIB) return "/dev/shm";
  return Deno.env.get("TMPDIR") || "/tmp";
}
