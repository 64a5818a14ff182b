/**
 * The manuals' examples run as written, from a fresh directory outside the checkout: each
 * code block after an `<!-- example: … -->` line in docs/ is taken from the file as it is.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hasChromium, openBrowser } from "./browser.ts";
import { startHead } from "./harness.ts";
import { buildNpmPackage } from "../client/build_npm.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The code blocks of a manual, in order: those marked as examples, and all JSON ones. */
async function codeBlocks(
  doc: string,
): Promise<{ lang: string; code: string; example: boolean }[]> {
  const text = await Deno.readTextFile(join(ROOT, "docs", doc));
  const blocks = [];
  for (const match of text.matchAll(/(<!-- example:[^\n]*-->\n\n)?```(\w*)\n([\s\S]*?)```/g)) {
    blocks.push({ lang: match[2], code: match[3], example: match[1] !== undefined });
  }
  return blocks;
}

/** The example blocks of `doc` in language `lang`. */
async function examples(doc: string, lang: string): Promise<string[]> {
  return (await codeBlocks(doc)).filter((b) => b.example && b.lang === lang).map((b) => b.code);
}

/** The deno.json clients.md tells a project outside the checkout to use, pointed at this checkout. */
async function linkedDenoJson(): Promise<Record<string, unknown>> {
  const block = (await codeBlocks("clients.md")).find((b) =>
    b.lang === "json" && b.code.includes("links")
  );
  assert.ok(block, "clients.md shows the deno.json of a project outside the checkout");
  return JSON.parse(block.code.replace("/path/to/jobhead", ROOT));
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
) {
  const out = await new Deno.Command(cmd, { args, ...options, stdin: "null" }).output();
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  assert.equal(result.code, 0, `${cmd} ${args.join(" ")}: ${JSON.stringify(result)}`);
  return result;
}

async function withProject(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-docs-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("clients.md: the JobClient example runs from a Deno project that links the checkout", async () => {
  await using head = await startHead();
  const [example] = await examples("clients.md", "ts");
  assert.ok(example);
  await withProject(async (dir) => {
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify(await linkedDenoJson()));
    await Deno.mkdir(join(dir, "my-project", "data"), { recursive: true });
    await Deno.writeTextFile(join(dir, "my-project", "run.sh"), 'echo "mode $MODE"; ls\n');
    await Deno.writeTextFile(join(dir, "my-project", "data", "big.bin"), "excluded\n");
    await Deno.writeTextFile(join(dir, "example.ts"), example);
    const out = await run(Deno.execPath(), ["run", "--allow-all", "example.ts"], {
      cwd: dir,
      env: { JOBHEAD_ADDRESS: head.url, NO_COLOR: "1" },
    });
    assert.match(out.stdout, /mode fast/);
    assert.doesNotMatch(out.stdout, /^data$/m, "data/ was excluded from the upload");
    assert.match(out.stdout, /SUCCEEDED\n$/);
  });
});

Deno.test("clients.md: the Node example runs with the npm package built by build:npm", async () => {
  await using head = await startHead();
  const [example] = await examples("clients.md", "js");
  assert.ok(example);
  await withProject(async (dir) => {
    const pkg = join(dir, "pkg");
    await buildNpmPackage(pkg);
    const app = join(dir, "app");
    await Deno.mkdir(app);
    await Deno.writeTextFile(join(app, "package.json"), JSON.stringify({ type: "module" }));
    await run("npm", ["install", "--offline", "--no-audit", "--no-fund", pkg], { cwd: app });
    await Deno.writeTextFile(join(app, "example.js"), example);
    const out = await run("node", ["example.js"], { cwd: app, env: { JOBHEAD_ADDRESS: head.url } });
    assert.equal(out.stdout, "SUCCEEDED hello from node\n");
  });
});

Deno.test("modules.md: the module example type-checks in its own project and runs in a head", async () => {
  const [example] = await examples("modules.md", "ts");
  assert.ok(example);
  await withProject(async (dir) => {
    const denoJson = await linkedDenoJson();
    const imports = { ...denoJson.imports as Record<string, string>, hono: "npm:hono@^4" };
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify({ ...denoJson, imports }));
    const file = join(dir, "hello.ts");
    await Deno.writeTextFile(file, example);
    await run(Deno.execPath(), ["check", "hello.ts"], { cwd: dir, env: { NO_COLOR: "1" } });
    await using head = await startHead({ extraArgs: ["--module", file] });
    assert.deepEqual((await head.json("/api/hello")).body, { hello: "world" });
    const { body } = await head.json("/api/snapshot");
    assert.deepEqual(body.data.snapshot.hello, { greeting: "hi" });
  });
});

Deno.test({
  name: "modules.md: the dashboard view example type-checks, is served, and works in the page",
  // Browser tests run where Chromium is installed, and always in CI (which installs it).
  ignore: !hasChromium() && !Deno.env.get("CI"),
  fn: async () => {
    const [, viewModule] = await examples("modules.md", "ts");
    const [view] = await examples("modules.md", "js");
    assert.ok(viewModule && view);
    await withProject(async (dir) => {
      const denoJson = await linkedDenoJson();
      const imports = { ...denoJson.imports as Record<string, string>, hono: "npm:hono@^4" };
      await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify({ ...denoJson, imports }));
      const file = join(dir, "hello.ts");
      await Deno.writeTextFile(file, viewModule);
      await Deno.writeTextFile(join(dir, "hello_view.js"), view);
      await run(Deno.execPath(), ["check", "hello.ts"], { cwd: dir, env: { NO_COLOR: "1" } });
      // The view checked as the dashboard's scripts are, with the types the manual names.
      const types = join(ROOT, "modules/ui/static/js/module_view.js");
      await Deno.writeTextFile(
        join(dir, "typed_view.js"),
        `/** @typedef {import("${types}").ModuleViewContext} ModuleViewContext */\n${view}`,
      );
      await run(
        Deno.execPath(),
        ["check", "--config", join(ROOT, "modules/ui/check.json"), "typed_view.js"],
        { cwd: dir, env: { NO_COLOR: "1" } },
      );

      await using head = await startHead({ extraArgs: ["--module", file] });
      const { body: views } = await head.json("/api/ui/views");
      const entry = views.find((v: { module: string; id: string }) =>
        v.module === "hello" && v.id === "greeter"
      );
      assert.ok(entry, JSON.stringify(views));
      assert.equal(await (await head.fetch(entry.url)).text(), view);
      await using browser = await openBrowser();
      const page = await browser.newPage();
      await page.goto(`${head.url}/#/m/hello/greeter`);
      await page.locator("button", { hasText: "Say hello" }).click();
      await page.locator("button", { hasText: "Hello, world" }).waitFor();
      assert.deepEqual(browser.pageErrors, []);
    });
  },
});
