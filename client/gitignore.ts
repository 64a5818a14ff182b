/**
 * `.gitignore` patterns: which paths of a working directory stay out of its package.
 * Supports what git documents: comments, `!` negation, a trailing `/` for directories,
 * anchoring by a leading or inner `/`, `*`, `?`, `[…]` classes, `**` and `\` escapes.
 * @module
 */

/** One compiled pattern. */
export interface IgnoreRule {
  /** Directory (relative, POSIX, "" for the root) whose `.gitignore` holds the pattern. */
  base: string;
  /** Matches a path relative to `base`. */
  regex: RegExp;
  /** A `!pattern`: it takes the path back in. */
  negate: boolean;
  /** A `pattern/`: it matches directories only. */
  dirOnly: boolean;
}

/** Compiles the lines of a `.gitignore` found in directory `base` ("" for the root). */
export function parseGitignore(text: string, base = ""): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.replace(/(?<!\\) +$/, "");
    if (line === "" || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith("/") && !line.endsWith("\\/");
    if (dirOnly) line = line.replace(/\/+$/, "");
    if (line === "") continue;
    rules.push({ base, regex: compilePattern(line), negate, dirOnly });
  }
  return rules;
}

/**
 * Whether `path` (relative to the root, POSIX) is ignored by `rules`, in order: the last
 * rule that matches decides, as in git.
 */
export function isIgnored(rules: readonly IgnoreRule[], path: string, isDir: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.dirOnly && !isDir) continue;
    if (rule.base !== "" && !path.startsWith(`${rule.base}/`)) continue;
    const relative = rule.base === "" ? path : path.slice(rule.base.length + 1);
    if (rule.regex.test(relative)) ignored = !rule.negate;
  }
  return ignored;
}

/** A pattern (without `!` and trailing `/`) as a regular expression over relative paths. */
function compilePattern(pattern: string): RegExp {
  // A slash at the start or in the middle anchors the pattern to its .gitignore's directory.
  const anchored = pattern.includes("/");
  if (pattern.startsWith("/")) pattern = pattern.slice(1);
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === "*" && pattern[i + 1] === "*" && isSegmentEdge(pattern, i, i + 2)) {
      if (i + 2 === pattern.length) {
        source += ".*"; // "a/**": everything inside a
        i += 1;
      } else {
        source += "(?:.*/)?"; // "**/": any number of directories, none included
        i += 2;
      }
    } else if (char === "*") {
      source += "[^/]*";
    } else if (char === "?") {
      source += "[^/]";
    } else if (char === "[" && pattern.indexOf("]", i + 2) !== -1) {
      const end = pattern.indexOf("]", i + 2);
      const body = pattern.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
      source += `[${body}]`;
      i = end;
    } else if (char === "\\" && i + 1 < pattern.length) {
      source += escapeRegex(pattern[i + 1]);
      i += 1;
    } else {
      source += escapeRegex(char);
    }
  }
  return new RegExp(`^${anchored ? "" : "(?:.*/)?"}${source}$`);
}

/** Whether `**` spanning [start, end) is a whole path segment. */
function isSegmentEdge(pattern: string, start: number, end: number): boolean {
  return (start === 0 || pattern[start - 1] === "/") &&
    (end === pattern.length || pattern[end] === "/");
}

function escapeRegex(char: string): string {
  return char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
