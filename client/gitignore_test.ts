import assert from "node:assert/strict";
import { isIgnored, parseGitignore } from "./gitignore.ts";

/** Asserts, for each `[path, isDir, ignored]`, what `text` as the root .gitignore decides. */
function check(text: string, cases: [string, boolean, boolean][]): void {
  const rules = parseGitignore(text);
  for (const [path, isDir, ignored] of cases) {
    assert.equal(isIgnored(rules, path, isDir), ignored, `${JSON.stringify(text)} on ${path}`);
  }
}

Deno.test("parseGitignore() matches a name without a slash at any depth", () => {
  check("*.log\n# a comment\n\nbuild/\n", [
    ["a.log", false, true],
    ["src/deep/b.log", false, true],
    ["a.log.txt", false, false],
    ["build", true, true],
    ["src/build", true, true],
    ["build", false, false], // a file named build: the pattern wants a directory
    ["# a comment", false, false],
  ]);
});

Deno.test("parseGitignore() anchors patterns with a leading or inner slash", () => {
  check("/root.txt\ndoc/*.md\n", [
    ["root.txt", false, true],
    ["sub/root.txt", false, false],
    ["doc/a.md", false, true],
    ["doc/sub/a.md", false, false],
    ["x/doc/a.md", false, false],
  ]);
});

Deno.test("parseGitignore() handles **, ?, classes, escapes and negation", () => {
  check(
    "**/cache\nlogs/**\na/**/z\nfile?.txt\n[abc].bin\n[!x]y\n\\#hash\n\\!bang\n*.tmp\n!keep.tmp\n",
    [
      ["cache", true, true],
      ["a/b/cache", false, true],
      ["logs", true, false],
      ["logs/x/y", false, true],
      ["a/z", false, true],
      ["a/b/c/z", false, true],
      ["file1.txt", false, true],
      ["file12.txt", false, false],
      ["b.bin", false, true],
      ["d.bin", false, false],
      ["ay", false, true],
      ["xy", false, false],
      ["#hash", false, true],
      ["!bang", false, true],
      ["x.tmp", false, true],
      ["keep.tmp", false, false],
    ],
  );
});

Deno.test("isIgnored() scopes a nested .gitignore to its directory; the last match decides", () => {
  const rules = [
    ...parseGitignore("*.csv\n"),
    ...parseGitignore("!keep.csv\n/local.txt\n", "sub"),
    ...parseGitignore("keep.csv\n", ""), // later rules win, even from the root
  ];
  assert.equal(isIgnored(rules, "a.csv", false), true);
  assert.equal(isIgnored(rules, "sub/local.txt", false), true);
  assert.equal(isIgnored(rules, "local.txt", false), false);
  assert.equal(isIgnored(rules, "sub/x/local.txt", false), false);
  assert.equal(isIgnored(rules, "sub/keep.csv", false), true);
  assert.equal(
    isIgnored(
      parseGitignore("*.csv\n").concat(parseGitignore("!keep.csv", "sub")),
      "sub/keep.csv",
      false,
    ),
    false,
  );
});
