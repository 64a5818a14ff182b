import assert from "node:assert/strict";
import { InvalidPackageError } from "./errors.ts";
import {
  checkExpansion,
  checkLinkTarget,
  checkResolvedLink,
  type EntryInfo,
  entryPath,
  type ExpansionLimits,
  planEntries,
  RATIO_FREE_BYTES,
} from "./zip_safety.ts";

const LIMITS: ExpansionLimits = { maxBytes: 10_000_000, maxRatio: 100, maxEntries: 10 };
const MIB = 1024 * 1024;

function file(filename: string, size = 10, compressed = size): EntryInfo {
  return {
    filename,
    directory: false,
    encrypted: false,
    compressionMethod: 8,
    uncompressedSize: size,
    compressedSize: compressed,
  };
}

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: Error) => {
    assert.ok(err instanceof InvalidPackageError, String(err));
    assert.match(err.message, message);
    return true;
  });
}

Deno.test("entryPath() normalizes names and refuses those that could leave the target", () => {
  assert.equal(entryPath("a/./b//c.txt"), "a/b/c.txt");
  assert.equal(entryPath("./"), "");
  throwsInvalid(() => entryPath("../x"), /entry "\.\.\/x" escapes the target directory/);
  throwsInvalid(() => entryPath("a/../../x"), /escapes/);
  throwsInvalid(() => entryPath("/etc/passwd"), /is an absolute path/);
  throwsInvalid(() => entryPath("C:evil"), /is an absolute path/);
  throwsInvalid(() => entryPath("a\\..\\x"), /backslash/);
  throwsInvalid(() => entryPath("a\0b"), /NUL/);
});

Deno.test("checkLinkTarget() and checkResolvedLink() keep symlinks inside the target", () => {
  checkLinkTarget("a/link", "../b.txt");
  checkLinkTarget("link", "a/../b");
  throwsInvalid(() => checkLinkTarget("link", "/etc/passwd"), /an absolute path/);
  throwsInvalid(() => checkLinkTarget("a/link", "../../x"), /outside the target directory/);
  throwsInvalid(() => checkLinkTarget("link", ""), /empty or invalid target/);
  checkResolvedLink("l", "x", "/root/pkg/x", "/root/pkg");
  checkResolvedLink("l", ".", "/root/pkg", "/root/pkg");
  throwsInvalid(() => checkResolvedLink("l", "s/..", "/root", "/root/pkg"), /outside/);
  throwsInvalid(() => checkResolvedLink("l", "x", "/root/pkg2/x", "/root/pkg"), /outside/);
});

Deno.test("planEntries() orders dirs, files, links and refuses bad layouts", () => {
  const link = { ...file("l", 5), symlink: true };
  const dir = { ...file("d/", 0), directory: true };
  const plan = planEntries([link, file("d/f"), dir, { ...dir, filename: "./" }], 1000, LIMITS);
  assert.deepEqual(plan.map((p) => [p.path, p.kind]), [["d", "dir"], ["d/f", "file"], [
    "l",
    "symlink",
  ]]);
  throwsInvalid(() => planEntries([file("x"), file("./x")], 1000, LIMITS), /"x" appears twice/);
  throwsInvalid(
    () => planEntries([{ ...file("d"), symlink: true }, file("d/f")], 1000, LIMITS),
    /entry "d\/f" lies under "d", a symlink/,
  );
  throwsInvalid(() => planEntries([{ ...file("e"), encrypted: true }], 1000, LIMITS), /encrypted/);
  throwsInvalid(
    () => planEntries([{ ...file("b"), compressionMethod: 12 }], 1000, LIMITS),
    /entry "b" uses compression method 12: only stored \(0\) and deflate \(8\) are supported/,
  );
  throwsInvalid(
    () => planEntries([{ ...file("l", 10, 5000), symlink: true }], 10_000, LIMITS),
    /symlink "l" is over 4096 bytes/,
  );
  const many = Array.from({ length: 11 }, (_, i) => file(`f${i}`));
  throwsInvalid(() => planEntries(many, 1000, LIMITS), /holds 11 entries: the limit is 10/);
});

Deno.test("planEntries() refuses declared sizes past the byte or the ratio limit", () => {
  throwsInvalid(
    () => planEntries([file("a", 6_000_000), file("b", 6_000_000)], 1_000_000, LIMITS),
    /expands to more than 10000000 bytes \(the limit set by --max-package-extract-bytes\)/,
  );
  throwsInvalid(
    () => planEntries([file("zeros", 3 * MIB, 3000)], 20_000, LIMITS),
    /compression ratio is over 100 \(the limit set by --max-package-ratio\): its 20000 bytes/,
  );
  // A ratio limit of 0 is no limit.
  planEntries([file("zeros", 3 * MIB, 3000)], 20_000, { ...LIMITS, maxRatio: 0 });
});

Deno.test("checkExpansion() lets small packages through whatever their ratio", () => {
  checkExpansion(RATIO_FREE_BYTES, 100, LIMITS);
  throwsInvalid(() => checkExpansion(RATIO_FREE_BYTES + 1, 100, LIMITS), /ratio is over 100/);
  checkExpansion(5 * MIB, 100 * 1024, LIMITS);
  throwsInvalid(() => checkExpansion(10_000_001, 1e9, LIMITS), /more than 10000000 bytes/);
});
