/**
 * The dashboard end to end (issue 6): a real head, real jobs, and a real headless
 * Chromium clicking through the page. Every wait is on something the page shows or a
 * FIFO a job reads; screenshots of the main views are kept (see SCREENSHOT_DIR).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { hasChromium, openBrowser, screenshot } from "./browser.ts";
import { Fifos } from "./fifos.ts";
import { type RunningHead, startHead } from "./harness.ts";
import { q, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";

const TOKEN = "ui-test-token";

/** Browser tests run where Chromium is installed, and always in CI (which installs it). */
function browserTest(name: string, fn: (t: Deno.TestContext) => Promise<void>) {
  Deno.test({
    name,
    ignore: !hasChromium() && !Deno.env.get("CI"),
    fn,
  });
}

/**
 * The text of the job page's log lines on the page, as the log has it: each line's text
 * and its newline (the last one, while it has no newline yet, without).
 */
function logText(page: Page): Promise<string> {
  return page.evaluate(shownLog, null) as Promise<string>;
}

/**
 * Runs in the page: the text of the log lines on the page (see logText), or with
 * `text`, whether it holds that.
 */
function shownLog(text: string | null): string | boolean {
  type El = { classList: { contains(c: string): boolean }; textContent: string | null };
  type Line = El & { querySelector(s: string): El | null };
  type Doc = { querySelectorAll(s: string): Line[] };
  const { document } = globalThis as unknown as { document: Doc };
  const shown = [...document.querySelectorAll(".log-line")].map((line) =>
    line.classList.contains("partial")
      ? line.textContent ?? ""
      : `${line.querySelector(".lt")?.textContent ?? ""}\n`
  ).join("");
  return text === null ? shown : shown.includes(text);
}

/** Waits until the job page's log lines hold `text`. */
async function waitForLog(page: Page, text: string): Promise<void> {
  await page.waitForFunction(shownLog, text);
}

/** Number (from 0) of the first log line on screen. */
function topLine(page: Page): Promise<number> {
  return page.evaluate(() => {
    type El = { dataset: Record<string, string>; getBoundingClientRect(): { bottom: number } };
    type Doc = {
      querySelector(s: string): { getBoundingClientRect(): { top: number } };
      querySelectorAll(s: string): El[];
    };
    const { document } = globalThis as unknown as { document: Doc };
    const top = document.querySelector(".log").getBoundingClientRect().top;
    const line = [...document.querySelectorAll(".log-line")].find((el) =>
      el.getBoundingClientRect().bottom > top
    );
    return Number(line?.dataset.line);
  });
}

/** Waits until the job page shows `status`. */
async function waitForJobStatus(page: Page, status: string): Promise<void> {
  try {
    await page.locator(`section.job[data-status="${status}"]`).waitFor();
  } catch (err) {
    const shown = await page.locator("section.job").getAttribute("data-status");
    const live = await page.locator("#live").textContent();
    const alert = await page.locator(".alert").allTextContents();
    throw new Error(
      `${(err as Error).message}\npage shows ${shown}, live: ${live}, alerts: ${alert}`,
    );
  }
}

/** Answers the confirmation dialog with its confirm button. */
async function confirm(page: Page): Promise<void> {
  await page.locator('dialog#confirm button[value="yes"]').click();
}

