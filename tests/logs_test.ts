/** End to end: reading logs by byte range, and following them over WebSocket. */
import assert from "node:assert/strict";
import { startHead, waitForStatus } from "./harness.ts";
import { Fifos } from "./fifos.ts";
import { assertError, q, rawUpgrade, submitJob, tailLog } from "./helpers.ts";

/** `line-000\n` … `line-099\n`: 100 lines of 9 bytes. */
const HUNDRED_LINES = Array.from({ length: 100 }, (_, i) => `line-${String(i).padStart(3, "0")}\n`)
  .join("");
const PRINT_HUNDRED_LINES =
  "i=0; while [ $i -lt 100 ]; do printf 'line-%03d\\n' $i; i=$((i+1)); done";

Deno.test("GET /api/jobs/{id}/logs reads byte ranges from the start or the end", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: PRINT_HUNDRED_LINES });
  await waitForStatus(head, id, ["SUCCEEDED"]);

  const whole = await head.json(`/api/jobs/${id}/logs`);
  assert.equal(whole.status, 200);
  assert.equal(whole.body.logs, HUNDRED_LINES);

  const range = async (query: string) => {
    const res = await head.json(`/api/jobs/${id}/logs?${query}`);
    assert.equal(res.status, 200, `${query}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  assert.deepEqual(await range("offset=9&limit=9"), { logs: "line-001\n", offset: 9, size: 900 });
  assert.deepEqual(await range("offset=0&limit=18"), {
    logs: "line-000\nline-001\n",
    offset: 0,
    size: 900,
  });
  assert.deepEqual(await range("offset=-18"), {
    logs: "line-098\nline-099\n",
    offset: 882,
    size: 900,
  });
  assert.deepEqual(await range("offset=-18&limit=9"), {
    logs: "line-098\n",
    offset: 882,
    size: 900,
  });
  assert.deepEqual(await range("offset=891"), { logs: "line-099\n", offset: 891, size: 900 });
  const fromStart = await range("limit=27");
  assert.equal(fromStart.logs, "line-000\nline-001\nline-002\n");
  assert.equal(fromStart.size, 900);
  const pastEnd = await range("offset=900");
  assert.equal(pastEnd.logs, "");
  assert.equal(pastEnd.size, 900);

  for (const bad of ["offset=abc", "limit=-5", "limit=xyz", "offset=1.5"]) {
    assertError(await head.json(`/api/jobs/${id}/logs?${bad}`), 400, "BAD_REQUEST");
  }
});

Deno.test("a 96 MiB log read without a range comes whole, as Ray's JobLogsResponse takes it, in bounded memory", async () => {
  await using head = await startHead();
  const size = 96 << 20;
  // 96 MiB of numbered lines: every byte checked, not just the length.
  const id = await submitJob(head, { entrypoint: `seq 1 100000000 | head -c ${size}` });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  const peakBefore = await peakRss(head.pid);
  const res = await fetch(`${head.url}/api/jobs/${id}/logs`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = await res.json();
  // Ray's JobLogsResponse is a dataclass with the one field `logs`: any other key breaks it.
  assert.deepEqual(Object.keys(body), ["logs"]);
  assert.equal(body.logs.length, size);
  const expected = await new Deno.Command("sh", {
    args: ["-c", `seq 1 100000000 | head -c ${size} | sha256sum`],
  }).output();
  assert.equal(await sha256(body.logs), new TextDecoder().decode(expected.stdout).split(" ")[0]);
  const growth = (await peakRss(head.pid)) - peakBefore;
  // Held whole, the log would cost its size at least; streamed, a few chunks and garbage.
  assert.ok(growth < size / 3, `the head's peak RSS grew by ${growth >> 20} MiB for a 96 MiB log`);
});

