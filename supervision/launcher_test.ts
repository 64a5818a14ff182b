import assert from "node:assert/strict";
import { join } from "node:path";
import LAUNCHER_SCRIPT from "./launcher.sh" with { type: "text" };
import { launchRequest } from "./launcher.ts";

/** Runs the launcher script on `input` (stdin closed after it); returns what it printed. */
async function launcherOn(dir: string, input: string): Promise<string> {
  const launcher = join(dir, "launcher.sh");
  const supervisor = join(dir, "supervisor.sh");
  await Deno.writeTextFile(launcher, LAUNCHER_SCRIPT);
  // A stand-in supervisor that notes its actor id.
  await Deno.writeTextFile(supervisor, `echo "$1" >>"${join(dir, "ran")}"\n`);
  const child = new Deno.Command("sh", {
    args: [launcher, "setsid", "sh", "env", supervisor],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const { stdout } = await child.output();
  return new TextDecoder().decode(stdout);
}

function ran(dir: string): string {
  try {
    return Deno.readTextFileSync(join(dir, "ran"));
  } catch {
    return "";
  }
}

Deno.test("the launcher runs whole requests, and none that a dying head cut short", async () => {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-launcher-" });
  try {
    const out = await launcherOn(dir, launchRequest("a1", { FOO: "bar" }));
    assert.match(out, /^started a1 \d+\n$/);
    // Its output ended once the stand-in, which shares it, had ended too.
    assert.equal(ran(dir), "a1\n");

    // Cut after a closing quote, where the words so far would make a request of their own.
    const request = launchRequest("a2", { FOO: "bar", JOBHEAD_SUPERVISOR_CGROUPS: "/cg" });
    const cut = request.slice(0, request.indexOf(" 'JOBHEAD_SUPERVISOR_CGROUPS"));
    assert.equal(await launcherOn(dir, cut), "", "nothing started");
    assert.equal(ran(dir), "a1\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
