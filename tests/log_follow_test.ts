/**
 * Live logs under load (issue 3): liveness, exactness at many followers and through
 * ranges, resume, a stalled follower's memory, shutdown, and the size cap.
 */
import assert from "node:assert/strict";
import { Fifos, HANG_GUARD_MS, withTimeout } from "./fifos.ts";
import { openStoreOf, type RunningHead, startHead, waitForStatus } from "./harness.ts";
import { assertError, q, rawUpgrade, sendUpgrade, submitJob, tailLog } from "./helpers.ts";
import { waitFor } from "./poll.ts";
import { socketDescriptors, tcpSockets } from "../host/socket_options.ts";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function rssKb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

Deno.test("lines reach a follower while the job runs, in order, then close 1000", async () => {
  await using fifos = await Fifos.create();
  for (let i = 1; i <= 5; i++) await fifos.make(`go${i}`);
  await using head = await startHead();
  // Each line waits for the test to have received the previous one: liveness by events.
  // One FIFO per line: a writer still closing one FIFO cannot feed the next read.
  const id = await submitJob(head, {
    entrypoint: `for i in 1 2 3 4 5; do echo "line $i"; read x <${q(fifos.dir)}/go$i; done`,
  });
  let released = 0;
  const result = await tailLog(head, id, {
    onText: async (text) => {
      const lines = text.split("\n").filter(Boolean).length;
      while (released < lines) {
        released++;
        await fifos.send(`go${released}`);
      }
    },
  });
  assert.equal(result.text, "line 1\nline 2\nline 3\nline 4\nline 5\n");
  assert.equal(result.code, 1000);
});

Deno.test("50 MB of output reaches 8 followers and ranged reads byte for byte", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "head -c 37500000 /dev/urandom | base64" });
  const tails = await Promise.all(
    Array.from({ length: 8 }, () => tailLog(head, id)),
  );
  const file = await Deno.readFile(`${head.dataDir}/logs/${id}.log`);
  assert.ok(file.length > 50_000_000);
  const expected = await sha256(file);
  for (const tail of tails) {
    assert.equal(tail.code, 1000);
    assert.ok(tail.frames.every((f) => new TextEncoder().encode(f).length <= 64 * 1024));
    assert.equal(await sha256(new TextEncoder().encode(tail.text)), expected);
  }
  const parts: Uint8Array<ArrayBuffer>[] = [];
  for (let offset = 0; offset < file.length;) {
    const { body } = await head.json(`/api/jobs/${id}/logs?offset=${offset}&limit=16777216`);
    assert.equal(body.offset, offset);
    assert.equal(body.size, file.length);
    const bytes = new TextEncoder().encode(body.logs);
    parts.push(bytes);
    offset += bytes.length;
  }
  assert.equal(await sha256(new Uint8Array(await new Blob(parts).arrayBuffer())), expected);
});

Deno.test("a follower resumes from ?offset= without gaps or repeats", async () => {
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: "seq 1 20000" });
  const full = await tailLog(head, id);
  const offset = 12_345;
  const resumed = await tailLog(head, id, { offset });
  assert.equal(resumed.text, full.text.slice(offset)); // ASCII: bytes are characters
  const fromEnd = await tailLog(head, id, { offset: -6 });
  assert.equal(fromEnd.text, "20000\n".slice(-6));
});

/** Runs a job writing 200 MB while a follower that never reads a byte is attached. */
async function runWithStalledFollower(head: RunningHead, fifos: Fifos, name: string) {
  await fifos.make(name);
  const id = await submitJob(head, {
    entrypoint: `read x <${q(fifos.path(name))}; ` +
      `head -c 200000000 /dev/zero | tr '\\0' 'x' | fold -w 100; echo; echo end`,
  });
  const stalled = await sendUpgrade(head, `/api/jobs/${id}/logs/tail`);
  await fifos.send(name);
  await waitForStatus(head, id, ["SUCCEEDED"]);
  // The head still serves others while the stalled socket holds its share.
  assert.equal((await tailLog(head, id, { offset: -4 })).text, "end\n");
  return stalled;
}

