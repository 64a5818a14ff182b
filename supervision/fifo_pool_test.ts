import assert from "node:assert/strict";
import { FifoPool } from "./fifo_pool.ts";

async function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-fifo-pool-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

Deno.test("FifoPool.take() makes a fifo when it has no spare, and reuses a given one", async () => {
  await withDir((dir) => {
    const pool = new FifoPool(dir);
    assert.equal(pool.take(`${dir}/a.fifo`, 0o600), true);
    const made = Deno.statSync(`${dir}/a.fifo`);
    assert.equal(made.isFifo, true);
    assert.equal(made.mode! & 0o777, 0o600 & ~Deno.umask(), "made with the mode, less the umask");

    pool.give(`${dir}/a.fifo`);
    assert.equal(pool.size, 1);
    assert.deepEqual(names(dir), [".spare-0"]);
    assert.equal(pool.take(`${dir}/b.fifo`, 0o600), true);
    assert.equal(pool.size, 0);
    assert.deepEqual(names(dir), ["b.fifo"]);
    assert.equal(Deno.statSync(`${dir}/b.fifo`).ino, made.ino, "the same fifo, renamed");
  });
});

Deno.test("FifoPool keeps at most its size, and makes a fifo when a spare is gone", async () => {
  await withDir((dir) => {
    const pool = new FifoPool(dir, { max: 1 });
    assert.equal(pool.take(`${dir}/a.fifo`, 0o600), true);
    assert.equal(pool.take(`${dir}/b.fifo`, 0o600), true);
    pool.give(`${dir}/a.fifo`);
    pool.give(`${dir}/b.fifo`);
    assert.equal(pool.size, 1);
    assert.deepEqual(names(dir), [".spare-0"], "the second one is removed");

    Deno.removeSync(`${dir}/.spare-0`);
    assert.equal(pool.take(`${dir}/c.fifo`, 0o600), true);
    assert.equal(Deno.statSync(`${dir}/c.fifo`).isFifo, true);
    pool.give(`${dir}/missing.fifo`);
    assert.equal(pool.size, 0, "a fifo that is not there is not kept");
  });
});

Deno.test("FifoPool.clear() removes the spares an earlier head left, and nothing else", async () => {
  await withDir((dir) => {
    const earlier = new FifoPool(dir);
    earlier.take(`${dir}/a.fifo`, 0o600);
    earlier.take(`${dir}/live.fifo`, 0o600);
    earlier.give(`${dir}/a.fifo`);

    const pool = new FifoPool(dir);
    pool.clear();
    assert.deepEqual(names(dir), ["live.fifo"]);
    assert.equal(pool.take(`${dir}/b.fifo`, 0o600), true, "it makes its own");
  });
});

Deno.test("FifoPool.take() answers false where the directory is gone", async () => {
  let gone = "";
  await withDir((dir) => {
    gone = dir;
  });
  const pool = new FifoPool(gone);
  assert.equal(pool.take(`${gone}/a.fifo`, 0o600), false);
  pool.clear(); // no directory: nothing to do, no throw
});
