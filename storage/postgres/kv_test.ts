/**
 * The KvStore's semantics, one test body run on both backends: Deno KV (in memory) and
 * PostgreSQL (a fresh database of the test server). What passes on Deno KV must pass on
 * PostgreSQL: the PostgreSQL store claims Deno KV's semantics.
 */
import assert from "node:assert/strict";
import type { KvStore } from "../kv.ts";
import { createTestDatabase } from "../../tests/postgres.ts";
import { openPostgresStore, type PostgresStore } from "./mod.ts";

type Backend = "kv" | "postgres";

/** Registers `body` once per backend, with a store of that backend opened for it. */
function kvTest(name: string, body: (kv: KvStore, open: () => Promise<KvStore>) => Promise<void>) {
  for (const backend of ["kv", "postgres"] as Backend[]) {
    Deno.test(`KvStore on ${backend}: ${name}`, async () => {
      const stores: { close(): void | Promise<void> }[] = [];
      // A second handle on the same data: on PostgreSQL another pool, as another process has.
      let open: () => Promise<KvStore>;
      let kv: KvStore;
      if (backend === "kv") {
        const path = await Deno.makeTempFile({ suffix: ".kv" });
        const store = await Deno.openKv(path);
        stores.push({ close: () => Deno.remove(path) }, store);
        // SQLite takes one writer at a time: another handle in this process would only wait.
        open = () => Promise.resolve(store);
        kv = store;
      } else {
        const db = await createTestDatabase();
        open = async () => {
          const store: PostgresStore = await openPostgresStore(db.url, { password: db.password });
          stores.push(store);
          return store.kv;
        };
        kv = await open();
      }
      try {
        await body(kv, open);
      } finally {
        for (const store of stores.reverse()) await store.close();
      }
    });
  }
}

const STAMP = /^[0-9a-f]{20}$/;

kvTest("set, get and delete, with versionstamps that grow", async (kv) => {
  const missing = await kv.get(["a"]);
  assert.deepEqual(missing, { key: ["a"], value: null, versionstamp: null });
  const first = await kv.set(["a"], { n: 1 });
  assert.equal(first.ok, true);
  assert.match(first.versionstamp, STAMP);
  const second = await kv.set(["a"], { n: 2 });
  assert.ok(second.versionstamp > first.versionstamp);
  assert.deepEqual(await kv.get(["a"]), {
    key: ["a"],
    value: { n: 2 },
    versionstamp: second.versionstamp,
  });
  await kv.delete(["a"]);
  await kv.delete(["never there"]);
  assert.equal((await kv.get(["a"])).versionstamp, null);
});

kvTest("values keep their structured-clone types", async (kv) => {
  const value = {
    text: "héllo \u0000 \u{1f600}",
    big: -(2n ** 80n),
    date: new Date(1_700_000_000_123),
    map: new Map<unknown, unknown>([[1, "one"], ["two", [2]]]),
    set: new Set([1, "x"]),
    bytes: new Uint8Array([0, 1, 255]),
    nested: { list: [1, null, undefined, { deep: true }], nan: NaN, negZero: -0 },
    regexp: /a+b/gi,
  };
  await kv.set(["v"], value);
  assert.deepEqual((await kv.get(["v"])).value, value);
  for (const plain of [null, 0, "", false, 12.5, [1, 2], new Uint8Array(0)]) {
    await kv.set(["plain"], plain);
    const entry = await kv.get(["plain"]);
    assert.deepEqual(entry.value, plain);
    assert.match(entry.versionstamp!, STAMP);
  }
});

kvTest("a value over 64 KiB and a key over 2 KiB are refused, nothing written", async (kv) => {
  await assert.rejects(kv.set(["huge"], new Uint8Array(70_000)), TypeError);
  await assert.rejects(kv.set(["huge"], "x".repeat(200_000)), TypeError);
  assert.equal((await kv.get(["huge"])).versionstamp, null);
  await assert.rejects(kv.set(["k".repeat(3_000)], 1), TypeError);
  const near = "y".repeat(60_000);
  await kv.set(["near"], near);
  assert.equal((await kv.get(["near"])).value, near);
  // A large atomic of values that fit one by one is still one commit.
  const op = kv.atomic();
  for (let i = 0; i < 12; i++) op.set(["many", i], "z".repeat(60_000));
  assert.equal((await op.commit()).ok, true);
  let count = 0;
  for await (const _ of kv.list({ prefix: ["many"] })) count++;
  assert.equal(count, 12);
});

kvTest("getMany answers in the order asked, absent keys included", async (kv) => {
  await kv.set(["m", 2], "two");
  await kv.set(["m", 1], "one");
  const entries = await kv.getMany([["m", 1], ["m", 3], ["m", 2], ["m", 1]]);
  assert.deepEqual(entries.map((e) => e.value), ["one", null, "two", "one"]);
  assert.deepEqual(entries.map((e) => e.key), [["m", 1], ["m", 3], ["m", 2], ["m", 1]]);
});