Deno.test("a follower that stops reading does not grow the head's memory", async () => {
  await using fifos = await Fifos.create();
  await using head = await startHead();
  const start = await rssKb(head.pid);
  using _first = await runWithStalledFollower(head, fifos, "go1");
  const afterFirst = await rssKb(head.pid);
  using _second = await runWithStalledFollower(head, fifos, "go2");
  const afterSecond = await rssKb(head.pid);
  // A stalled follower holds at most 1 MiB unsent; the rest stays in the file. What
  // the head grows by is its allocator's high-water mark from reading 200 MB once,
  // which a second round does not raise: nothing accumulates per byte written.
  const firstMb = (afterFirst - start) / 1024;
  const secondMb = (afterSecond - afterFirst) / 1024;
  assert.ok(firstMb < 120, `the first 200 MB grew the head by ${firstMb.toFixed(1)} MB`);
  assert.ok(secondMb < 32, `the second 200 MB grew the head by ${secondMb.toFixed(1)} MB`);
});

Deno.test("a follower is closed with 1001 when the head shuts down", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  await using head = await startHead();
  const id = await submitJob(head, { entrypoint: `echo started; read x <${q(fifos.path("go"))}` });
  let stopping: Promise<void> | undefined;
  const result = await tailLog(head, id, {
    onText: (text) => {
      if (text.includes("started")) stopping ??= head.kill("SIGTERM");
    },
  });
  await stopping;
  assert.equal(result.code, 1001);
  await fifos.send("go"); // the job outlived the head; let it finish
});

Deno.test("a log past its cap keeps its head and tail, and the job keeps running", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  await using head = await startHead({ extraArgs: ["--log-max-bytes", "1000000"] });
  const id = await submitJob(head, {
    entrypoint: `seq 1 400000; read x <${q(fifos.path("go"))}; echo after-the-cap`,
  });
  // Polled: the cap is enforced by a periodic check, which announces nothing.
  const logs = await waitFor("the cap to be enforced", async () => {
    const { logs } = (await head.json(`/api/jobs/${id}/logs`)).body;
    return logs.includes("[jobhead:") && logs;
  });
  assert.match(logs, /\[jobhead: \d+ bytes of this log \(bytes \d+-\d+\) were dropped/);
  await fifos.send("go");
  await waitForStatus(head, id, ["SUCCEEDED"]);
  const tail = await tailLog(head, id);
  assert.ok(tail.text.startsWith("1\n2\n3\n"));
  assert.ok(tail.text.endsWith("399999\n400000\nafter-the-cap\n"));
  assert.match(tail.text, /were dropped: it outgrew its size cap\]\n/);
  const { size, blocks } = await Deno.stat(`${head.dataDir}/logs/${id}.log`);
  assert.ok(size > 2_500_000, "offsets are kept: the file keeps its length");
  assert.ok(
    blocks! * 512 < 1_500_000,
    `the dropped middle is freed: ${blocks! * 512} bytes on disk`,
  );
});

Deno.test("logs of jobs that ended past the retention period are deleted", async () => {
  await using first = await startHead();
  const old = await submitJob(first, { entrypoint: "echo old output" });
  await waitForStatus(first, old, ["SUCCEEDED"]);
  await first.kill("SIGTERM");
  // 0.000001 days is 86 ms: far less than a head takes to start again.
  await using second = await startHead({
    dataDir: first.dataDir,
    runId: first.runId,
    extraArgs: ["--log-retention-days", "0.000001"],
  });
  // Polled: nothing announces the sweep.
  await waitFor("the old log to be removed", async () => {
    return (await second.json(`/api/jobs/${old}/logs`)).body.logs === "";
  });
  assert.equal((await second.json(`/api/jobs/${old}`)).body.status, "SUCCEEDED"); // the record stays
  // The record is marked, so later sweeps pass it by instead of removing the log again.
  // Polled: nothing announces the sweep.
  await waitFor("the removal to be marked", async () => {
    await using store = await openStoreOf(second);
    const record = (await store.kv.get<{ log_removed_at?: number }>(["jobs", old])).value;
    return typeof record?.log_removed_at === "number";
  });
});

