/**
 * The dashboard and the scheduler (issue 11), end to end: a head with one CPU, jobs that
 * queue for it, and a real headless Chromium. The cluster view's bars and counts follow
 * jobs as they start and end; the jobs list shows each job's resources and why a PENDING
 * one waits; the job page says it too; the submit form sends a priority. Every wait is on
 * something the page shows or a FIFO a job reads.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { accessibilityViolations, hasChromium, openBrowser, screenshot } from "./browser.ts";
import { Fifos } from "./fifos.ts";
import { startHead, waitForStatus } from "./harness.ts";
import { q, submitJob } from "./helpers.ts";

/** Browser tests run where Chromium is installed, and always in CI (which installs it). */
function browserTest(name: string, fn: (t: Deno.TestContext) => Promise<void>) {
  Deno.test({ name, ignore: !hasChromium() && !Deno.env.get("CI"), fn });
}

/** Waits until the node card's words for `resource` read `text`. */
async function waitForUse(page: Page, resource: string, text: string): Promise<void> {
  const use = page.locator(`article.node .resource[data-resource="${resource}"] .use`);
  try {
    await use.filter({ hasText: new RegExp(`^${text.replace(/[()]/g, "\\$&")}$`) }).waitFor();
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${resource} shows: ${await use.textContent()}`);
  }
}

browserTest(
  "the cluster view follows jobs that queue for one CPU; the list and the job page say why one waits",
  async () => {
    await using fifos = await Fifos.create();
    await using head = await startHead({
      extraArgs: ["--num-cpus", "1", "--memory", "4G", "--resources", '{"license":2}'],
    });
    await using browser = await openBrowser();
    const page = await browser.newPage();
    await page.goto(`${head.url}/#/cluster`);
    await waitForUse(page, "CPU", "0 / 1 used");
    await waitForUse(page, "memory", "0.0 / 4.0 GiB used");
    await waitForUse(page, "license", "0 / 2 used");
    await page.locator("article.node .badge", { hasText: "ALIVE" }).waitFor();

    const first = await fifos.make("go-first");
    await submitJob(head, {
      entrypoint: `read x <${q(first)}`,
      submission_id: "first",
      entrypoint_num_cpus: 1,
      entrypoint_memory: 1024 ** 3,
      entrypoint_resources: { license: 1 },
    });
    await waitForUse(page, "CPU", "1 / 1 used (full)");
    await waitForUse(page, "memory", "1.0 / 4.0 GiB used");
    await waitForUse(page, "license", "1 / 2 used");
    await page.locator('[data-count="running"]', { hasText: "1 running" }).waitFor();

    // The second job, from the form: a re-run of the first (its resources are kept) with
    // a priority. It waits for the CPU.
    const second = await fifos.make("go-second");
    await page.goto(`${head.url}/#/submit?from=first`);
    await page.getByText("A copy of job first").waitFor();
    await page.fill("#entrypoint", `read x <${q(second)}`);
    await page.fill("#submission-id", "second");
    await page.fill("#priority", "3");
    await page.click("form.submit-form button[type=submit]");
    await page.waitForURL(/#\/jobs\/second$/);
    await page.locator('section.job[data-status="PENDING"]').waitFor();
    await page.locator(".why.waiting .pending-reason", {
      hasText: /^Waiting for resources: needs CPU 1, 0 of 1 free; 0 jobs ahead$/,
    }).waitFor();
    await page.locator(".facts dd", { hasText: "1 CPU · 1 GiB · 1 license" }).waitFor();
    await page.locator(".facts dd", { hasText: /^3$/ }).waitFor(); // its priority
    await screenshot(page, "job-pending");
    const { body: job } = await head.json("/api/jobs/second");
    assert.equal(job.priority, 3);
    assert.equal(job.entrypoint_num_cpus, 1);

    // A third, with the default priority: it queues behind the second.
    const third = await fifos.make("go-third");
    await submitJob(head, {
      entrypoint: `read x <${q(third)}`,
      submission_id: "third",
      entrypoint_num_cpus: 1,
    });

    await page.goto(`${head.url}/#/jobs`);
    const row = page.locator('tr[data-id="second"][data-status="PENDING"]');
    await row.locator(".pending-reason", { hasText: "Waiting for resources: needs CPU 1" })
      .waitFor();
    const thirdReason = page.locator('tr[data-id="third"] .pending-reason');
    await thirdReason.filter({ hasText: /; 1 job ahead$/ }).waitFor();
    assert.equal(await row.locator("td.resources").textContent(), "1 CPU · 1 GiB · 1 license");
    assert.equal(
      await page.locator('tr[data-id="first"] .pending-reason').count(),
      0,
      "a running job waits for nothing",
    );
    await screenshot(page, "jobs-pending");
    assert.deepEqual(await accessibilityViolations(page), []);

    // The first one ends: the second starts, and the third, which had no change of its
    // own, now has no job ahead: the list reads the reasons again.
    await fifos.send("go-first");
    await page.locator('tr[data-id="second"][data-status="RUNNING"]').waitFor();
    await thirdReason.filter({ hasText: /; 0 jobs ahead$/ }).waitFor();
    assert.equal(await row.count(), 0);
    assert.equal(await page.locator('tr[data-id="second"] .pending-reason').count(), 0);

    await page.goto(`${head.url}/#/cluster`);
    await page.locator('[data-count="pending"]', { hasText: "1 pending" }).waitFor();
    await page.locator(".cluster-summary", { hasText: "1 node: 1 running, 1 pending." })
      .waitFor();
    await screenshot(page, "cluster");
    assert.deepEqual(await accessibilityViolations(page), []);

    // The view follows without a reload as the rest start and end.
    await fifos.send("go-second");
    await waitForStatus(head, "third", ["RUNNING"]);
    await page.locator('[data-count="pending"]', { hasText: "0 pending" }).waitFor();
    await waitForUse(page, "CPU", "1 / 1 used (full)");
    await waitForUse(page, "memory", "0.0 / 4.0 GiB used");
    await fifos.send("go-third");
    await waitForStatus(head, "third", ["SUCCEEDED"]);
    await waitForUse(page, "CPU", "0 / 1 used");
    await page.locator('[data-count="running"]', { hasText: "0 running" }).waitFor();
    assert.deepEqual(browser.pageErrors, []);
  },
);

browserTest("the cluster view says so when the head has no scheduler", async () => {
  await using head = await startHead();
  await using browser = await openBrowser();
  const page = await browser.newPage();
  // A head older than the scheduler answers GET /api/cluster 404, as any unknown route.
  await page.route("**/api/cluster", (route) =>
    route.fulfill({
      status: 404,
      json: { error: { code: "NOT_FOUND", message: "Not found: GET /api/cluster" } },
    }));
  await page.goto(`${head.url}/#/cluster`);
  await page.locator(".notice", { hasText: "This head has no scheduler" }).waitFor();
  assert.equal(await page.locator("article.node").count(), 0);
  assert.equal(await page.locator(".alert:visible").count(), 0, "no error: a note");
  assert.deepEqual(browser.pageErrors, []);
});
