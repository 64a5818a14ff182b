/**
 * The dashboard end to end (issue 14): the jobs list's columns, re-run and copy id, the
 * keyboard, deployments (create, replica logs, live status, delete), the snapshot tree,
 * modules' own views, and every view in light and dark themes and at phone width with
 * an accessibility check (axe-core) and screenshots (see SCREENSHOT_DIR).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { accessibilityViolations, hasChromium, openBrowser, screenshot } from "./browser.ts";
import { Fifos } from "./fifos.ts";
import { type RunningHead, startHead, TEST_STORE } from "./harness.ts";
import { q, submitJob } from "./helpers.ts";

const HELLO_MODULE = new URL("../examples/hello_module.ts", import.meta.url).pathname;
const TOKEN = "dashboard-test-token";

/** Browser tests run where Chromium is installed, and always in CI (which installs it). */
function browserTest(name: string, fn: (t: Deno.TestContext) => Promise<void>) {
  Deno.test({ name, ignore: !hasChromium() && !Deno.env.get("CI"), fn });
}

/** Answers the confirmation dialog with its confirm button. */
async function confirm(page: Page): Promise<void> {
  await page.locator('dialog#confirm button[value="yes"]').click();
}

/** A module whose dashboard view throws when mounted, in a directory of its own. */
async function writeBrokenModule(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-broken-view-" });
  await Deno.writeTextFile(
    `${dir}/broken.ts`,
    `export function createModule() {
  return {
    name: "broken",
    minimal: false,
    views: [{ id: "oops", title: "Broken", file: new URL("./oops.js", import.meta.url) }],
  };
}
`,
  );
  await Deno.writeTextFile(
    `${dir}/oops.js`,
    `export function mount() { throw new Error("this view is broken on purpose"); }\n`,
  );
  return {
    path: `${dir}/broken.ts`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

browserTest("jobs list: error type, ticking durations, copy id, re-run, keyboard", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("end");
  await using head = await startHead();
  await using browser = await openBrowser();
  await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], {
    origin: head.url,
  });
  const page = await browser.newPage();
  await submitJob(head, {
    entrypoint: "echo about to fail; exit 3",
    submission_id: "fails",
    runtime_env: { env_vars: { COLOUR: "blue" } },
    metadata: { owner: "alice" },
    entrypoint_num_cpus: 0.5,
  });
  await submitJob(head, {
    entrypoint: `seq 1 500; read x <${q(fifos.path("end"))}`,
    submission_id: "ticks",
  });

  await page.goto(`${head.url}/#/jobs`);
  const failed = page.locator('tr[data-id="fails"][data-status="FAILED"]');
  await failed.locator('[data-error-type="JOB_ENTRYPOINT_COMMAND_ERROR"]').waitFor();
  assert.match(
    (await failed.locator("[data-error-type]").getAttribute("title")) ?? "",
    /non-zero code/,
  );

  // A running job's duration moves on by itself, in the list and on its page.
  const ticking = async (selector: string) => {
    const before = await page.locator(selector).textContent();
    await page.waitForFunction(
      ([s, text]) => {
        const { document } = globalThis as unknown as {
          document: { querySelector(s: string): { textContent: string | null } | null };
        };
        return document.querySelector(s!)?.textContent !== text;
      },
      [selector, before],
    );
  };
  await page.locator('tr[data-id="ticks"][data-status="RUNNING"]').waitFor();
  await ticking('tr[data-id="ticks"] .duration[data-since]');

  // Copy the id.
  await failed.locator("button.copy").click();
  assert.equal(await page.evaluate("navigator.clipboard.readText()"), "fails");

  // The keyboard: / searches, j and k move, Enter opens.
  await page.keyboard.press("/");
  assert.equal(await page.evaluate("document.activeElement?.id"), "job-search");
  await page.locator("main").focus();
  await page.keyboard.press("j");
  await page.keyboard.press("j");
  await page.keyboard.press("k");
  assert.equal(await page.locator("tbody tr.selected").getAttribute("data-id"), "ticks");
  await page.keyboard.press("j");
  assert.equal(await page.locator("tbody tr.selected").getAttribute("data-id"), "fails");
  await page.keyboard.press("k");
  await page.keyboard.press("Enter");
  await page.waitForURL(/#\/jobs\/ticks$/);
  await ticking(".facts .duration[data-since]");

  // g then l: the log's end, through the jobhead:log-end hook.
  await page.locator(".log", { hasText: "500" }).waitFor();
  await page.evaluate(
    'addEventListener("jobhead:log-end", () => document.body.dataset.logEnd = "asked")',
  );
  await page.locator(".log").evaluate((el) => el.scrollTop = 0);
  await page.locator("button.follow").waitFor();
  await page.keyboard.press("g");
  await page.keyboard.press("l");
  await page.locator('body[data-log-end="asked"]').waitFor();
  await page.locator("button.follow").waitFor({ state: "hidden" });
  const fromEnd = await page.locator(".log").evaluate((el) =>
    el.scrollHeight - el.scrollTop - el.clientHeight
  );
  assert.ok(fromEnd <= 40, `${fromEnd}px from the log's end`);
  await fifos.send("end");

  // Re-run: the form comes filled in from the job, and can be changed before it goes.
  await page.goto(`${head.url}/#/jobs`);
  await failed.locator("a.rerun").click();
  await page.waitForURL(/#\/submit\?from=fails$/);
  // A function, not a string: the page's CSP forbids the eval a string would need.
  await page.waitForFunction(() => {
    const { document } = globalThis as unknown as {
      document: { getElementById(id: string): { value: string } | null };
    };
    return document.getElementById("entrypoint")?.value === "echo about to fail; exit 3";
  });
  assert.equal(await page.inputValue("#env-vars"), "COLOUR=blue");
  assert.equal(await page.inputValue("#metadata"), "owner=alice");
  assert.equal(await page.inputValue("#submission-id"), "");
  await page.fill("#entrypoint", 'echo "again, $COLOUR"');
  await page.fill("#submission-id", "fails-again");
  await page.click("form.submit-form button[type=submit]");
  await page.waitForURL(/#\/jobs\/fails-again$/);
  await page.locator('section.job[data-status="SUCCEEDED"]').waitFor();
  const { body: copy } = await head.json("/api/jobs/fails-again");
  assert.equal(copy.entrypoint, 'echo "again, $COLOUR"');
  assert.deepEqual(copy.runtime_env.env_vars, { COLOUR: "blue" });
  assert.deepEqual(copy.metadata, { owner: "alice" });
  assert.equal(copy.entrypoint_num_cpus, 0.5, "fields the form does not show are kept");
  assert.deepEqual(browser.pageErrors, []);
});

browserTest(
  "deployments: create, replica logs, a dead replica is not ready, live status, delete",
  async () => {
    await using head = await startHead();
    await using browser = await openBrowser();
    const page = await browser.newPage();
    await page.goto(`${head.url}/#/deployments`);
    await page.locator(".deployments-view .empty").waitFor();

    await page.click("#new-deployment");
    await page.fill("#deployment-name", "web");
    await page.fill("#deployment-entrypoint", 'echo "serving on $PORT"; exec sleep 600');
    await page.fill("#deployment-replicas", "2");
    await page.fill("#deployment-version", "v1");
    await page.click("form.create-deployment button[type=submit]");
    const web = page.locator('article[data-name="web"]');
    // HEALTHY comes after the replicas are up: only a deployment event tells the page.
    await web.locator('.badge[data-status="HEALTHY"]').first().waitFor();
    await web.getByText("2 alive of 2 wanted").waitFor();
    // On PostgreSQL the head is a node of a cluster: each replica's node is named.
    const nodes = await web.locator("td.node").allTextContents();
    assert.deepEqual(nodes, TEST_STORE === "postgres" ? Array(2).fill(nodes[0] ?? "?") : []);
    if (TEST_STORE === "postgres") assert.match(nodes[0], /\S/);

    // A replica's log.
    await web.locator("a.replica-log").first().click();
    await page.waitForURL(/#\/deployments\/web\/replicas\/servereplica_web_[a-z0-9]+\/logs$/);
    await page.locator("pre.replica-log-text", { hasText: /serving on \d+/ }).waitFor();
    await page.goBack();

    // A replica out of restarts is DEAD, and not ready.
    const crash = await head.json("/api/serve/deployments", {
      method: "POST",
      body: { name: "crash", entrypoint: "exit 3", restart_policy: { max_restarts: 0 } },
    });
    assert.equal(crash.status, 200, JSON.stringify(crash.body));
    const crashCard = page.locator('article[data-name="crash"]');
    await crashCard.locator('tbody tr .badge[data-status="DEAD"]').waitFor();
    await crashCard.locator('.badge[data-status="UNHEALTHY"]').first().waitFor();
    assert.equal((await crashCard.locator("td.ready").textContent())?.trim(), "✕ no");
    await screenshot(page, "deployments-created");

    // Delete asks first.
    await crashCard.locator("button.delete-deployment").click();
    await page.locator('dialog#confirm button[value="no"]').click();
    assert.equal((await head.json("/api/serve/deployments/crash")).status, 200, "cancelled");
    await crashCard.locator("button.delete-deployment").click();
    await confirm(page);
    await crashCard.waitFor({ state: "detached" });
    assert.equal((await head.json("/api/serve/deployments/crash")).status, 404);
    // Deleted elsewhere: the page follows.
    await head.json("/api/serve/deployments/web", { method: "DELETE" });
    await web.waitFor({ state: "detached" });
    assert.deepEqual(browser.pageErrors, []);
  },
);

browserTest("the snapshot is a tree: large parts start folded and unfold", async () => {
  await using head = await startHead();
  for (let i = 0; i < 21; i++) await submitJob(head, { entrypoint: "true" });
  await using browser = await openBrowser();
  const page = await browser.newPage();
  await page.goto(`${head.url}/#/snapshot`);
  const tree = page.locator(".json-tree");
  await tree.getByText("session_name").waitFor();
  const jobs = tree.locator("details", {
    has: page.locator(":scope > summary", { hasText: /^jobs: \{21\}$/ }),
  });
  assert.equal(
    await jobs.evaluate((el) => (el as unknown as { open: boolean }).open),
    false,
    "folded",
  );
  assert.equal(await jobs.locator(".json-children").count(), 0, "not drawn while folded");
  await jobs.locator(":scope > summary").click();
  await jobs.locator(":scope > .json-children > details").nth(20).waitFor();
  // Full height: the tree never scrolls inside a box of its own.
  const inner = await tree.evaluate((el) => [el.scrollHeight, el.clientHeight]);
  assert.ok(inner[0] <= inner[1] + 1, `the tree scrolls inside: ${inner}`);
  await page.click("text=Fold all");
  assert.equal(await jobs.evaluate((el) => (el as unknown as { open: boolean }).open), false);
  assert.deepEqual(browser.pageErrors, []);
});

browserTest(
  "an operator's module adds a page that calls its API; a view that throws shows an error box",
  async () => {
    await using broken = await writeBrokenModule();
    await using head = await startHead({
      token: TOKEN,
      extraArgs: ["--module", HELLO_MODULE, "--module", broken.path],
    });
    await using browser = await openBrowser();
    const page = await browser.newPage();
    await page.goto(`${head.url}/`);
    await page.fill("#token", TOKEN);
    await page.click("form.login button[type=submit]");

    // The module's view calls the module's API with the page's session cookie.
    await page.locator('nav a[data-module="hello"]', { hasText: "Hello" }).click();
    await page.waitForURL(/#\/m\/hello\/greeter$/);
    // The link is marked once the view has been routed to, a moment after the URL changed.
    await page.locator('nav a[data-module="hello"][aria-current="page"]').waitFor();
    await page.click("#hello-greet");
    await page.locator("#hello-answer", { hasText: "Hello, world! Greetings so far: 1" })
      .waitFor();
    await screenshot(page, "module-view");
    // The live event stream reaches it.
    await submitJob(head, { entrypoint: "true" });
    await page.getByText("Jobs ended since this page opened: 1").waitFor();
    // And it navigates.
    await page.getByRole("button", { name: "See the jobs" }).click();
    await page.waitForURL(/#\/jobs$/);

    // A view that throws: an error box, and the dashboard goes on.
    await page.locator('nav a[data-module="broken"]').click();
    await page.locator(".module-view-error", { hasText: "this view is broken on purpose" })
      .waitFor();
    await page.locator("nav a", { hasText: "Jobs" }).click();
    await page.locator("tbody tr").first().waitFor();
    // An unknown view too.
    await page.goto(`${head.url}/#/m/nobody/nothing`);
    await page.locator(".module-view-error", { hasText: "not loaded" }).waitFor();
    await page.locator("nav a", { hasText: "Hello" }).click();
    await page.locator("#hello-greet").waitFor();
    assert.deepEqual(browser.pageErrors, []);
  },
);

/**
 * A head with something in every view: jobs (one failed, one waiting for a CPU), a
 * deployment, a module view.
 */
async function populatedHead(): Promise<RunningHead & { replicaLog: string }> {
  const head = await startHead({ extraArgs: ["--module", HELLO_MODULE] });
  await submitJob(head, {
    entrypoint: "echo training; echo 'Traceback: boom' >&2; exit 1",
    submission_id: "train-failed",
    metadata: { owner: "alice" },
  });
  await submitJob(head, { entrypoint: "echo done", submission_id: "report" });
  await submitJob(head, { entrypoint: "exec sleep 600", submission_id: "serve-batch" });
  // One job that takes every CPU, and one that waits for a CPU: a queue to show.
  const { body: cluster } = await head.json("/api/cluster");
  await submitJob(head, {
    entrypoint: "exec sleep 600",
    submission_id: "all-cpus",
    entrypoint_num_cpus: cluster.nodes[0].total.CPU,
  });
  await submitJob(head, {
    entrypoint: "exec sleep 600",
    submission_id: "waits-for-a-cpu",
    entrypoint_num_cpus: 1,
  });
  const applied = await head.json("/api/serve/deployments", {
    method: "POST",
    body: { name: "web", entrypoint: 'echo "serving on $PORT"; exec sleep 600', version: "v1" },
  });
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  const actor = applied.body.replicas[0].actor_id;
  return Object.assign(head, { replicaLog: `#/deployments/web/replicas/${actor}/logs` });
}

browserTest(
  "every view in light and dark themes and at phone width: no serious accessibility violations",
  async (t) => {
    await using head = await populatedHead();
    // A head with a token, for its sign-in page (the browser holds no session for it).
    await using guarded = await startHead({ token: TOKEN });
    await using browser = await openBrowser();
    const page = await browser.newPage();
    const views: [string, string, string][] = [
      ["jobs", `${head.url}/#/jobs`, 'tr[data-id="train-failed"][data-status="FAILED"]'],
      ["job", `${head.url}/#/jobs/train-failed`, '.tail-state[data-state="ended"]'],
      ["submit", `${head.url}/#/submit`, "#entrypoint"],
      ["rerun", `${head.url}/#/submit?from=train-failed`, "text=A copy of job train-failed"],
      ["actors", `${head.url}/#/actors`, 'tr[data-id="jobsup_serve-batch"]'],
      ["cluster", `${head.url}/#/cluster`, 'article.node .resource[data-resource="CPU"]'],
      [
        "deployments",
        `${head.url}/#/deployments`,
        'article[data-name="web"] .badge[data-status="HEALTHY"]',
      ],
      ["replica-log", `${head.url}/${head.replicaLog}`, "text=/serving on \\d+/"],
      ["snapshot", `${head.url}/#/snapshot`, "text=session_name"],
      ["module-view", `${head.url}/#/m/hello/greeter`, "#hello-greet"],
      ["login", `${guarded.url}/`, "form.login #token"],
    ];
    const sizes = [
      ["", { width: 1280, height: 800 }],
      ["-phone", { width: 390, height: 844 }],
    ] as const;
    for (const [size, viewport] of sizes) {
      await page.setViewportSize(viewport);
      for (const scheme of ["light", "dark"] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        for (const [name, url, ready] of views) {
          await t.step(`${name}, ${scheme}${size}`, async () => {
            await page.goto(url);
            await page.locator(ready).first().waitFor();
            await screenshot(page, `${name}-${scheme}${size}`);
            assert.deepEqual(await accessibilityViolations(page), []);
          });
        }
      }
    }
    assert.deepEqual(browser.pageErrors, []);
  },
);
