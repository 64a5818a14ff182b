/**
 * The dashboard's log view end to end (issue 14): a real head, real jobs and headless
 * Chromium. A 40 MB log opens at its end, ANSI colours and `\r` redraws show as a
 * terminal shows them, search runs over the whole log, lines are linkable, the raw log
 * downloads, a failed job shows why first, and a job writing 10,000 lines a second keeps
 * the page responsive. Times are reported, never asserted.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { hasChromium, openBrowser, screenshot } from "./browser.ts";
import { Fifos } from "./fifos.ts";
import { startHead, waitForStatus } from "./harness.ts";
import { q, submitJob } from "./helpers.ts";

/** Browser tests run where Chromium is installed, and always in CI (which installs it). */
function browserTest(name: string, fn: (t: Deno.TestContext) => Promise<void>) {
  Deno.test({ name, ignore: !hasChromium() && !Deno.env.get("CI"), fn });
}

/**
 * Whether the log line holding `text` is on the page and inside the log box's visible
 * area. Runs in the page: passed to `evaluate` and `waitForFunction` alike.
 */
function isLineOnScreen(text: string): boolean {
  type Rect = { top: number; bottom: number };
  type El = { textContent: string | null; getBoundingClientRect(): Rect };
  type Doc = { querySelector(s: string): El | null; querySelectorAll(s: string): El[] };
  const { document } = globalThis as unknown as { document: Doc };
  const log = document.querySelector(".log");
  if (!log) return false;
  const box = log.getBoundingClientRect();
  const line = [...document.querySelectorAll(".log-line")].find((el) =>
    el.textContent?.includes(text)
  );
  if (!line) return false;
  const rect = line.getBoundingClientRect();
  return rect.top >= box.top - 1 && rect.bottom <= box.bottom + 1;
}

/** Whether the log line holding `text` is inside the log box's visible area now. */
function lineOnScreen(page: Page, text: string): Promise<boolean> {
  return page.evaluate(isLineOnScreen, text);
}

/** Waits until the log line holding `text` is inside the log box's visible area. */
async function waitForLineOnScreen(page: Page, text: string): Promise<void> {
  await page.waitForFunction(isLineOnScreen, text);
}

/** Number of lines on the page. */
function renderedLines(page: Page): Promise<number> {
  return page.locator(".log-line").count();
}

/** The computed text colour of the log span holding `text`. */
function colorOf(page: Page, text: string): Promise<string> {
  return page.locator(".log .lt span", { hasText: text }).evaluate((el) => {
    const g = globalThis as unknown as { getComputedStyle(e: unknown): { color: string } };
    return g.getComputedStyle(el).color;
  });
}

/** The `p`-th percentile of `values`. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** 650,000 numbered lines (about 40 MB), a needle near the start, then a last line. */
const FORTY_MB = "awk 'BEGIN { for (i = 1; i <= 650000; i++) { " +
  'if (i == 120) print "NEEDLE-IN-THE-HAYSTACK here"; ' +
  'printf "line %07d of a long log: lorem ipsum dolor sit amet, consectetur\\n", i }; ' +
  'print "THE LAST LINE" }\'';

