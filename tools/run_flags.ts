/**
 * The `deno run` flags of a head as `deno task start` runs it. deno.json's tasks are their
 * one home; tests, benchmarks and the demo cluster start heads and nodes with the same ones.
 *
 * - `--allow-all`: the head reads /proc, which Deno grants only with it.
 * - `--v8-flags=--max-semi-space-size=4`: caps V8's young generation at 4 MiB a half. It
 *   otherwise grows up to 32 MiB a half in a burst (log frames for many followers) and stays
 *   so until the head has been idle for a while: 500 stalled log tails left the head 159-196
 *   MB over idle 2 s after their burst, 76-84 MB with the cap (bench/README.md). V8 reads it
 *   only as it starts, so only the command line can set it.
 * @module
 */

/** The flags between `deno run` and `main.ts` in deno.json's `start` task. */
export function headRunFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const task = String(config.tasks?.start ?? "");
  const words = task.split(/\s+/);
  const main = words.indexOf("main.ts");
  if (words[0] !== "deno" || words[1] !== "run" || main < 0) {
    throw new Error(`deno.json's start task is not "deno run <flags> main.ts …": ${task}`);
  }
  return words.slice(2, main);
}