browserTest(
  "a job submitted from the form goes RUNNING → SUCCEEDED, its log live and in order",
  async () => {
    await using fifos = await Fifos.create();
    for (const name of ["go1", "go2", "go3", "go4"]) await fifos.make(name);
    await using head = await startHead();
    await using browser = await openBrowser();
    const page = await browser.newPage();

    await page.goto(`${head.url}/#/submit`);
    await page.fill(
      "#entrypoint",
      'echo "ready $GREETING"; for i in 1 2 3; do read x <"$FIFOS/go$i"; echo "line $i"; done',
    );
    await page.fill("#submission-id", "from-the-form");
    await page.fill("#env-vars", `FIFOS=${fifos.dir}\nGREETING=hello`);
    await page.fill("#metadata", "owner=alice\nteam=ml");
    await screenshot(page, "submit");
    await page.click("form.submit-form button[type=submit]");
    await page.waitForURL(/#\/jobs\/from-the-form$/);
    await waitForJobStatus(page, "RUNNING");
    await waitForLog(page, "ready hello\n");
    for (const i of [1, 2, 3]) {
      assert.ok(!(await logText(page)).includes(`line ${i}`), `line ${i} before it was released`);
      await fifos.send(`go${i}`);
      await waitForLog(page, `line ${i}\n`);
    }
    await waitForJobStatus(page, "SUCCEEDED");
    await page.locator('.tail-state[data-state="ended"]').waitFor();
    assert.equal(await logText(page), "ready hello\nline 1\nline 2\nline 3\n");
    await screenshot(page, "job");

    const { body: job } = await head.json("/api/jobs/from-the-form");
    assert.equal(job.metadata.owner, "alice");
    assert.equal(job.metadata.team, "ml");
    assert.deepEqual(job.runtime_env.env_vars, { FIFOS: fifos.dir, GREETING: "hello" });

    // The table: the new job appears at the top and changes status without a reload.
    await page.goto(`${head.url}/#/jobs`);
    await page.locator('tr[data-id="from-the-form"][data-status="SUCCEEDED"]').waitFor();
    await submitJob(head, {
      entrypoint: `read x <${q(fifos.path("go4"))}; echo done`,
      submission_id: "live-row",
    });
    await page.locator('tr[data-id="live-row"][data-status="RUNNING"]').waitFor();
    assert.equal(await page.locator("tbody tr").first().getAttribute("data-id"), "live-row");
    await fifos.send("go4");
    await page.locator('tr[data-id="live-row"][data-status="SUCCEEDED"]').waitFor();
    await page.locator('tr[data-id="live-row"] td.num', { hasText: "0" }).waitFor();
    await screenshot(page, "jobs");

    // Search by metadata, then by entrypoint, on the head.
    await page.fill("#job-search", "owner=alice");
    await page.locator('tr[data-id="live-row"]').waitFor({ state: "detached" });
    assert.deepEqual(
      await page.locator("tbody tr").evaluateAll((rows) =>
        rows.map((r) => r.getAttribute("data-id"))
      ),
      [
        "from-the-form",
      ],
    );
    await page.fill("#job-search", "go4");
    await page.locator('tr[data-id="from-the-form"]').waitFor({ state: "detached" });
    await page.locator('tr[data-id="live-row"]').waitFor();
    assert.deepEqual(browser.pageErrors, []);
  },
);

browserTest(
  "stop from the job page, kill an actor, scale a deployment, and a bad submission's message",
  async (t) => {
    await using head = await startHead();
    await using browser = await openBrowser();
    const page = await browser.newPage();

    await t.step("Stop asks first, then stops the job", async () => {
      await submitJob(head, { entrypoint: "echo going; exec sleep 600", submission_id: "stop-me" });
      await page.goto(`${head.url}/#/jobs/stop-me`);
      await waitForJobStatus(page, "RUNNING");
      await page.click("#stop-job");
      await page.locator('dialog#confirm button[value="no"]').click();
      assert.equal((await head.json("/api/jobs/stop-me")).body.status, "RUNNING", "cancelled");
      await page.click("#stop-job");
      await confirm(page);
      await waitForJobStatus(page, "STOPPED");
      assert.equal((await head.json("/api/jobs/stop-me")).body.status, "STOPPED");
      await page.locator("#delete-job").click();
      await confirm(page);
      await page.waitForURL(/#\/jobs$/);
      assert.equal((await head.json("/api/jobs/stop-me")).status, 404, "deleted");
    });

    await t.step("killing a job's supervisor actor fails the job", async () => {
      await submitJob(head, { entrypoint: "exec sleep 600", submission_id: "kill-me" });
      await page.goto(`${head.url}/#/actors`);
      await page.selectOption("#actor-filter", "");
      const row = page.locator('tr[data-id="jobsup_kill-me"]');
      await page.locator('tr[data-id="jobsup_kill-me"][data-state="ALIVE"]').waitFor();
      await screenshot(page, "actors");
      await row.locator("button.kill-force").click();
      await confirm(page);
      await page.locator('tr[data-id="jobsup_kill-me"][data-state="DEAD"]').waitFor();
      const { body: job } = await head.json("/api/jobs/kill-me");
      assert.equal(job.status, "FAILED");
      assert.equal(job.error_type, "JOB_SUPERVISOR_ACTOR_DIED");
    });

    await t.step("deployments show replicas and version, and scale", async () => {
      const applied = await head.json("/api/serve/deployments", {
        method: "POST",
        body: { name: "web", entrypoint: "exec sleep 600", num_replicas: 2, version: "v1" },
      });
      assert.equal(applied.status, 200, JSON.stringify(applied.body));
      await page.goto(`${head.url}/#/deployments`);
      const card = page.locator('article[data-name="web"]');
      await card.locator("tbody tr").nth(1).waitFor();
      await card.getByText("v1").first().waitFor();
      await card.locator(".replicas-input").fill("3");
      await card.getByRole("button", { name: "Scale" }).click();
      await card.locator("tbody tr").nth(2).waitFor();
      await card.getByText("3 alive of 3 wanted").waitFor().catch(async (err) => {
        // Seen once in a full CI run and never alone: say what the head and the page held.
        const { body } = await head.json("/api/serve/deployments");
        const shown = await card.textContent().catch(() => "(no card)");
        throw new Error(
          `${err.message}\nthe head: ${JSON.stringify(body)}\nthe page: ${shown}\n` +
            `page errors: ${JSON.stringify(browser.pageErrors)}`,
        );
      });
      await screenshot(page, "deployments");
    });

    await t.step("the snapshot", async () => {
      await page.goto(`${head.url}/#/snapshot`);
      await page.locator(".json-tree", { hasText: "session_name" }).waitFor();
      await screenshot(page, "snapshot");
    });

    await t.step("a refused submission shows the API's message", async () => {
      await page.goto(`${head.url}/#/submit`);
      await page.fill("#entrypoint", "true");
      await page.fill("#submission-id", "bad id!");
      await page.click("form.submit-form button[type=submit]");
      await page.locator(".alert", { hasText: "submission_id" }).waitFor();
      await page.fill("#submission-id", "kill-me");
      await page.click("form.submit-form button[type=submit]");
      await page.locator(".alert", { hasText: "already exists" }).waitFor();
      await page.fill("#submission-id", "fine");
      await page.fill("#env-vars", "NOT A PAIR");
      await page.click("form.submit-form button[type=submit]");
      await page.locator(".alert", { hasText: "expected KEY=value" }).waitFor();
    });
    assert.deepEqual(browser.pageErrors, []);
  },
);

browserTest(
  "a multi-MB log stays quick: the page keeps its tail, and following pauses when scrolled up",
  async () => {
    await using fifos = await Fifos.create();
    await fifos.make("more");
    await using head = await startHead();
    await using browser = await openBrowser();
    const page = await browser.newPage();

    // 100 000 lines of 64 bytes: 6.4 MB.
    await submitJob(head, {
      entrypoint:
        "yes 'a line of log output, long enough to make megabytes quickly..' | head -n 100000; echo END",
      submission_id: "big-log",
    });
    await page.goto(`${head.url}/#/jobs/big-log`);
    await page.locator('.tail-state[data-state="ended"]').waitFor();
    await waitForLog(page, "END\n");
    const shown = await logText(page);
    assert.ok(shown.endsWith("quickly..\nEND\n"));
    const drawn = await page.locator(".log-line").count();
    assert.ok(drawn <= 1_000, `the page draws ${drawn} lines of 100 001`);
    const atEnd = await page.locator(".log").evaluate((el) =>
      el.scrollHeight - el.scrollTop - el.clientHeight
    );
    assert.ok(atEnd <= 40, `followed to the end: ${atEnd}px from it`);

    await submitJob(head, {
      entrypoint: `seq 1 500; read x <${q(fifos.path("more"))}; echo more`,
      submission_id: "scroll-me",
    });
    await page.goto(`${head.url}/#/jobs/scroll-me`);
    await waitForLog(page, "\n500\n");
    await page.locator(".log").evaluate((el) => el.scrollTop = 100);
    await page.locator("button.follow").waitFor();
    const before = await topLine(page);
    await fifos.send("more");
    await waitForLog(page, "more\n");
    assert.equal(await topLine(page), before, "not moved");
    await page.locator("button.follow").click();
    await page.locator("button.follow").waitFor({ state: "hidden" });
    assert.deepEqual(browser.pageErrors, []);
  },
);

browserTest("the log resumes from its last byte after the head restarts", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  await using first = await startHead();
  const port = new URL(first.url).port;
  const id = await submitJob(first, {
    entrypoint: `echo before; read x <${q(fifos.path("go"))}; echo after`,
  });
  await using browser = await openBrowser();
  const page = await browser.newPage();
  await page.goto(`${first.url}/#/jobs/${id}`);
  await waitForLog(page, "before\n");
  await first.kill("SIGTERM"); // the job keeps running; the tail closes with 1001
  await page.locator('.tail-state[data-state="reconnecting"]').waitFor();
  await using second = await startHead({
    dataDir: first.dataDir,
    runId: first.runId,
    extraArgs: ["--port", port],
  });
  assert.equal(second.url, first.url);
  await page.locator('.tail-state[data-state="live"]').waitFor();
  await fifos.send("go");
  await page.locator('.tail-state[data-state="ended"]').waitFor();
  assert.equal(await logText(page), "before\nafter\n", "nothing lost, nothing twice");
});

/** Serves a page of another origin that tries to stop a job, kill its actor and tail its log. */
function serveHostilePage(head: RunningHead, id: string): Deno.HttpServer & { url: string } {
  const html = `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<form id="f" method="POST" action="${head.url}/api/jobs/${id}/stop" target="sink"
  enctype="text/plain"></form><iframe name="sink"></iframe>
<form id="g" method="POST" action="${head.url}/api/jobs/" target="sink2" enctype="text/plain"><input
  name='{"entrypoint": "true", "submission_id": "csrf", "metadata": {"a": "' value='"}}'></form>
<iframe name="sink2"></iframe>
<script>
const head = ${JSON.stringify(head.url)}, id = ${JSON.stringify(id)};
const attempts = [
  fetch(head + "/api/jobs/" + id + "/stop", { method: "POST", mode: "no-cors", credentials: "include" })
    .then(() => "sent", (e) => "failed: " + e.message),
  new Promise((done) => {
    const img = new Image();
    img.onload = img.onerror = () => done("img done");
    img.src = head + "/api/actors/kill?actor_id=jobsup_" + id + "&force_kill=true";
  }),
  new Promise((done) => {
    const ws = new WebSocket(head.replace("http", "ws") + "/api/jobs/" + id + "/logs/tail");
    let opened = false;
    ws.onopen = () => opened = true;
    ws.onclose = () => done(opened ? "socket opened" : "socket refused");
  }),
  new Promise((done) => {
    document.querySelector("iframe").onload = () => done("form posted");
    document.getElementById("f").submit();
  }),
  new Promise((done) => {
    document.querySelectorAll("iframe")[1].onload = () => done("job posted");
    document.getElementById("g").submit();
  }),
];
Promise.all(attempts).then((results) => { window.results = results; });
</script>`;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } }),
  );
  return Object.assign(server, { url: `http://127.0.0.1:${server.addr.port}` });
}

