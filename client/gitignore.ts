/**
 * `.gitignore` patterns: which paths of a working directory stay out of its package.
 * Matching is `npm:ignore`'s (what eslint and prettier use, tested against git itself);
 * this file only scopes each `.gitignore` to its directory and orders the files.
 * @module
 */
import ignore, { type Ignore } from "ignore";

/** The patterns of one `.gitignore` (or of the caller's excludes). */
export interface IgnoreRule {
  /** Directory (relative, POSIX, "" for the root) whose `.gitignore` holds the patterns. */
  base: string;
  /** The patterns, matched against paths relative to `base`. */
  patterns: Ignore;
}

/** Compiles the lines of a `.gitignore` found in directory `base` ("" for the root). */
export function parseGitignore(text: string, base = ""): IgnoreRule[] {
  return [{ base, patterns: ignore().add(text) }];
}

/**
 * Whether `path` (relative to the root, POSIX) is ignored by `rules`, in order: the last
 * pattern that matches decides, as in git, also across files.
 */
export function isIgnored(rules: readonly IgnoreRule[], path: string, isDir: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.base !== "" && !path.startsWith(`${rule.base}/`)) continue;
    const relative = rule.base === "" ? path : path.slice(rule.base.length + 1);
    // A trailing slash tells `ignore` the path is a directory (for patterns like `build/`).
    const result = rule.patterns.test(isDir ? `${relative}/` : relative);
    if (result.ignored) ignored = true;
    else if (result.unignored) ignored = false;
  }
  return ignored;
}