browserTest(
  "a finished 40 MB log opens at its end; search, line links and the raw download reach all of it",
  async () => {
    await using head = await startHead();
    const id = await submitJob(head, { entrypoint: FORTY_MB, submission_id: "forty-mb" });
    await waitForStatus(head, id, ["SUCCEEDED"]);
    const size = Number(
      (await head.fetch(`/api/jobs/${id}/logs/raw`, { method: "HEAD" })).headers.get(
        "content-length",
      ),
    );
    assert.ok(size > 40_000_000, `log is ${size} bytes`);
    await using browser = await openBrowser();
    const page = await browser.newPage();

    const started = performance.now();
    await page.goto(`${head.url}/#/jobs/${id}`);
    await waitForLineOnScreen(page, "THE LAST LINE");
    const openMs = performance.now() - started;
    console.log(
      `40 MB log (${size} bytes): last line on screen ${openMs.toFixed(0)} ms after opening`,
    );
    // 650,000 lines, the needle and the last line: the last is line 650,002.
    assert.equal(
      await page.locator(".log-line", { hasText: "THE LAST LINE" }).locator(".ln").textContent(),
      "650002",
    );
    assert.ok((await renderedLines(page)) <= 1_000, "only lines near the screen are drawn");
    await page.locator('.tail-state[data-state="ended"]').waitFor();
    await page.locator(".log-tools").evaluate((el) => el.scrollIntoView());
    await screenshot(page, "log-40mb-end");

    // Scrolling up fetches earlier lines, and the line numbers follow.
    await page.waitForFunction(
      () => {
        type Doc = {
          querySelector(s: string): { scrollTop: number; textContent: string | null } | null;
        };
        const { document } = globalThis as unknown as { document: Doc };
        const box = document.querySelector(".log")!;
        box.scrollTop = 0; // a reader who keeps scrolling up
        return box.textContent?.includes("line 0640000 ") ?? false;
      },
      undefined,
      { polling: 100 },
    );
    assert.equal(
      await page.locator(".log-line", { hasText: "line 0640000 " }).locator(".ln").textContent(),
      "640001",
    );

    // Search runs on the head: the needle is 40 MB before anything the page holds.
    assert.equal(await page.locator(".log-line", { hasText: "NEEDLE" }).count(), 0);
    await page.fill("#log-search", "needle-in-the");
    await page.press("#log-search", "Enter");
    await waitForLineOnScreen(page, "NEEDLE-IN-THE-HAYSTACK");
    assert.equal(await page.locator(".log-line.hit mark").textContent(), "NEEDLE-IN-THE");
    assert.equal(await page.locator(".log-line.hit .ln").textContent(), "120");
    assert.match(await page.locator(".search-state").textContent() ?? "", /Line 120/);
    await page.locator(".log-tools").evaluate((el) => el.scrollIntoView());
    await screenshot(page, "log-search");
    await page.click("#log-next");
    await page.locator(".search-state", { hasText: "No other match" }).waitFor();

    // A line's number is a link to it: the address names the line, and opening it shows it.
    await page.locator(".log-line", { hasText: "line 0000200 " }).locator(".ln").click();
    await page.waitForURL(/\?line=201$/);
    const link = page.url();
    const linked = await browser.newPage();
    await linked.goto(link);
    await waitForLineOnScreen(linked, "line 0000200 ");
    assert.equal(await linked.locator(".log-line.target .ln").textContent(), "201");
    await linked.close();

    // The raw log downloads whole and exact.
    const download = page.locator("#log-download");
    assert.equal(await download.getAttribute("href"), `/api/jobs/${id}/logs/raw`);
    assert.equal(await download.getAttribute("download"), `${id}.log`);
    const [file] = await Promise.all([page.waitForEvent("download"), download.click()]);
    const path = await file.path();
    assert.equal((await Deno.stat(path)).size, size);
    assert.deepEqual(browser.pageErrors, []);
  },
);