kvTest("list: prefix, start, end, reverse, limit and small batches", async (kv) => {
  for (let i = 0; i < 25; i++) await kv.set(["l", i], i);
  await kv.set(["l"], "the prefix itself");
  await kv.set(["lm", 1], "beside");
  await kv.set(["l", "s"], "a string sorts before numbers");
  const keys = async (selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
    const out: unknown[] = [];
    for await (const entry of kv.list(selector, options)) out.push(entry.key.slice(1)[0]);
    return out;
  };
  const numbers = Array.from({ length: 25 }, (_, i) => i);
  assert.deepEqual(await keys({ prefix: ["l"] }), ["s", ...numbers]);
  assert.deepEqual(await keys({ prefix: ["l"] }, { batchSize: 4 }), ["s", ...numbers]);
  assert.deepEqual(
    await keys({ prefix: ["l"] }, { reverse: true, batchSize: 3 }),
    [...[...numbers].reverse(), "s"],
  );
  assert.deepEqual(await keys({ prefix: ["l"] }, { limit: 5, batchSize: 2 }), ["s", 0, 1, 2, 3]);
  assert.deepEqual(await keys({ prefix: ["l"], start: ["l", 20] }), [20, 21, 22, 23, 24]);
  assert.deepEqual(await keys({ prefix: ["l"], end: ["l", 2] }), ["s", 0, 1]);
  assert.deepEqual(await keys({ start: ["l", 3], end: ["l", 6] }, { reverse: true }), [5, 4, 3]);
  await assert.rejects(keys({ start: ["l", 6], end: ["l", 3] }), TypeError);
  assert.deepEqual(await keys({ start: ["l", 3], end: ["l", 3] }), []);
  assert.deepEqual(await keys({ prefix: ["nothing"] }), []);
  await assert.rejects(keys({ prefix: ["l"], start: ["m"] }), TypeError);
});

kvTest(
  "atomic: checks hold the writes back, and everything lands at one versionstamp",
  async (kv) => {
    const a = await kv.set(["acc", "a"], 10);
    const ok = await kv.atomic()
      .check({ key: ["acc", "a"], versionstamp: a.versionstamp })
      .check({ key: ["acc", "b"], versionstamp: null })
      .set(["acc", "a"], 5)
      .set(["acc", "b"], 5)
      .delete(["acc", "none"])
      .commit();
    assert.equal(ok.ok, true);
    const [ea, eb] = await kv.getMany([["acc", "a"], ["acc", "b"]]);
    assert.equal(ea.versionstamp, ok.ok && ok.versionstamp);
    assert.equal(eb.versionstamp, ea.versionstamp);
    // Stale now: nothing of this one is written.
    const stale = await kv.atomic()
      .check({ key: ["acc", "a"], versionstamp: a.versionstamp })
      .set(["acc", "a"], 0)
      .set(["acc", "c"], 0)
      .commit();
    assert.deepEqual(stale, { ok: false });
    assert.equal((await kv.get(["acc", "a"])).value, 5);
    assert.equal((await kv.get(["acc", "c"])).versionstamp, null);
    // The later of two mutations of one key wins.
    await kv.atomic().set(["acc", "d"], 1).delete(["acc", "d"]).set(["acc", "d"], 2).commit();
    assert.equal((await kv.get(["acc", "d"])).value, 2);
  },
);

kvTest(
  "atomic sum: counts from zero, wraps at 2^64, refuses a value that is no KvU64",
  async (kv) => {
    await kv.atomic().sum(["n"], 5n).commit();
    await kv.atomic().sum(["n"], 7n).sum(["n"], 1n).commit();
    assert.deepEqual((await kv.get(["n"])).value, new Deno.KvU64(13n));
    await kv.set(["w"], new Deno.KvU64(2n ** 64n - 2n));
    await kv.atomic().sum(["w"], 5n).commit();
    assert.deepEqual((await kv.get(["w"])).value, new Deno.KvU64(3n));
    await kv.set(["s"], "text");
    await assert.rejects(kv.atomic().sum(["s"], 1n).set(["t"], 1).commit(), TypeError);
    assert.equal((await kv.get(["t"])).versionstamp, null);
  },
);

kvTest("concurrent commits checking one versionstamp: exactly one wins", async (kv, open) => {
  const other = await open(); // another pool, as another process would have
  for (let round = 0; round < 5; round++) {
    const start = await kv.set(["race"], { round, winner: null });
    const contenders = Array.from({ length: 16 }, (_, i) =>
      (i % 2 === 0 ? kv : other).atomic()
        .check({ key: ["race"], versionstamp: start.versionstamp })
        .set(["race"], { round, winner: i })
        .sum(["race_wins"], 1n)
        .commit());
    const results = await Promise.all(contenders);
    const winners = results.flatMap((r, i) => r.ok ? [i] : []);
    assert.equal(winners.length, 1, `round ${round}: ${winners.length} commits won`);
    assert.deepEqual((await kv.get(["race"])).value, { round, winner: winners[0] });
  }
  assert.deepEqual((await kv.get(["race_wins"])).value, new Deno.KvU64(5n));
});

kvTest("concurrent creates of one absent key: exactly one wins", async (kv, open) => {
  const other = await open();
  const contenders = Array.from({ length: 20 }, (_, i) =>
    (i % 2 === 0 ? kv : other).atomic()
      .check({ key: ["claim"], versionstamp: null })
      .set(["claim"], i)
      .commit());
  const results = await Promise.all(contenders);
  const winners = results.flatMap((r, i) => r.ok ? [i] : []);
  assert.equal(winners.length, 1);
  assert.equal((await kv.get(["claim"])).value, winners[0]);
});

kvTest("concurrent sums lose no increment", async (kv, open) => {
  const other = await open();
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => (i % 2 ? kv : other).atomic().sum(["count"], 1n).commit()),
  );
  assert.deepEqual((await kv.get(["count"])).value, new Deno.KvU64(50n));
});