/** The peak resident memory of a process (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("the WebSocket tail follows a live job in order and closes 1000 when it ends", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  await fifos.make("go");
  const first = Array.from({ length: 200 }, (_, i) => `a-${i}\n`).join("");
  const second = Array.from({ length: 2000 }, (_, i) => `b-${i}\n`).join("");
  const id = await submitJob(head, {
    entrypoint: `i=0; while [ $i -lt 200 ]; do echo "a-$i"; i=$((i+1)); done; ` +
      `read x <${q(fifos.path("go"))}; ` +
      `i=0; while [ $i -lt 2000 ]; do echo "b-$i"; i=$((i+1)); done`,
  });
  let released = false;
  const followers = [0, 1].map(() =>
    tailLog(head, id, {
      async onText(text) {
        // The job waits for us, so this part arrived while it was running.
        if (!released && text.length >= first.length) {
          assert.equal(text.slice(0, first.length), first);
          released = true;
          await fifos.send("go");
        }
      },
    })
  );
  const results = await Promise.all(followers);
  assert.ok(released, "the first part arrived while the job ran");
  for (const result of results) {
    assert.equal(result.code, 1000, `closed with ${result.code} ${result.reason}`);
    assert.equal(result.text, first + second, "every byte exactly once, in order");
    for (const frame of result.frames) assert.ok(frame.length <= 64 << 10);
  }
  await waitForStatus(head, id, ["SUCCEEDED"]);
});

Deno.test("a live follower gets a partial line while the job waits", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  await fifos.make("go");
  const id = await submitJob(head, {
    entrypoint: `printf 'Continue? '; read x <${q(fifos.path("go"))}; echo "$x"`,
  });
  let prompted = false;
  const result = await tailLog(head, id, {
    async onText(text) {
      if (!prompted && text === "Continue? ") {
        prompted = true;
        await fifos.send("go", "yes\n");
      }
    },
  });
  assert.ok(prompted, "the prompt arrived while the job waited for an answer");
  assert.equal(result.text, "Continue? yes\n");
  assert.equal(result.code, 1000);
});

Deno.test("the WebSocket tail of a finished job sends its log, or from ?offset, then closes", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: PRINT_HUNDRED_LINES });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  const whole = await tailLog(head, id);
  assert.equal(whole.code, 1000);
  assert.equal(whole.text, HUNDRED_LINES);
  const tail = await tailLog(head, id, { offset: 450 });
  assert.equal(tail.code, 1000);
  assert.equal(tail.text, HUNDRED_LINES.slice(450));

  // About 1 MiB of short lines: frames of at most 64 KiB, each of whole lines.
  const big = await submitJob(head, { entrypoint: "seq 1 150000" });
  await waitForStatus(head, big, ["SUCCEEDED"]);
  const seq = await tailLog(head, big);
  assert.equal(seq.code, 1000);
  assert.equal(seq.text, Array.from({ length: 150000 }, (_, i) => `${i + 1}\n`).join(""));
  assert.ok(seq.frames.length >= 16, `${seq.frames.length} frames`);
  for (const frame of seq.frames) {
    assert.ok(frame.length <= 64 << 10, `a frame of ${frame.length} bytes`);
    assert.ok(
      frame.endsWith("\n"),
      `a frame that cuts a line: ...${JSON.stringify(frame.slice(-20))}`,
    );
  }

  const partial = await submitJob(head, { entrypoint: "echo whole; printf 'no newline'" });
  await waitForStatus(head, partial, ["SUCCEEDED"]);
  assert.equal((await tailLog(head, partial)).text, "whole\nno newline");

  const silent = await submitJob(head, { entrypoint: "true" });
  await waitForStatus(head, silent, ["SUCCEEDED"]);
  const empty = await tailLog(head, silent);
  assert.equal(empty.code, 1000);
  assert.equal(empty.text, "");
});

Deno.test("the WebSocket tail closes with 1001 when the head shuts down", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const alive = await fifos.reader("alive");
  const id = await submitJob(head, {
    entrypoint: `exec 3>${q(alive.path)}; echo waiting; exec sleep 1000`,
  });
  await alive.opened();
  const result = await tailLog(head, id, {
    async onText(text) {
      if (text === "waiting\n") await head.kill("SIGTERM");
    },
  });
  assert.equal(result.code, 1001, `closed with ${result.code} ${result.reason}`);
  assert.equal(result.text, "waiting\n");
});

Deno.test("the WebSocket tail of an unknown job is a 404 before the upgrade", async () => {
  await using head = await startHead();
  const { status } = await rawUpgrade(head, "/api/jobs/nope/logs/tail");
  assert.equal(status, 404);
});