browserTest(
  "ANSI colours show as styled spans, \\r redraws as one line, long lines wrap by a toggle",
  async () => {
    await using head = await startHead();
    const script = [
      String.raw`printf '\033[36mcyan text\033[0m and \033[1;31mbold red\033[0m\n'`,
      String.raw`printf '\033[38;5;208morange 256\033[0m \033[38;2;10;200;90mtrue colour\033[0m\n'`,
      String
        .raw`i=0; while [ $i -le 100 ]; do printf '\rprogress %3d%%' $i; i=$((i+5)); done; printf '\n'`,
      String
        .raw`printf 'long:'; i=0; while [ $i -lt 400 ]; do printf ' word%03d' $i; i=$((i+1)); done; printf '\n'`,
      "echo done",
    ].join("; ");
    const id = await submitJob(head, { entrypoint: script, submission_id: "colours" });
    await waitForStatus(head, id, ["SUCCEEDED"]);
    await using browser = await openBrowser();
    const page = await browser.newPage();
    await page.goto(`${head.url}/#/jobs/${id}`);
    await waitForLineOnScreen(page, "done");

    assert.equal(await page.locator(".log .ansi-cyan-fg").textContent(), "cyan text");
    const boldRed = page.locator(".log .ansi-red-fg");
    assert.equal(await boldRed.textContent(), "bold red");
    assert.match((await boldRed.getAttribute("class")) ?? "", /ansi-bold/);
    assert.equal(await colorOf(page, "orange 256"), "rgb(255, 135, 0)");
    assert.equal(await colorOf(page, "true colour"), "rgb(10, 200, 90)");
    assert.ok(!(await page.locator(".log").textContent())?.includes("\x1b"), "no raw escapes");

    // 21 frames of a progress bar: one line, in its last state.
    const progress = page.locator(".log-line", { hasText: "progress" });
    assert.equal(await progress.count(), 1);
    assert.equal(await progress.locator(".lt").textContent(), "progress 100%");
    await screenshot(page, "log-ansi");
    await page.emulateMedia({ colorScheme: "dark" });
    await screenshot(page, "log-ansi-dark");

    // Long lines wrap by default; unticked, they scroll sideways.
    const overflows = () =>
      page.locator(".log").evaluate((el) => el.scrollWidth > el.clientWidth + 1);
    assert.equal(await page.isChecked("#log-wrap"), true);
    assert.equal(await overflows(), false);
    await page.uncheck("#log-wrap");
    assert.equal(await overflows(), true);
    await screenshot(page, "log-nowrap");
    await page.reload();
    await waitForLineOnScreen(page, "done");
    assert.equal(await page.isChecked("#log-wrap"), false, "the choice is remembered");
    assert.deepEqual(browser.pageErrors, []);
  },
);

browserTest(
  "a failed job shows its error type in words and the end of its message and log",
  async () => {
    await using head = await startHead();
    const id = await submitJob(head, {
      entrypoint: 'i=0; while [ $i -lt 3000 ]; do echo "step $i: training..."; i=$((i+1)); done; ' +
        "echo 'Traceback (most recent call last):'; echo 'ValueError: the loss is NaN' >&2; exit 3",
      submission_id: "fails",
    });
    await waitForStatus(head, id, ["FAILED"]);
    await using browser = await openBrowser();
    const page = await browser.newPage();
    await page.goto(`${head.url}/#/jobs/${id}`);
    await page.locator('section.job[data-status="FAILED"]').waitFor();
    assert.match(
      (await page.locator(".why").textContent()) ?? "",
      /The command exited with a non-zero status \(JOB_ENTRYPOINT_COMMAND_ERROR\)/,
    );
    await waitForLineOnScreen(page, "ValueError: the loss is NaN");
    const message = page.locator("pre.message");
    assert.match((await message.textContent()) ?? "", /ValueError: the loss is NaN\n?$/);
    const box = await message.evaluate((el) => {
      const win = globalThis as unknown as {
        getComputedStyle(e: unknown): { maxHeight: string };
        document: { styleSheets: Iterable<{ href: string | null; cssRules: { length: number } }> };
      };
      return {
        scrollHeight: el.scrollHeight,
        clientHeight: el.clientHeight,
        maxHeight: win.getComputedStyle(el).maxHeight,
        chars: el.textContent?.length,
        styleSheets: [...win.document.styleSheets].map((sheet) =>
          `${sheet.href} ${sheet.cssRules.length}`
        ),
      };
    });
    assert.ok(
      box.scrollHeight > box.clientHeight + 10,
      `the message is longer than its box: ${JSON.stringify(box)}; ${browser.pageErrors}`,
    );
    assert.ok(
      await message.evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2),
      "the message box shows its end",
    );
    await screenshot(page, "job-failed");
    await page.emulateMedia({ colorScheme: "dark" });
    await screenshot(page, "job-failed-dark");
    assert.deepEqual(browser.pageErrors, []);
  },
);

