import assert from "node:assert/strict";
import { cutFrames, frameLength, MAX_FRAME_BYTES } from "./framing.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("frameLength() ends frames after the last newline mid-burst", () => {
  assert.equal(frameLength(bytes("a\nb\nc"), { caughtUp: false, final: false }), 4);
  assert.equal(frameLength(bytes("abc"), { caughtUp: false, final: false }), 0);
});

Deno.test("frameLength() sends a partial line once caught up, bar a split character", () => {
  assert.equal(frameLength(bytes("a\nbc"), { caughtUp: true, final: false }), 4);
  const euro = bytes("x€"); // € is 3 bytes
  assert.equal(frameLength(euro.subarray(0, 3), { caughtUp: true, final: false }), 1);
  assert.equal(frameLength(euro, { caughtUp: true, final: false }), 4);
});

Deno.test("frameLength() never exceeds the frame limit nor splits a character", () => {
  const long = bytes("é".repeat(MAX_FRAME_BYTES)); // 2 bytes each, no newline
  const cut = frameLength(long, { caughtUp: true, final: true });
  assert.ok(cut <= MAX_FRAME_BYTES && cut % 2 === 0 && cut > 0);
  const lines = bytes(("x".repeat(99) + "\n").repeat(1000));
  const lineCut = frameLength(lines, { caughtUp: false, final: false });
  assert.ok(lineCut <= MAX_FRAME_BYTES && lineCut % 100 === 0);
});

Deno.test("cutFrames() hands out every whole frame and returns the rest", () => {
  const frames: string[] = [];
  const rest = cutFrames(
    bytes("one\ntwo\nthr"),
    { caughtUp: false, final: false },
    (frame) => frames.push(new TextDecoder().decode(frame)),
  );
  assert.deepEqual(frames, ["one\ntwo\n"]);
  assert.equal(new TextDecoder().decode(rest), "thr");
  const all: string[] = [];
  const none = cutFrames(rest, { caughtUp: true, final: true }, (frame) => {
    all.push(new TextDecoder().decode(frame));
  });
  assert.deepEqual(all, ["thr"]);
  assert.equal(none.length, 0);
});

Deno.test("cutFrames() stops when onFrame() returns false and returns the rest uncut", () => {
  const lines = bytes(("x".repeat(99) + "\n").repeat(500)); // 50,000 bytes: several frames
  const frames: Uint8Array[] = [];
  const rest = cutFrames(lines, { caughtUp: false, final: false }, (frame) => {
    frames.push(frame.slice());
    return false;
  });
  assert.equal(frames.length, 1);
  assert.equal(frames[0].length + rest.length, lines.length);
  assert.deepEqual(rest, lines.subarray(frames[0].length));
});
