/**
 * Libraries from npm that the page loads as they are published, with no build step: the
 * head serves each package's file from Deno's npm cache (a text import: `deno install`
 * caches it with the rest, and the head needs no network when it runs).
 */
import anserSource from "anser" with { type: "text" };

/**
 * The page's files that come from npm packages, by their path under `/ui/`.
 * `anser` is CommonJS (`module.exports = Anser`): it is served wrapped as an ES module
 * whose default export is that object.
 */
export const VENDOR_FILES: Record<string, string> = {
  "vendor/anser.js": "const module = { exports: {} };\n" +
    `${anserSource}\n` +
    "export default module.exports;\n",
};
