/**
 * Deno KV keys as bytes whose byte order (PostgreSQL's `bytea` order) is Deno KV's key
 * order: parts compare by type first (Uint8Array < string < bigint < number < boolean, as
 * Deno KV orders them), then by value; a key sorts before every key it is a prefix of.
 *
 * Each part is a type tag and its value:
 * - Uint8Array and string (UTF-8): the bytes with each 0x00 written 0x00 0xFF, ended by 0x00;
 * - bigint: a header byte (0x80 + byte length for n ≥ 0, 0x7F − byte length for n < 0),
 *   then the magnitude big-endian (ones' complement for n < 0);
 * - number: the IEEE 754 double big-endian, the sign bit flipped for n ≥ 0 and every bit
 *   flipped for n < 0 (NaN written as the canonical quiet NaN);
 * - false, true: the tag alone.
 * Tags are below 0xFF, so `prefix ‖ 0x00` … `prefix ‖ 0xFF` spans every key under a prefix.
 */

const BYTES = 0x01;
const STRING = 0x02;
const BIGINT = 0x14;
const NUMBER = 0x21;
const FALSE = 0x26;
const TRUE = 0x27;

/** Deno KV's limit on the encoded size of a key being written. */
export const MAX_WRITE_KEY_BYTES = 2048;
/** Deno KV's limit on the encoded size of a key being read. */
export const MAX_READ_KEY_BYTES = 2049;
/** Largest bigint magnitude in bytes that the header byte can say. */
const MAX_BIGINT_BYTES = 126;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes of `key`. Throws TypeError for a part of a type Deno KV does not take. */
export function encodeKey(key: Deno.KvKey): Uint8Array {
  const out: number[] = [];
  for (const part of key) encodePart(part, out);
  return Uint8Array.from(out);
}

/** The key `bytes` encode. Throws TypeError if they are not an encoded key. */
export function decodeKey(bytes: Uint8Array): Deno.KvKey {
  const key: Deno.KvKeyPart[] = [];
  let at = 0;
  while (at < bytes.length) {
    const tag = bytes[at++];
    if (tag === BYTES || tag === STRING) {
      const raw: number[] = [];
      for (;;) {
        if (at >= bytes.length) throw new TypeError("Invalid key: unterminated part");
        const byte = bytes[at++];
        if (byte !== 0x00) raw.push(byte);
        else if (bytes[at] === 0xff) {
          raw.push(0x00);
          at++;
        } else break;
      }
      const part = Uint8Array.from(raw);
      key.push(tag === BYTES ? part : decoder.decode(part));
    } else if (tag === BIGINT) {
      const header = bytes[at++];
      const negative = header < 0x80;
      const length = negative ? 0x7f - header : header - 0x80;
      if (at + length > bytes.length) throw new TypeError("Invalid key: short bigint");
      let magnitude = 0n;
      for (let i = 0; i < length; i++) {
        const byte = bytes[at++];
        magnitude = (magnitude << 8n) | BigInt(negative ? byte ^ 0xff : byte);
      }
      key.push(negative ? -magnitude : magnitude);
    } else if (tag === NUMBER) {
      if (at + 8 > bytes.length) throw new TypeError("Invalid key: short number");
      const raw = new Uint8Array(bytes.subarray(at, at + 8)); // a copy: a Buffer slices to a view
      at += 8;
      if (raw[0] & 0x80) raw[0] ^= 0x80;
      else for (let i = 0; i < 8; i++) raw[i] ^= 0xff;
      key.push(new DataView(raw.buffer).getFloat64(0));
    } else if (tag === FALSE || tag === TRUE) {
      key.push(tag === TRUE);
    } else {
      throw new TypeError(`Invalid key: unknown part tag ${tag}`);
    }
  }
  return key;
}

function encodePart(part: Deno.KvKeyPart, out: number[]): void {
  if (part instanceof Uint8Array) {
    out.push(BYTES);
    escaped(part, out);
  } else if (typeof part === "string") {
    out.push(STRING);
    escaped(encoder.encode(part), out);
  } else if (typeof part === "bigint") {
    out.push(BIGINT);
    const negative = part < 0n;
    let magnitude = negative ? -part : part;
    const digits: number[] = [];
    while (magnitude > 0n) {
      digits.unshift(Number(magnitude & 0xffn));
      magnitude >>= 8n;
    }
    if (digits.length > MAX_BIGINT_BYTES) throw new TypeError("Key part too large: bigint");
    out.push(negative ? 0x7f - digits.length : 0x80 + digits.length);
    for (const digit of digits) out.push(negative ? digit ^ 0xff : digit);
  } else if (typeof part === "number") {
    out.push(NUMBER);
    const raw = new Uint8Array(8);
    new DataView(raw.buffer).setFloat64(0, part);
    if (Number.isNaN(part)) raw.set([0x7f, 0xf8, 0, 0, 0, 0, 0, 0]); // one NaN, as Deno KV
    if (raw[0] & 0x80) { for (let i = 0; i < 8; i++) raw[i] ^= 0xff; }
    else raw[0] ^= 0x80;
    for (const byte of raw) out.push(byte);
  } else if (typeof part === "boolean") {
    out.push(part ? TRUE : FALSE);
  } else {
    throw new TypeError(`Invalid key part: ${typeof part}`);
  }
}

function escaped(bytes: Uint8Array, out: number[]): void {
  for (const byte of bytes) {
    out.push(byte);
    if (byte === 0x00) out.push(0xff);
  }
  out.push(0x00);
}

/** The first key after every key under `prefix` in byte order: `prefix ‖ 0xFF`. */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = new Uint8Array(prefix.length + 1);
  end.set(prefix);
  end[prefix.length] = 0xff;
  return end;
}

/** The first key under `prefix` in byte order: `prefix ‖ 0x00` (the prefix itself excluded). */
export function prefixStart(prefix: Uint8Array): Uint8Array {
  const start = new Uint8Array(prefix.length + 1);
  start.set(prefix);
  return start;
}

/** Byte-wise comparison, as PostgreSQL compares `bytea`. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
