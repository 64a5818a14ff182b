import assert from "node:assert/strict";
import { compareBytes, decodeKey, encodeKey } from "./key_codec.ts";

/** A random key part of any type Deno KV takes, edge values often. */
function randomPart(random: () => number): Deno.KvKeyPart {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
  switch (Math.floor(random() * 5)) {
    case 0:
      return Uint8Array.from({ length: Math.floor(random() * 4) }, () => pick([0, 1, 0xff, 0x7f]));
    case 1:
      return Array.from(
        { length: Math.floor(random() * 4) },
        () => pick(["", "a", "\0", "b", "\u00e9", "\uffff", "\u{10000}", "\u{1f600}", "A"]),
      ).join("");
    case 2:
      return pick([0n, 1n, -1n, 255n, 256n, -256n, -255n, 2n ** 64n, -(2n ** 64n), 2n ** 63n - 1n]);
    case 3:
      return pick([0, -0, 1, -1, 0.5, -0.5, 1e300, -1e300, Infinity, -Infinity, NaN, 2 ** 53]);
    default:
      return random() < 0.5;
  }
}

/** A small deterministic generator, so that a failure can be replayed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

Deno.test("key encoding: random keys sort as Deno KV sorts them, and decode to themselves", async () => {
  const random = seeded(42);
  const keys: Deno.KvKey[] = [];
  for (let i = 0; i < 600; i++) {
    keys.push(Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomPart(random)));
  }
  await using kv = await Deno.openKv(":memory:");
  for (const key of keys) await kv.set(key, null);
  const denoOrder: Deno.KvKey[] = [];
  for await (const entry of kv.list({ prefix: [] })) denoOrder.push(entry.key);

  const encoded = new Map<string, Deno.KvKey>();
  for (const key of keys) {
    const bytes = encodeKey(key);
    encoded.set(Array.from(bytes).join(","), key);
    assert.deepEqual(encodeKey(decodeKey(bytes)), bytes);
  }
  const ours = [...encoded.keys()]
    .map((text) => Uint8Array.from(text.split(",").filter(Boolean).map(Number)))
    .sort(compareBytes)
    .map((bytes) => decodeKey(bytes));
  // Deno KV keeps one entry per distinct key, as the encoding does.
  assert.deepEqual(ours.length, denoOrder.length);
  assert.deepEqual(ours, denoOrder);
});

Deno.test("key encoding: a key sorts before the keys it is a prefix of, and types in Deno KV's order", () => {
  const ordered: Deno.KvKey[] = [
    [new Uint8Array()],
    [new Uint8Array([0])],
    [new Uint8Array([0]), "x"],
    [new Uint8Array([0, 0])],
    [""],
    ["a"],
    ["a", 1],
    ["a\0"],
    ["a\0b"],
    ["\uffff"],
    ["\u{10000}"],
    [-(2n ** 70n)],
    [-1n],
    [0n],
    [1n],
    [2n ** 70n],
    [-Infinity],
    [-1],
    [-0],
    [0],
    [1],
    [Infinity],
    [NaN],
    [false],
    [true],
  ];
  const bytes = ordered.map(encodeKey);
  for (let i = 1; i < bytes.length; i++) {
    assert.ok(
      compareBytes(bytes[i - 1], bytes[i]) < 0,
      `${Deno.inspect(ordered[i - 1])} < ${Deno.inspect(ordered[i])}`,
    );
  }
  assert.ok(Object.is(decodeKey(encodeKey([-0]))[0], -0));
});

Deno.test("key encoding: a part Deno KV does not take is a TypeError", () => {
  assert.throws(() => encodeKey([{} as unknown as string]), TypeError);
  assert.throws(() => decodeKey(new Uint8Array([0x99])), TypeError);
  assert.throws(() => decodeKey(new Uint8Array([0x02, 0x61])), TypeError);
});
