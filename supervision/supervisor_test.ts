import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import type { ExitReason, SupervisedProcess } from "../kit/supervision.ts";
import { canUseCgroups } from "../tests/cgroups.ts";
import {
  ShellSupervisor,
  supervisedCommandOf,
  SUPERVISOR_NAME,
  type SupervisorOptions,
  withoutKeys,
} from "./supervisor.ts";
import { LAUNCHER_NAME } from "./launcher.ts";
import { readStat } from "./procfs.ts";

Deno.test("withoutKeys() drops exactly the named variables", () => {
  assert.deepEqual(withoutKeys({ A: "1", B: "2", C: "3" }, ["B", "X"]), { A: "1", C: "3" });
});

const CGROUPS = await canUseCgroups();

/** What a run directory holds besides exit files and fifos. */
const SCRIPTS = [LAUNCHER_NAME, SUPERVISOR_NAME];

/**
 * A test with a supervisor started over a fresh directory (with `env` added to the
 * head's environment meanwhile), closed and removed after.
 */
function supervisorTest(
  name: string,
  options: SupervisorOptions & { env?: Record<string, string> },
  fn: (supervisor: ShellSupervisor, dir: string) => Promise<void>,
): void {
  Deno.test({
    name,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "jobhead-supervisor-" });
      const supervisor = new ShellSupervisor(join(dir, "run"), options);
      const env = Object.entries(options.env ?? {});
      try {
        for (const [name, value] of env) Deno.env.set(name, value);
        await supervisor.start();
        await fn(supervisor, dir);
      } finally {
        await supervisor.close();
        for (const [name] of env) Deno.env.delete(name);
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** An owner that records every end it is told of, and says so. */
function recorder(answer = true) {
  const ends = Promise.withResolvers<ExitReason>();
  return {
    ended: ends.promise,
    onExit: (reason: ExitReason) => {
      ends.resolve(reason);
      return Promise.resolve(answer);
    },
  };
}

supervisorTest(
  "ShellSupervisor.run() withholds the head's configuration from every actor, and adds its own env",
  {
    withheldEnv: ["JOBHEAD_UNIT_SECRET"],
    cgroup: "off",
    env: { JOBHEAD_UNIT_SECRET: "s3cret", JOBHEAD_UNIT_KEPT: "kept" },
  },
  async (supervisor, dir) => {
    const logPath = join(dir, "env.log");
    const owner = recorder();
    await supervisor.run({
      id: "unit-env",
      command: "env",
      logPath,
      env: { OWN: "own", JOBHEAD_UNIT_SECRET: "given on purpose" },
    }, owner.onExit);
    assert.equal(outcome(await owner.ended), 0);
    const env = await Deno.readTextFile(logPath);
    assert.doesNotMatch(env, /s3cret/);
    assert.match(env, /^JOBHEAD_UNIT_SECRET=given on purpose$/m, "the spawn's own env wins");
    assert.match(env, /^JOBHEAD_UNIT_KEPT=kept$/m);
    assert.match(env, /^OWN=own$/m);
    assert.match(env, /^JOBHEAD_ACTOR_ID=unit-env$/m);
    assert.doesNotMatch(env, /^JOBHEAD_SUPERVISOR_/m, "the supervisor's own arguments");
  },
);

supervisorTest(
  "a supervisor shows ps a short command line, and its environment names its command",
  { cgroup: "off" },
  async (supervisor, dir) => {
    const command = "echo started; sleep 30 # a command of any length";
    const logPath = join(dir, "ps.log");
    const owner = recorder();
    const process = await supervisor.run({ id: "unit-ps", command, logPath }, owner.onExit);
    await waitFor("the command to start", () => readOrEmpty(logPath) || undefined);
    const { pid } = process.identity;
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").slice(0, -1);
    assert.equal(argv.length, 3, argv.join(" "));
    assert.equal(argv[1], join(dir, "run", SUPERVISOR_NAME));
    assert.equal(argv[2], "unit-ps");
    const environ = Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0");
    const env = Object.fromEntries(environ.map((e) => e.split(/=(.*)/s).slice(0, 2)));
    assert.equal(supervisedCommandOf(env), command);
    await process.stop(0);
    await owner.ended;
  },
);

supervisorTest(
  "a command's exit code and a death by signal are told apart, 137 from SIGKILL",
  {},
  async (supervisor, dir) => {
    const ends = await Promise.all(
      ["exit 137", "kill -KILL $$", "exit 0"].map(async (command, i) => {
        const owner = recorder();
        await supervisor.run(
          { id: `unit-code-${i}`, command, logPath: join(dir, "code.log") },
          owner.onExit,
        );
        return owner.ended;
      }),
    );
    assert.deepEqual(ends.map(outcome), [137, -9, 0]);
  },
);

supervisorTest(
  "an actor launched on an ended one's spare files ends as on new ones, a failed start too",
  {},
  async (supervisor, dir) => {
    const spares = join(dir, "run", "fifo");
    const run = async (id: string, command: string, cwd?: string) => {
      const owner = recorder();
      await supervisor.run({ id, command, cwd, logPath: join(dir, `${id}.log`) }, owner.onExit);
      return await owner.ended;
    };
    // A start that fails before the command runs (its exit file is never written).
    const fresh = await run("unit-spare-0", "true", join(dir, "missing"));
    assert.equal(outcome(await run("unit-spare-1", "exit 3")), 3);
    const kept = [...Deno.readDirSync(spares)].map((e) => e.name).filter((n) => n[0] === ".");
    const again = await run("unit-spare-2", "true", join(dir, "missing"));
    assert.deepEqual({ ...again, endTime: 0 }, { ...fresh, endTime: 0 }, "the same end");
    assert.equal(outcome(await run("unit-spare-3", "kill -KILL $$")), -9);
    if (CGROUPS) {
      const kinds = kept.map((name) => name.replace(/\d+$/, ""));
      assert.deepEqual(kinds, [".spare-fifo-"], "kept once emptied");
    }
  },
);

for (const cgroup of CGROUPS ? ["off", "auto"] as const : ["off"] as const) {
  supervisorTest(
    `when a supervisor dies, its escaped processes die and all is released before its owner hears (cgroup ${cgroup})`,
    { cgroup },
    async (supervisor, dir) => {
      const runDir = join(dir, "run");
      const logPath = join(dir, "escape.log");
      // The escapee leaves the process group and session, and says its pid.
      const command = `setsid sh -c 'echo "escapee $$"; exec sleep 300' & exec sleep 300`;
      let heard:
        | { reason: ExitReason; escapee: string; files: string[]; fifos: string[]; live: number }
        | undefined;
      const told = Promise.withResolvers<void>();
      const process = await supervisor.run({ id: "unit-escape", command, logPath }, (reason) => {
        heard = {
          reason,
          escapee: readStat(escapee)?.state ?? "gone",
          files: filesIn(runDir),
          fifos: filesIn(join(runDir, "fifo"), { fifos: true }),
          live: supervisor.liveCount,
        };
        told.resolve();
        return Promise.resolve(true);
      });
      const escapee = await waitFor("the escapee to say its pid", () => {
        const match = /^escapee (\d+)$/m.exec(readOrEmpty(logPath));
        return match ? Number(match[1]) : undefined;
      });
      assert.equal(readStat(escapee)?.sid, escapee, "the escapee left the session");
      Deno.kill(process.identity.pid, "SIGKILL"); // the supervisor alone: its watchdog notices
      await told.promise;
      assert.equal(heard?.reason.kind, "died");
      assert.equal(heard?.live, 0, "forgotten before the owner hears");
      // The watchdog may have noted the death in the exit file before it died too.
      const left = heard!.files.filter((name) => name !== "unit-escape.exit");
      assert.deepEqual(left, SCRIPTS, "only the exit file may be left");
      // Released: removed, or kept as a spare for the next launch once its cgroup is empty.
      const actorFifos = heard!.fifos.filter((name) => !name.startsWith(".spare-"));
      assert.deepEqual(actorFifos, [], "the fifo is released");
      if (cgroup === "auto") assert.match(heard!.escapee, /^(gone|Z)$/, "emptied with its cgroup");
      await waitFor("the escapee to be gone", () => !isAlive(escapee) || undefined);
      await waitFor("the exit file to go", () => filesIn(runDir).length === 2 || undefined);
    },
  );
}

supervisorTest(
  "an end its owner could not record stays for the next head, which adopts it with its exact code",
  { cgroup: "off" },
  async (first, dir) => {
    const runDir = join(dir, "run");
    const unrecorded = recorder(false);
    const process = await first.run(
      { id: "unit-adopt", command: "exit 3", logPath: join(dir, "adopt.log") },
      unrecorded.onExit,
    );
    assert.equal(outcome(await unrecorded.ended), 3);
    assert.ok(filesIn(runDir).includes("unit-adopt.exit"), "kept for the next head");
    const next = new ShellSupervisor(runDir, { cgroup: "off" });
    try {
      await next.start();
      const owner = recorder();
      const adopted = await next.adopt("unit-adopt", process.identity, owner.onExit);
      assert.ok(adopted.settled);
      assert.equal(outcome(await owner.ended), 3);
      await waitFor(
        "the exit file to go",
        () => !filesIn(runDir).includes("unit-adopt.exit") || undefined,
      );
      assert.equal(await next.adopt("unit-adopt", null, owner.onExit), undefined, "none running");
    } finally {
      await next.close();
    }
  },
);

supervisorTest(
  "ending right when a command's end is known leaves no exit file behind",
  {},
  async (supervisor, dir) => {
    const runDir = join(dir, "run");
    for (let i = 0; i < 20; i++) {
      const owner = recorder();
      const process: SupervisedProcess = await supervisor.run(
        { id: `quick-${i}`, command: "true", logPath: join(dir, "quick.log") },
        owner.onExit,
      );
      await owner.ended;
      // The watchdog kills its group last; once the group is gone it can write nothing.
      await waitFor(
        `the group of quick-${i} to be gone`,
        () => !groupExists(process.identity.pid) || undefined,
      );
    }
    assert.deepEqual(filesIn(runDir), SCRIPTS, "stray exit files");
  },
);

supervisorTest(
  "a launcher that dies is replaced at the next launch, and what it started ends with its exact code",
  { cgroup: "off" },
  async (supervisor, dir) => {
    const gate = join(dir, "gate");
    const logPath = join(dir, "launcher.log");
    const before = recorder();
    await supervisor.run(
      {
        id: "unit-before",
        // It also ends once the test's directory is gone, should the test fail first.
        command: `while [ ! -e '${gate}' ] && [ -d '${dir}' ]; do sleep 0.01; done; exit 7`,
        logPath,
      },
      before.onExit,
    );
    // This supervisor's own: test files running beside this one, in the same process, have
    // launchers of their own.
    const ours = () => launchersOf(Deno.pid, join(dir, "run"));
    try {
      const launchers = ours();
      assert.equal(launchers.length, 1, "one launcher");
      Deno.kill(launchers[0], "SIGKILL");
      await waitFor("the launcher to be gone", () => ours().length === 0 || undefined);
      const after = recorder();
      await supervisor.run({ id: "unit-after", command: "exit 5", logPath }, after.onExit);
      assert.equal(outcome(await after.ended), 5);
      assert.notEqual(ours()[0], launchers[0], "a new launcher");
    } finally {
      await Deno.writeTextFile(gate, "");
    }
    assert.equal(outcome(await before.ended), 7);
  },
);

supervisorTest(
  "launchers killed again and again while launching: no actor runs twice",
  { cgroup: "off" },
  async (supervisor, dir) => {
    // A supervisor forked just before its launcher died must be found, not launched again.
    const ranPath = join(dir, "ran");
    const ours = () => launchersOf(Deno.pid, join(dir, "run"));
    // Rounds of launches, each with its launcher killed a moment after they were asked
    // for: some are forked and some not when it dies (each has two tries).
    let kills = 0;
    const ends: (ExitReason | undefined)[] = [];
    const ids: string[] = [];
    for (let round = 0; round < 20; round++) {
      const batch = Array.from({ length: 8 }, (_, i) => `unit-twice-${round}-${i}`);
      ids.push(...batch);
      const launches = batch.map(async (id) => {
        const owner = recorder();
        try {
          await supervisor.run(
            { id, command: `echo ${id} >>'${ranPath}'`, logPath: join(dir, "twice.log") },
            owner.onExit,
          );
        } catch {
          return undefined; // lost twice: not started, which is allowed; twice is not
        }
        return await owner.ended;
      });
      await delay(round % 4);
      for (const pid of ours()) {
        Deno.kill(pid, "SIGKILL");
        kills++;
      }
      ends.push(...await Promise.all(launches));
    }
    const ran = readOrEmpty(ranPath).split("\n").filter(Boolean);
    const twice = ran.filter((id, i) => ran.indexOf(id) !== i);
    assert.deepEqual(twice, [], "actors that ran twice");
    const started = ids.filter((_, i) => ends[i] !== undefined);
    assert.ok(started.length > 0, "some launches went through");
    assert.ok(kills > 1, "launchers were killed while launching");
  },
);

supervisorTest(
  "any value reaches the command, newlines and quotes included, and a name sh cannot hold does not stop a launch",
  { cgroup: "off" },
  async (supervisor, dir) => {
    const logPath = join(dir, "odd.log");
    const owner = recorder();
    const value = 'it\'s "two"\nlines $HOME `x`';
    await supervisor.run({
      id: "unit-odd",
      command: "env",
      logPath,
      env: { PLAIN: value, "dotted.name": value },
    }, owner.onExit);
    assert.equal(outcome(await owner.ended), 0);
    const env = await Deno.readTextFile(logPath);
    // The name sh cannot hold has the launcher set the variables through `env` (dash, as
    // the supervisor, does not pass such a name on to the command).
    assert.ok(env.includes(`\nPLAIN=${value}\n`), env);
    assert.match(env, /^JOBHEAD_ACTOR_ID=unit-odd$/m);
  },
);

supervisorTest(
  "a job's locale is its own: LC_ALL as the job has it, set or not, though setsid and env run in C",
  { cgroup: "off" },
  async (supervisor, dir) => {
    const show =
      'echo "LC_ALL=${LC_ALL-unset} LANG=$LANG"; env | grep -c ^JOBHEAD_SUPERVISOR_ || :';
    // The same three with a name sh cannot hold, which has the launcher start the
    // supervisor through `env` (not in the C locale: nothing to give back).
    const odd = { "odd.name": "1" };
    const envs: Record<string, string>[] = [
      { LANG: "C.UTF-8" },
      { LANG: "C.UTF-8", LC_ALL: "C.UTF-8" },
      { LC_ALL: "" },
    ];
    const shown = await Promise.all(
      [...envs, ...envs.map((env) => ({ ...env, ...odd }))].map(
        async (env, i) => {
          const logPath = join(dir, `locale-${i}.log`);
          const owner = recorder();
          await supervisor.run(
            { id: `unit-locale-${i}`, command: show, logPath, env },
            owner.onExit,
          );
          assert.equal(outcome(await owner.ended), 0);
          return await Deno.readTextFile(logPath);
        },
      ),
    );
    const expected = [
      "LC_ALL=unset LANG=C.UTF-8\n0\n",
      "LC_ALL=C.UTF-8 LANG=C.UTF-8\n0\n",
      `LC_ALL= LANG=${Deno.env.get("LANG") ?? ""}\n0\n`,
    ];
    assert.deepEqual(shown, [...expected, ...expected]);
  },
);

Deno.test({
  name:
    "with bash as sh, the launcher answers each launch as it comes, and a jobhead_* name is the actor's",
  ignore: !isFile("/bin/bash"),
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    // bash reads a sourced file whole before running any of it: a launcher that sourced its
    // stdin under bash would answer nothing until the head closed it.
    const dir = await Deno.makeTempDir({ prefix: "jobhead-bash-" });
    const path = Deno.env.get("PATH");
    await Deno.mkdir(join(dir, "bin"));
    await Deno.symlink("/bin/bash", join(dir, "bin", "sh"));
    Deno.env.set("PATH", `${join(dir, "bin")}:${path ?? "/usr/bin:/bin"}`);
    const supervisor = new ShellSupervisor(join(dir, "run"), { cgroup: "off" });
    const timer = new AbortController();
    try {
      await supervisor.start();
      const logPath = join(dir, "bash.log");
      const owner = recorder();
      await supervisor.run({
        id: "unit-bash",
        command: 'echo "$jobhead_sh"; exit 3',
        logPath,
        env: { jobhead_sh: "the actor's own" },
      }, owner.onExit);
      const timedOut = delay(20_000, "timed out", { signal: timer.signal }).catch(() => "");
      const ended = await Promise.race([owner.ended, timedOut]);
      assert.notEqual(ended, "timed out", "the launch was answered while the head wrote on");
      assert.equal(outcome(ended as ExitReason), 3);
      assert.equal(await Deno.readTextFile(logPath), "the actor's own\n");
    } finally {
      timer.abort();
      await supervisor.close();
      if (path === undefined) Deno.env.delete("PATH");
      else Deno.env.set("PATH", path);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The pids of the live launchers among the children of `pid`, of the run directory `runDir`. */
function launchersOf(pid: number, runDir: string): number[] {
  return [...Deno.readDirSync("/proc")].map((entry) => Number(entry.name)).filter((child) => {
    const stat = Number.isInteger(child) ? readStat(child) : undefined;
    if (stat?.ppid !== pid || stat.state === "Z") return false;
    try {
      return Deno.readTextFileSync(`/proc/${child}/cmdline`).includes(join(runDir, LAUNCHER_NAME));
    } catch {
      return false;
    }
  });
}

/** An exit's code, or "died". */
function outcome(reason: ExitReason): number | "died" {
  return reason.kind === "exited" ? reason.code : "died";
}

/** The names of the files in `dir` (not directories, nor fifos unless asked), sorted. */
function filesIn(dir: string, options: { fifos?: boolean } = {}): string[] {
  return [...Deno.readDirSync(dir)].filter((e) => options.fifos ? !e.isDirectory : e.isFile)
    .map((e) => e.name).sort();
}

function readOrEmpty(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function isAlive(pid: number): boolean {
  const state = readStat(pid)?.state;
  return state !== undefined && state !== "Z";
}

/** Whether any live process is in process group `pgid`. */
function groupExists(pgid: number): boolean {
  for (const entry of Deno.readDirSync("/proc")) {
    const stat = /^\d+$/.test(entry.name) ? readStat(Number(entry.name)) : undefined;
    if (stat?.pgid === pgid && stat.state !== "Z") return true;
  }
  return false;
}

/** Polls `probe` until it answers: no event says when a process or group is gone. */
async function waitFor<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const answer = probe();
    if (answer !== undefined) return answer;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
