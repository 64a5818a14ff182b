/** What a follower whose socket does not drain costs: the head's own count of unsent bytes. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MAX_FRAME_BYTES } from "./framing.ts";
import { type FrameSink, LogFollowers, type LogSource } from "./log_follower.ts";
import { LogWatcher } from "./log_watcher.ts";

const encoder = new TextEncoder();
/** Lines of mixed widths, some with multi-byte characters: 600 kB, many frames. */
const LOG = Array.from({ length: 6000 }, (_, i) => `line ${i} ${"é€x".repeat(i % 40)}\n`)
  .join("");

/** A socket stand-in: frames it is sent stay unsent until the test drains it. */
class StallingSink implements FrameSink {
  frames: string[] = [];
  /** Bytes sent and not yet written: Deno's `bufferedAmount`. */
  unsent = 0;
  /** The most that was unsent when a frame was sent. */
  unsentAtSend = 0;
  /** Looks at the socket since the last frame was sent. */
  pollsSinceSend = 0;
  onPoll = () => {};

  send(frame: string): void {
    this.unsentAtSend = Math.max(this.unsentAtSend, this.unsent);
    this.frames.push(frame);
    this.unsent += encoder.encode(frame).length;
    this.pollsSinceSend = 0;
  }

  bufferedAmount(): number {
    this.pollsSinceSend++;
    this.onPoll();
    return this.unsent;
  }
}

/** A finished job's log in a temp dir, followed through a real hub and file watcher. */
async function finishedLog(text: string) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-follow-" });
  const path = join(dir, "job.log");
  await Deno.writeTextFile(path, text);
  const watcher = new LogWatcher();
  const source: LogSource = {
    pathOf: () => path,
    isFinished: () => Promise.resolve(true),
    onFinished: () => () => {},
    gapOf: () => undefined,
    watcher,
  };
  return {
    followers: new LogFollowers(source),
    async [Symbol.asyncDispose]() {
      watcher.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("a follower whose socket does not drain sends one frame, then only looks", async () => {
  await using log = await finishedLog(LOG);
  const sink = new StallingSink();
  const stop = new AbortController();
  // Looking 24 times takes it through its immediate checks into its timed backoff.
  sink.onPoll = () => {
    if (sink.frames.length > 0 && sink.pollsSinceSend >= 24) stop.abort();
  };
  const finished = await log.followers.follow("job", sink, { signal: stop.signal });
  assert.equal(finished, false, "it stopped on the abort, not at the end of the log");
  assert.equal(sink.frames.length, 1);
  assert.ok(sink.unsent <= MAX_FRAME_BYTES);
  // The budget the README states for a stalled tail: one frame of 32 KiB, whatever the log.
  assert.ok(sink.unsent <= 32 * 1024, `${sink.unsent} bytes unsent`);
});

Deno.test("a follower sends only into a drained socket and resumes where it stopped", async () => {
  await using log = await finishedLog(LOG);
  const sink = new StallingSink();
  // The socket drains only after the follower has waited a while: long enough, at times,
  // for it to drop what it had read ahead and read it again.
  sink.onPoll = () => {
    const polls = sink.frames.length % 3 === 0 ? 20 : 2;
    if (sink.unsent > 0 && sink.pollsSinceSend >= polls) sink.unsent = 0;
  };
  const finished = await log.followers.follow("job", sink);
  assert.equal(finished, true);
  assert.equal(sink.unsentAtSend, 0, "a frame went to a socket that still held bytes");
  assert.equal(sink.frames.join(""), LOG, "every byte once, in order");
  for (const frame of sink.frames) assert.ok(encoder.encode(frame).length <= MAX_FRAME_BYTES);
});

Deno.test("many stalled followers wait together, each resumes when its own socket drains", async () => {
  await using log = await finishedLog(LOG);
  const stop = new AbortController();
  const sinks = Array.from({ length: 40 }, (_, i) => {
    const sink = new StallingSink();
    // Each socket drains after its own number of looks: some while the follower still
    // looks at once, most once it waits with the others on the shared timer.
    sink.onPoll = () => {
      if (sink.unsent > 0 && sink.pollsSinceSend >= 1 + (i * 7 + sink.frames.length) % 24) {
        sink.unsent = 0;
      }
    };
    return sink;
  });
  // A few more never drain: they wait until the abort, and must not hold the others up.
  const stuck = Array.from({ length: 5 }, () => new StallingSink());
  const following = sinks.map((sink) => log.followers.follow("job", sink));
  const waiting = stuck.map((sink) => log.followers.follow("job", sink, { signal: stop.signal }));
  assert.deepEqual(await Promise.all(following), sinks.map(() => true));
  for (const sink of sinks) {
    assert.equal(sink.unsentAtSend, 0, "a frame went to a socket that still held bytes");
    assert.equal(sink.frames.join(""), LOG, "every byte once, in order");
  }
  stop.abort();
  assert.deepEqual(await Promise.all(waiting), stuck.map(() => false));
  for (const sink of stuck) assert.equal(sink.frames.length, 1);
});
