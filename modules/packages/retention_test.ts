import assert from "node:assert/strict";
import type { StoredPackage } from "../../storage/packages.ts";
import { collectablePackages } from "./retention.ts";

const DAY = 86_400_000;

function stored(name: string, lastUsedDay: number): StoredPackage {
  return { ref: { protocol: "pkg", name }, size: 1, lastUsed: lastUsedDay * DAY };
}

Deno.test("collectablePackages() lets go of packages no job names, unused past the period", () => {
  const packages = [stored("old.zip", 1), stored("named.zip", 1), stored("recent.zip", 9)];
  const named = new Set(["pkg://named.zip"]);
  assert.deepEqual(collectablePackages(packages, named, 10 * DAY, 7), [
    { protocol: "pkg", name: "old.zip" },
  ]);
  // The clock moves on: the recent one goes too, the named one never does.
  assert.deepEqual(
    collectablePackages(packages, named, 17 * DAY, 7).map((ref) => ref.name),
    ["old.zip", "recent.zip"],
  );
});

Deno.test("collectablePackages() tells a gcs:// package from a pkg:// one of the same name", () => {
  const packages = [{ ...stored("a.zip", 0), ref: { protocol: "gcs" as const, name: "a.zip" } }];
  assert.equal(collectablePackages(packages, new Set(["pkg://a.zip"]), 30 * DAY, 7).length, 1);
  assert.equal(collectablePackages(packages, new Set(["gcs://a.zip"]), 30 * DAY, 7).length, 0);
});
