import assert from "node:assert/strict";
import { makeFifo } from "../kit/libc.ts";
import { SpareFiles } from "./spare_files.ts";

async function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-spare-files-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

function fifoPool(dir: string, max?: number): SpareFiles {
  return new SpareFiles(dir, { prefix: ".spare-fifo-", max, make: (p) => makeFifo(p, 0o600) });
}

Deno.test("SpareFiles.take() makes a file when it has no spare, and reuses a given one", async () => {
  await withDir((dir) => {
    const pool = fifoPool(dir);
    assert.equal(pool.take(`${dir}/a.fifo`), true);
    const made = Deno.statSync(`${dir}/a.fifo`);
    assert.equal(made.isFifo, true);

    pool.give(`${dir}/a.fifo`);
    assert.equal(pool.size, 1);
    assert.deepEqual(names(dir), [".spare-fifo-0"]);
    assert.equal(pool.take(`${dir}/b.fifo`), true);
    assert.equal(pool.size, 0);
    assert.deepEqual(names(dir), ["b.fifo"]);
    assert.equal(Deno.statSync(`${dir}/b.fifo`).ino, made.ino, "the same fifo, renamed");
  });
});

Deno.test("SpareFiles keeps at most its size, and makes a file when a spare is gone", async () => {
  await withDir((dir) => {
    const pool = fifoPool(dir, 1);
    assert.equal(pool.take(`${dir}/a.fifo`), true);
    assert.equal(pool.take(`${dir}/b.fifo`), true);
    pool.give(`${dir}/a.fifo`);
    pool.give(`${dir}/b.fifo`);
    assert.equal(pool.size, 1);
    assert.deepEqual(names(dir), [".spare-fifo-0"], "the second one is removed");

    Deno.removeSync(`${dir}/.spare-fifo-0`);
    assert.equal(pool.take(`${dir}/c.fifo`), true);
    assert.equal(Deno.statSync(`${dir}/c.fifo`).isFifo, true);
    pool.give(`${dir}/missing.fifo`);
    assert.equal(pool.size, 0, "a file that is not there is not kept");
  });
});

Deno.test("SpareFiles.clear() removes the spares of its kind an earlier head left, and nothing else", async () => {
  await withDir((dir) => {
    const earlier = fifoPool(dir);
    earlier.take(`${dir}/a.fifo`);
    earlier.take(`${dir}/live.fifo`);
    earlier.give(`${dir}/a.fifo`);
    Deno.writeTextFileSync(`${dir}/.spare-other-0`, "");

    const pool = fifoPool(dir);
    pool.clear();
    assert.deepEqual(names(dir), [".spare-other-0", "live.fifo"]);
    assert.equal(pool.take(`${dir}/b.fifo`), true, "it makes its own");
  });
});

Deno.test("SpareFiles.take() answers false where the directory is gone", async () => {
  let gone = "";
  await withDir((dir) => {
    gone = dir;
  });
  const pool = fifoPool(gone);
  assert.equal(pool.take(`${gone}/a.fifo`), false);
  pool.clear(); // no directory: nothing to do, no throw
});
