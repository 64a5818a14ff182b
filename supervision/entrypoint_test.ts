import assert from "node:assert/strict";
import { runsAsOneProgram, shellWantsExec } from "./entrypoint.ts";

const ONE_PROGRAM = [
  "sleep 600",
  "python train.py --epochs 3",
  "/usr/bin/env",
  "./run.sh --lr=0.1 a,b:c@d%e+f",
  "python -c 'import sys; print(sys.argv)' x",
  "echo-args \"two words\" 'and $NOT expanded'",
  'printenv "$HOME"',
  "ls -d /tm? ~",
  "  sleep\t1  ",
];

const NOT_ONE_PROGRAM = [
  "",
  "   ",
  "true",
  "exit 137",
  "cd /tmp",
  "echo hi",
  "exec sleep 1",
  "A=1 env",
  "sleep 1; echo done",
  "sleep 1 && echo done",
  "sleep 1 || echo failed",
  "sleep 1 | cat",
  "sleep 1 &",
  "sleep 1 > out.log",
  "cat < in",
  "(sleep 1)",
  "{ sleep 1; }",
  "if true; then sleep 1; fi",
  "sleep 1\necho done",
  "sleep 1 # why",
  "echo-args \\; x",
  "echo-args $(date)",
  "echo-args `date`",
  'echo-args "$(date)"',
  'echo-args "a`date`"',
  "echo-args 'unclosed",
  '"quoted program" x',
  "! sleep 1",
  "[ -f x ]",
  "time sleep 1",
  // A quote nested in `${…}` inside double quotes hides the `;` from a splitter.
  `args "\${X-"'"}"; touch pwned #'`,
  "args $'\\''; touch pwned #'",
  'args $"x"',
  // `sh -c` reads a leading `-` as its own option; bash reads `%1` as a job.
  "-l args x",
  " -- args x",
  "%1",
];

Deno.test("runsAsOneProgram() accepts one simple command that runs a program", () => {
  for (const command of ONE_PROGRAM) assert.equal(runsAsOneProgram(command), true, command);
});

Deno.test("runsAsOneProgram() refuses builtins, assignments, lists, pipes and constructs", () => {
  for (const command of NOT_ONE_PROGRAM) {
    assert.equal(runsAsOneProgram(command), false, JSON.stringify(command));
  }
});

Deno.test("sh -c 'exec <command>' ends as sh -c '<command>' for every accepted command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-entrypoint-" });
  try {
    // A program of each accepted command's first word that prints its arguments one a line.
    for (const name of ["sleep", "python", "run.sh", "echo-args", "printenv", "ls", "env"]) {
      await Deno.writeTextFile(`${dir}/${name}`, '#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n', {
        mode: 0o755,
      });
    }
    const env = { PATH: `${dir}:/usr/bin:/bin`, HOME: "/home/someone" };
    const run = async (script: string) => {
      const out = await new Deno.Command("sh", {
        args: ["-c", script],
        cwd: dir,
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
    };
    for (const command of [...ONE_PROGRAM, "no-such-program x"]) {
      assert.equal(runsAsOneProgram(command), true, command);
      assert.deepEqual(await run(`exec ${command}`), await run(command), command);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shellWantsExec() is true for dash only", () => {
  assert.equal(shellWantsExec("/usr/bin/dash"), true);
  assert.equal(shellWantsExec("/usr/bin/bash"), false);
  assert.equal(shellWantsExec("/bin/busybox"), false);
  assert.equal(shellWantsExec(""), false);
});