/**
 * Once `go` is opened: batches of 1,000 lines, ten a second, until the file `stop`
 * exists (the job checks between batches), then `END after <n> batches`.
 */
function tenThousandLinesPerSecond(fifos: Fifos): string {
  return `read x <${q(fifos.path("go"))}; i=0; while [ ! -e ${q(fifos.path("stop"))} ]; do ` +
    `awk -v b=$i 'BEGIN { for (j = 0; j < 1000; j++) ` +
    `printf "\\033[32mINFO\\033[0m batch %d line %d: step done\\n", b, j }'; ` +
    `i=$((i+1)); sleep 0.1; done; echo "END after $i batches"`;
}

browserTest(
  "a job writing 10,000 lines a second keeps the page responsive while following",
  async () => {
    await using fifos = await Fifos.create();
    await fifos.make("go");
    await using head = await startHead();
    const id = await submitJob(head, {
      entrypoint: tenThousandLinesPerSecond(fifos),
      submission_id: "fast-writer",
    });
    await using browser = await openBrowser();
    const page = await browser.newPage();
    await page.goto(`${head.url}/#/jobs/${id}`);
    await page.locator('.tail-state[data-state="live"]').waitFor();
    // Input latency: from a key's event time to the next frame the page draws.
    await page.evaluate(() => {
      const g = globalThis as unknown as {
        latencies: number[];
        addEventListener(type: string, fn: (e: { timeStamp: number }) => void): void;
        requestAnimationFrame(fn: () => void): void;
      };
      g.latencies = [];
      g.addEventListener("keydown", (event) => {
        g.requestAnimationFrame(() => g.latencies.push(performance.now() - event.timeStamp));
      });
    });
    await fifos.send("go");
    await page.locator(".log-line", { hasText: "batch" }).first().waitFor();
    await page.focus("#log-search");
    for (let i = 0; i < 200; i++) {
      await page.keyboard.press(i % 2 ? "Backspace" : "x");
    }
    // Every key was taken while the job was still writing: it writes until told to stop.
    const status = (await head.json(`/api/jobs/${id}`)).body.status;
    assert.equal(status, "RUNNING", "the job still wrote after the last key");
    await page.waitForFunction(() =>
      (globalThis as unknown as { latencies: number[] }).latencies.length >= 200
    );
    const latencies: number[] = await page.evaluate(() =>
      (globalThis as unknown as { latencies: number[] }).latencies
    );
    console.log(
      `input latency while a job writes 10,000 lines/s: ` +
        `p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${
          percentile(latencies, 99).toFixed(1)
        } ms, max ${Math.max(...latencies).toFixed(1)} ms over ${latencies.length} keys; ` +
        `slowest: ${[...latencies].sort((a, b) => b - a).slice(0, 5).map(Math.round).join(", ")}`,
    );
    await page.locator(".log-tools").evaluate((el) => el.scrollIntoView());
    await screenshot(page, "log-live");
    await Deno.writeTextFile(fifos.path("stop"), "");
    await waitForStatus(head, id, ["SUCCEEDED"]);
    await waitForLineOnScreen(page, "END");
    const end = page.locator(".log-line", { hasText: "END" });
    const batches = Number(/END after (\d+) batches/.exec((await end.textContent()) ?? "")?.[1]);
    assert.ok(batches > 0, "the job wrote batches");
    assert.equal(await end.locator(".ln").textContent(), String(batches * 1000 + 1));
    assert.ok((await renderedLines(page)) <= 2_000, "only lines near the screen are drawn");
    assert.ok(await lineOnScreen(page, `batch ${batches - 1} line 999`));
    assert.deepEqual(browser.pageErrors, []);
  },
);
