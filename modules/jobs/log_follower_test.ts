import assert from "node:assert/strict";
import { join } from "node:path";
import { gapMarker, type LogGap } from "../../storage/logs.ts";
import { type FrameSink, LogFollowers, type LogSource, STORE_RECHECK_MS } from "./log_follower.ts";
import { LogWatcher } from "./log_watcher.ts";

const test = (name: string, fn: (dir: string) => Promise<void>) =>
  Deno.test({
    name,
    sanitizeOps: true,
    sanitizeResources: true,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "jobhead-follow-" });
      try {
        await fn(dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });

/** Logs in `dir`; a job ends when the test calls `finish`. */
function sourceIn(dir: string, options: { gaps?: Record<string, LogGap> } = {}) {
  const finished = new Set<string>();
  const listeners = new Map<string, Set<() => void>>();
  const watcher = new LogWatcher();
  const source: LogSource = {
    pathOf: (id) => join(dir, `${id}.log`),
    isFinished: (id) => Promise.resolve(finished.has(id)),
    onFinished(id, listener) {
      if (!listeners.has(id)) listeners.set(id, new Set());
      listeners.get(id)!.add(listener);
      return () => listeners.get(id)?.delete(listener);
    },
    gapOf: (id) => options.gaps?.[id],
    watcher,
  };
  const finish = (id: string) => {
    finished.add(id);
    for (const listener of listeners.get(id) ?? []) listener();
  };
  return { source, finish, [Symbol.dispose]: () => watcher.close() };
}

/** A sink that never falls behind, and tells when what it got ends with a text. */
function textSink(): FrameSink & { text(): string; until(end: string): Promise<void> } {
  const frames: string[] = [];
  let waiting: { end: string; resolve: () => void } | undefined;
  const check = () => {
    if (waiting && frames.join("").endsWith(waiting.end)) waiting.resolve();
  };
  return {
    send(frame) {
      frames.push(frame);
      check();
    },
    bufferedAmount: () => 0,
    text: () => frames.join(""),
    until: (end) =>
      new Promise((resolve) => {
        waiting = { end, resolve };
        check();
      }),
  };
}

test("a hub asks the store whether its job ended once, then on the end's announcement", async (dir) => {
  using logs = sourceIn(dir);
  let asked = 0;
  const isFinished = logs.source.isFinished;
  const source: LogSource = {
    ...logs.source,
    isFinished: (id) => {
      asked++;
      return isFinished(id);
    },
  };
  const path = source.pathOf("j");
  await Deno.writeTextFile(path, "");
  const followers = new LogFollowers(source);
  const sink = textSink();
  const began = performance.now();
  const followed = followers.follow("j", sink);
  for (const line of ["one\n", "two\n", "three\n"]) {
    await Deno.writeTextFile(path, line, { append: true });
    await sink.until(line);
  }
  // Each write woke the hub and was read to the end: none of them was a reason to ask
  // (a slow machine may have let STORE_RECHECK_MS pass: then it asked again).
  const due = 1 + Math.floor((performance.now() - began) / STORE_RECHECK_MS);
  assert.ok(asked <= due, `asked ${asked} times, ${due} due`);
  const before = asked;
  logs.finish("j");
  assert.equal(await followed, true);
  assert.ok(asked > before);
  assert.equal(sink.text(), "one\ntwo\nthree\n");
});

test("LogFollowers.follow() sends what is written, every byte once, until the job ends", async (dir) => {
  using logs = sourceIn(dir);
  const path = logs.source.pathOf("j");
  await Deno.writeTextFile(path, "first\n");
  const followers = new LogFollowers(logs.source);
  const sink = textSink();
  const followed = followers.follow("j", sink);
  await sink.until("first\n");
  assert.equal(followers.followerCount, 1);
  await Deno.writeTextFile(path, "second, é\n", { append: true });
  await sink.until("é\n");
  logs.finish("j");
  assert.equal(await followed, true);
  assert.equal(sink.text(), "first\nsecond, é\n");
  assert.equal(followers.followerCount, 0);
});

test("LogFollowers.follow() from a negative offset starts that far from the end; an abort ends it", async (dir) => {
  using logs = sourceIn(dir);
  await Deno.writeTextFile(logs.source.pathOf("j"), "0123456789");
  const followers = new LogFollowers(logs.source);
  const sink = textSink();
  const stop = new AbortController();
  const followed = followers.follow("j", sink, { fromByte: -3, signal: stop.signal });
  await sink.until("789");
  stop.abort();
  assert.equal(await followed, false);
  assert.equal(sink.text(), "789");
});

test("LogFollowers.follow() sends a dropped range as its marker line", async (dir) => {
  const gap = { start: 4096, end: 8192 };
  using logs = sourceIn(dir, { gaps: { j: gap } });
  const head = "h".repeat(4095) + "\n";
  const tail = "t".repeat(4095) + "\n";
  const dropped = "\0".repeat(gap.end - gap.start);
  await Deno.writeTextFile(logs.source.pathOf("j"), head + dropped + tail);
  logs.finish("j");
  const sink = textSink();
  assert.equal(await new LogFollowers(logs.source).follow("j", sink), true);
  assert.equal(sink.text(), head + gapMarker(gap) + tail);
});