Deno.test("a silent tail socket is pinged, and closed when it does not answer", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  await using head = await startHead({ extraArgs: ["--tail-idle-timeout-s", "1"] });
  const id = await submitJob(head, { entrypoint: `read x <${q(fifos.path("go"))}` });
  // A raw client that completes the handshake, then never answers anything.
  using conn = await sendUpgrade(head, `/api/jobs/${id}/logs/tail`);
  const received: number[] = [];
  const buffer = new Uint8Array(4096);
  await withTimeout(
    (async () => {
      for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
        received.push(...buffer.subarray(0, n));
      }
    })(),
    HANG_GUARD_MS,
    "the head to close a socket that does not answer its ping",
  );
  const text = new TextDecoder().decode(new Uint8Array(received));
  assert.match(text, /^HTTP\/1\.1 101 /);
  const frames = new Uint8Array(received).subarray(text.indexOf("\r\n\r\n") + 4);
  const opcodes: number[] = [];
  for (let at = 0; at < frames.length;) {
    opcodes.push(frames[at] & 0x0f);
    at += 2 + (frames[at + 1] & 0x7f); // server frames are unmasked and short here
  }
  assert.ok(opcodes.includes(0x9), `a ping was sent: opcodes ${opcodes}`);
  await fifos.send("go");
});

/** Asks `/-/healthz` `n` times, one after the other; each must answer "ok". */
async function askHealthz(head: RunningHead, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    assert.equal(await (await head.fetch("/-/healthz")).text(), "ok");
  }
}

Deno.test("150 tails that never read cost the head a small fixed amount each", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  // Stalled sockets are kept (no ping) so that each holds its share to the end.
  await using head = await startHead({ extraArgs: ["--tail-idle-timeout-s", "0"] });
  await askHealthz(head, 50);
  const idle = await rssKb(head.pid);
  const id = await submitJob(head, {
    entrypoint: `read x <${q(fifos.path("go"))}; ` +
      `head -c 100000000 /dev/zero | tr '\\0' 'x' | fold -w 100; echo; echo end; exec sleep 600`,
  });
  const stalled: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 150; i++) {
      stalled.push(await sendUpgrade(head, `/api/jobs/${id}/logs/tail`));
    }
    await fifos.send("go");
    // A reading follower sees the whole log go by: by then every stalled one has had its
    // chance to take its share, and the head has served all of them meanwhile.
    const reader = new WebSocket(`${head.url.replace(/^http/, "ws")}/api/jobs/${id}/logs/tail`);
    const sawEnd = new Promise<void>((resolve, reject) => {
      reader.onmessage = (e) => {
        if (String(e.data).endsWith("end\n")) resolve();
      };
      reader.onclose = () => reject(new Error("the reading tail closed before the end"));
    });
    // Not a benchmark (bench/ measures that): the head answers while they are stalled.
    await askHealthz(head, 100);
    await withTimeout(sawEnd, HANG_GUARD_MS, "a reading tail to see the end of the log");
    reader.onclose = null;
    const readerClosed = new Promise((resolve) => reader.onclose = resolve);
    reader.close();
    await readerClosed;
    await askHealthz(head, 100);
    const grownMb = (await rssKb(head.pid) - idle) / 1024;
    // Each stalled socket's kernel buffers take megabytes before the head sees it stall, and
    // what passes through leaves the allocator's high-water mark: measured 160-185 MB here,
    // against 380-490 MB when a tail could hold 1 MiB unsent. bench/ (stalled_tails) has the
    // figures for 500.
    assert.ok(grownMb < 250, `150 stalled tails grew the head by ${grownMb.toFixed(1)} MB`);
  } finally {
    for (const conn of stalled) conn.close();
  }
});

