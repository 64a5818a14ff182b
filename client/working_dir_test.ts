import assert from "node:assert/strict";
import { join } from "node:path";
import { TextWriter, Uint8ArrayReader, ZipReader } from "@zip.js/zip.js";
import { WorkingDirError } from "./errors.ts";
import { packWorkingDir } from "./working_dir.ts";

/** Makes a temp dir holding `files` (path → text; a path ending in / is a directory). */
async function makeDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-wd-" });
  for (const [path, text] of Object.entries(files)) {
    const abs = join(dir, path);
    if (path.endsWith("/")) {
      await Deno.mkdir(abs, { recursive: true });
    } else {
      await Deno.mkdir(join(abs, ".."), { recursive: true });
      await Deno.writeTextFile(abs, text);
    }
  }
  return dir;
}

async function listZip(bytes: Uint8Array): Promise<Record<string, string>> {
  const zip = new ZipReader(new Uint8ArrayReader(bytes), { useWebWorkers: false });
  const listed: Record<string, string> = {};
  for (const entry of await zip.getEntries()) {
    if (entry.directory) listed[entry.filename] = "dir";
    else if (entry.symlink) listed[entry.filename] = `-> ${await entry.getData(new TextWriter())}`;
    else listed[entry.filename] = await entry.getData(new TextWriter());
  }
  await zip.close();
  return listed;
}

Deno.test("packWorkingDir() leaves out .git, .gitignore'd paths and excludes", async () => {
  const dir = await makeDir({
    ".git/HEAD": "ref",
    ".gitignore": "*.log\n/build/\n",
    "main.sh": "echo hi",
    "debug.log": "noise",
    "build/out.bin": "bin",
    "data/.gitignore": "!keep.log\n*.csv\n",
    "data/keep.log": "kept",
    "data/big.csv": "1,2",
    "data/empty/": "",
    "secret.env": "TOKEN=x",
  });
  try {
    await Deno.symlink("main.sh", join(dir, "alias.sh"));
    await Deno.symlink("nowhere", join(dir, "dangling"));
    const pkg = await packWorkingDir(dir, { excludes: ["*.env"] });
    assert.match(pkg.name, /^[0-9a-f]{64}\.zip$/);
    assert.deepEqual(pkg.skipped, ["dangling"]);
    assert.deepEqual(await listZip(await pkg.zip()), {
      ".gitignore": "*.log\n/build/\n",
      "alias.sh": "-> main.sh",
      "data/": "dir",
      "data/.gitignore": "!keep.log\n*.csv\n",
      "data/empty/": "dir",
      "data/keep.log": "kept",
      "main.sh": "echo hi",
    });
    assert.equal(pkg.entries, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("packWorkingDir() names a package by its content, not by where or when it was read", async () => {
  const a = await makeDir({ "x.txt": "same", "sub/y.txt": "also" });
  const b = await makeDir({ "sub/y.txt": "also", "x.txt": "same" });
  try {
    const first = await packWorkingDir(a);
    assert.equal((await packWorkingDir(b)).name, first.name);
    await Deno.chmod(join(b, "x.txt"), 0o755);
    const executable = await packWorkingDir(b);
    assert.notEqual(executable.name, first.name);
    await Deno.writeTextFile(join(a, "x.txt"), "changed");
    assert.notEqual((await packWorkingDir(a)).name, first.name);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("packWorkingDir() copies a linked file from outside and refuses a linked directory", async () => {
  const outside = await makeDir({ "shared.txt": "shared", "lib/": "" });
  const dir = await makeDir({ "a.txt": "a" });
  try {
    await Deno.symlink(join(outside, "shared.txt"), join(dir, "shared.txt"));
    assert.deepEqual(await listZip(await (await packWorkingDir(dir)).zip()), {
      "a.txt": "a",
      "shared.txt": "shared",
    });
    await Deno.symlink(join(outside, "lib"), join(dir, "lib"));
    await assert.rejects(packWorkingDir(dir), (err: Error) => {
      assert.ok(err instanceof WorkingDirError);
      assert.match(err.message, /lib in working dir .* is a symlink to .*, outside it/);
      return true;
    });
  } finally {
    await Deno.remove(outside, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("packWorkingDir() enforces the size limit and wants a directory", async () => {
  const dir = await makeDir({ "a.bin": "x".repeat(600), "b.bin": "y".repeat(600) });
  try {
    await assert.rejects(packWorkingDir(dir, { maxBytes: 1000 }), /holds more than 1000 bytes/);
    assert.equal((await packWorkingDir(dir, { maxBytes: 1000, excludes: ["b.bin"] })).bytes, 600);
    await assert.rejects(packWorkingDir(join(dir, "a.bin")), /is not a directory/);
    await assert.rejects(packWorkingDir(join(dir, "missing")), WorkingDirError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
