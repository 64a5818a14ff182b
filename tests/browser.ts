/**
 * Headless Chromium for the dashboard's end-to-end tests: Debian's `chromium` driven by
 * `playwright-core`, a fresh profile per browser, and screenshots kept as test artefacts.
 * @module
 */
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import axe from "axe-core";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { HANG_GUARD_MS } from "./fifos.ts";

/** Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it when missing). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Headless, offline and quiet: no GPU, no QUIC, no first-run or background traffic. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** How long a browser action or wait may take: the tests' hang guard. */
const ACTION_TIMEOUT_MS = HANG_GUARD_MS;

/**
 * Where screenshots go, as the run's artefacts: `$JOBHEAD_SCREENSHOT_DIR`, else
 * `test-artifacts/screenshots` in the checkout (git ignores it; each run overwrites
 * it). `JOBHEAD_SCREENSHOT_DIR=docs/screenshots` refreshes the README's.
 */
export const SCREENSHOT_DIR = Deno.env.get("JOBHEAD_SCREENSHOT_DIR") ??
  fromFileUrl(new URL("../test-artifacts/screenshots", import.meta.url));

/** Whether Chromium is installed. */
export function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile;
  } catch {
    return false;
  }
}

/** A browser with a fresh profile; disposing closes it and removes the profile. */
export interface Browser extends AsyncDisposable {
  context: BrowserContext;
  /** A new tab whose console errors and page errors fail `assertNoPageErrors`. */
  newPage(): Promise<Page>;
  /** Errors the pages logged or threw so far. */
  pageErrors: string[];
}

/** Starts headless Chromium with a fresh `--user-data-dir`. */
export async function openBrowser(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "jobhead-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
    viewport: options.viewport ?? { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  const pageErrors: string[] = [];
  return {
    context,
    pageErrors,
    async newPage() {
      const page = await context.newPage();
      page.on("pageerror", (err) => pageErrors.push(`page error: ${err.message}`));
      // A style sheet or script that did not load leaves a page that runs but is not the
      // dashboard: say so, rather than let a later assertion fail without a reason.
      const isCode = (type: string) => type === "stylesheet" || type === "script";
      page.on("requestfailed", (request) => {
        if (!isCode(request.resourceType())) return;
        pageErrors.push(`failed to load ${request.url()}: ${request.failure()?.errorText}`);
      });
      page.on("response", (response) => {
        if (!isCode(response.request().resourceType()) || response.status() < 400) return;
        pageErrors.push(`failed to load ${response.url()}: HTTP ${response.status()}`);
      });
      return page;
    },
    async [Symbol.asyncDispose]() {
      await context.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** Saves a screenshot of `page` as `<name>.png` in SCREENSHOT_DIR and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Serious and critical accessibility violations axe-core finds on the page, as text. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP does not apply to it.
  await page.evaluate(axe.source);
  const violations = await page.evaluate(async () => {
    type Result = {
      id: string;
      impact: string | null;
      help: string;
      nodes: { target: unknown[] }[];
    };
    const { axe } = globalThis as unknown as {
      axe: { run(): Promise<{ violations: Result[]; passes: unknown[] }> };
    };
    const results = await axe.run();
    if (results.passes.length === 0) throw new Error("axe checked nothing");
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => JSON.stringify(n.target)),
    }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id} (${v.help}): ${v.targets.join(", ")}`);
}