/**
 * Bytes queued in the kernel (unsent, or received and unread) on process `pid`'s TCP sockets
 * but those on local port `exceptPort`.
 */
function tcpQueuedBytes(pid: number, exceptPort: number): number {
  const ours = socketDescriptors(pid);
  let bytes = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const socket of tcpSockets(Deno.readTextFileSync(table))) {
      if (ours.has(socket.inode) && socket.localPort !== exceptPort) bytes += socket.queuedBytes;
    }
  }
  return bytes;
}

Deno.test("tails whose clients stop reading stop taking frames: the head queues little for each", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  await using head = await startHead({ extraArgs: ["--tail-idle-timeout-s", "0"] });
  const id = await submitJob(head, {
    entrypoint: `read x <${q(fifos.path("go"))}; ` +
      `head -c 20000000 /dev/zero | tr '\\0' 'x' | fold -w 100; echo; echo end`,
  });
  const port = Number(new URL(head.url).port);
  const before = tcpQueuedBytes(head.pid, port);
  const tails = 20;
  const stalled: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < tails; i++) {
      stalled.push(await sendUpgrade(head, `/api/jobs/${id}/logs/tail`));
    }
    await fifos.send("go");
    await waitForStatus(head, id, ["SUCCEEDED"]);
    // A reading follower sees the whole log go by: by then the stalled ones have had their
    // chance.
    const tail = await tailLog(head, id);
    assert.equal(tail.code, 1000);
    assert.ok(tail.text.endsWith("end\n"));
    // Between the head's front door and its server, the sockets hold the frames sent until
    // the door held bytes its client did not take, not all that they take: a tail used to
    // fill them until its frames were refused there. Measured 20-65 KB a tail; 254-401 KB
    // before.
    const perTail = Math.round((tcpQueuedBytes(head.pid, port) - before) / tails);
    assert.ok(perTail < 160 * 1024, `the head queues ${perTail} bytes a tail that does not read`);
  } finally {
    for (const conn of stalled) conn.close();
  }
});

Deno.test("past --max-log-tails a tail is refused with 503 UNAVAILABLE, and a slot that frees is reused", async () => {
  await using fifos = await Fifos.create();
  await fifos.make("go");
  await using head = await startHead({ extraArgs: ["--max-log-tails", "2"] });
  const id = await submitJob(head, { entrypoint: `echo started; read x <${q(fifos.path("go"))}` });
  const url = `${head.url.replace(/^http/, "ws")}/api/jobs/${id}/logs/tail`;
  const open = async () => {
    const ws = new WebSocket(url);
    const first = new Promise((resolve) => ws.onmessage = resolve);
    const closed = new Promise((resolve) => ws.onclose = resolve);
    await first;
    return { ws, closed };
  };
  const one = await open();
  const two = await open();
  const refused = await rawUpgrade(head, `/api/jobs/${id}/logs/tail`);
  assert.equal(refused.status, 503);
  const answer = await head.fetch(`/api/jobs/${id}/logs/tail`, {
    headers: { upgrade: "websocket", connection: "upgrade" },
  });
  assertError(
    { status: answer.status, body: await answer.json() },
    503,
    "UNAVAILABLE",
    /--max-log-tails/,
  );
  one.ws.close();
  await one.closed;
  // Polled: the head counts the close when it sees it, and announces nothing; the next
  // upgrade may come first.
  const again = await waitFor("the slot to be free again", async () => {
    const answer = await rawUpgrade(head, `/api/jobs/${id}/logs/tail`);
    return answer.status !== 503 && answer;
  });
  assert.equal(again.status, 101);
  two.ws.close();
  await two.closed;
  await fifos.send("go");
});
