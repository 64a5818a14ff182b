import assert from "node:assert/strict";
import { FileLogStore, type LogReadRange, MAX_LOG_READ_BYTES, readLogRange } from "./logs.ts";

async function withStore(fn: (store: FileLogStore) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-logs-" });
  try {
    await fn(new FileLogStore(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("FileLogStore.read() serves byte ranges, negative offsets from the end", async () => {
  await withStore(async (store) => {
    await Deno.writeTextFile(store.pathOf("j"), "0123456789");
    assert.deepEqual(await store.read("j", 2, 3).then((c) => [text(c.bytes), c.offset, c.size]), [
      "234",
      2,
      10,
    ]);
    assert.equal(text((await store.read("j", -4, 100)).bytes), "6789");
    assert.equal((await store.read("j", -40, 2)).offset, 0);
    assert.equal((await store.read("j", 50, 2)).bytes.length, 0);
    assert.equal((await store.read("missing", 0, 10)).size, 0);
  });
});

Deno.test("FileLogStore.tail() keeps the last characters, whole", async () => {
  await withStore(async (store) => {
    await Deno.writeTextFile(store.pathOf("j"), "aé€😀z");
    assert.equal(await store.tail("j", 3), "€😀z");
    assert.equal(await store.tail("missing", 3), "");
  });
});

Deno.test("FileLogStore.trim() drops the middle, keeps offsets, and reads it as a marker", async () => {
  await withStore(async (store) => {
    const head = "h".repeat(8192);
    const middle = "m".repeat(64 * 1024);
    const tail = "t".repeat(8192);
    await Deno.writeTextFile(store.pathOf("j"), head + middle + tail);
    const gap = await store.trim("j", 8192, 8192);
    assert.deepEqual(gap, { start: 8192, end: 8192 + 64 * 1024 });
    const whole = text((await store.read("j", 0, 1 << 20)).bytes);
    assert.ok(whole.startsWith(head + "\n[jobhead: 65536 bytes"));
    assert.ok(whole.endsWith("size cap]\n" + tail));
    const after = await store.read("j", gap!.end, 10);
    assert.equal(text(after.bytes), "tttttttttt");
    assert.equal(after.size, 8192 * 2 + 64 * 1024);
    assert.deepEqual(new FileLogStore(store.dir).gapOf("j"), gap); // survives a restart
    await store.remove("j");
    assert.equal(store.gapOf("j"), undefined);
  });
});

Deno.test("FileLogStore.create() starts a private, empty log, even over an earlier one's", async () => {
  await withStore(async (store) => {
    await Deno.writeTextFile(store.pathOf("k1"), "x".repeat(3 * 4096) + "old output\n");
    assert.ok(await store.trim("k1", 0, 0), "the earlier log had a gap");
    await store.create("k1");
    assert.equal(await store.size("k1"), 0);
    assert.equal(store.gapOf("k1"), undefined);
    assert.equal((await Deno.stat(store.pathOf("k1"))).mode! & 0o077, 0);
    await Deno.writeTextFile(store.pathOf("k1"), "new\n", { append: true });
    assert.equal(text((await store.read("k1", 0, 100)).bytes), "new\n");
  });
});

Deno.test("readLogRange() answers whole characters, at most 16 MiB, from the start or the end", async () => {
  await withStore(async (store) => {
    await Deno.writeTextFile(store.pathOf("j"), "héllo wörld"); // é and ö are 2 bytes each
    const range = async (r: LogReadRange) => {
      const chunk = await readLogRange(store, "j", r);
      return [text(chunk.bytes), chunk.offset, chunk.size];
    };
    assert.deepEqual(await range({}), ["héllo wörld", 0, 13]);
    assert.deepEqual(await range({ offset: 2 }), ["llo wörld", 3, 13], "starts after a cut é");
    assert.deepEqual(await range({ limit: 2 }), ["h", 0, 13], "ends before a cut é");
    assert.deepEqual(await range({ limit: 3, fromEnd: true }), ["rld", 10, 13]);
    assert.deepEqual(
      await range({ limit: 4, fromEnd: true }),
      ["rld", 10, 13],
      "starts after a cut ö",
    );
    assert.deepEqual(await range({ offset: -6, limit: 3 }), ["wö", 7, 13]);
    assert.deepEqual(await range({ offset: -6, limit: 2 }), ["w", 7, 13], "ends before a cut ö");
  });
});

Deno.test("readLogRange() reads at most MAX_LOG_READ_BYTES whatever the limit asked", async () => {
  await withStore(async (store) => {
    const size = MAX_LOG_READ_BYTES + 10;
    using file = await Deno.open(store.pathOf("big"), { write: true, create: true });
    await file.truncate(size);
    const chunk = await readLogRange(store, "big", { limit: size });
    assert.deepEqual([chunk.bytes.length, chunk.offset, chunk.size], [MAX_LOG_READ_BYTES, 0, size]);
    const last = await readLogRange(store, "big", { fromEnd: true });
    assert.equal(last.offset, 10);
  });
});