/** What the hostile page's attempts came to, once all of them have. */
async function hostileResults(page: Page): Promise<string[]> {
  const handle = await page.waitForFunction(() =>
    (globalThis as unknown as { results?: string[] }).results ?? false
  );
  return (await handle.jsonValue()) || [];
}

browserTest("sign in with the token once; a page of another origin cannot stop a job", async () => {
  await using head = await startHead({ token: TOKEN });
  const id = await submitJob(head, { entrypoint: "echo guarded; exec sleep 600" });
  await using browser = await openBrowser();
  const page = await browser.newPage();

  await page.goto(`${head.url}/`);
  await page.locator("#token").waitFor();
  await screenshot(page, "login");
  await page.fill("#token", "wrong");
  await page.click("form.login button[type=submit]");
  await page.locator(".alert", { hasText: "Wrong token" }).waitFor();
  await page.fill("#token", TOKEN);
  await page.click("form.login button[type=submit]");
  await page.locator(`tr[data-id="${id}"][data-status="RUNNING"]`).waitFor();
  await page.locator('#live[data-connected="true"]').waitFor(); // the event stream, by cookie
  const port = new URL(head.url).port;
  const cookie = (await browser.context.cookies(head.url)).find((c) =>
    c.name === `jobhead_session_${port}`
  );
  assert.ok(cookie, "a session cookie");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");

  // The log tail WebSocket is let in by the cookie too.
  await page.goto(`${head.url}/#/jobs/${id}`);
  await waitForLog(page, "guarded\n");
  await page.reload();
  await waitForLog(page, "guarded\n"); // asked once: still signed in

  // Another origin on the same host: the browser sends the cookie (same site), the head refuses.
  await using hostile = serveHostilePage(head, id);
  const other = await browser.newPage();
  await other.goto(hostile.url);
  const results = await hostileResults(other);
  assert.equal(results[2], "socket refused", JSON.stringify(results));
  const { body: job } = await head.json(`/api/jobs/${id}`);
  assert.equal(
    job.status,
    "RUNNING",
    `the hostile page stopped the job: ${JSON.stringify(results)}`,
  );
  const { body: actor } = await head.json(`/api/actors/jobsup_${id}`);
  assert.equal(actor.state, "ALIVE");

  // Our own page still can.
  await page.click("#stop-job");
  await confirm(page);
  await waitForJobStatus(page, "STOPPED");
  await page.click("#logout");
  await page.locator("#token").waitFor();
  assert.equal((await head.fetch("/api/session").then((r) => r.json())).token_required, true);
});

browserTest("without a token, a page of another origin cannot stop a job either", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "exec sleep 600" });
  // Running, and its supervisor recorded (a moment after the job's events): what the
  // hostile page must not change.
  await waitFor("the job's supervisor to be ALIVE", async () => {
    return (await head.json(`/api/actors/jobsup_${id}`)).body.state === "ALIVE";
  });
  await using browser = await openBrowser();
  await using hostile = serveHostilePage(head, id);
  const page = await browser.newPage();
  await page.goto(hostile.url);
  const results = await hostileResults(page);
  assert.equal(results[2], "socket refused", JSON.stringify(results));
  assert.equal((await head.json(`/api/jobs/${id}`)).body.status, "RUNNING");
  assert.equal((await head.json(`/api/actors/jobsup_${id}`)).body.state, "ALIVE");
  assert.equal((await head.json("/api/jobs/csrf")).status, 404, "a form posted a job");

  await using phone = await openBrowser({ viewport: { width: 390, height: 800 } });
  const small = await phone.newPage();
  await small.goto(`${head.url}/#/jobs`);
  await small.locator(`tr[data-id="${id}"][data-status="RUNNING"]`).waitFor();
  await screenshot(small, "phone-jobs");
});
