import assert from "node:assert/strict";
import { FileLogStore, gapMarker } from "../../storage/logs.ts";
import { wholeLogJson } from "./whole_log.ts";

async function withLogs(fn: (logs: FileLogStore) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-whole-log-" });
  try {
    await fn(new FileLogStore(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("wholeLogJson() escapes chunk by chunk and keeps characters cut between chunks whole", async () => {
  await withLogs(async (logs) => {
    const text = 'héllo "quoted" \\ back\tslash\u0001 ✓ 😀\n'.repeat(50);
    await Deno.writeTextFile(logs.pathOf("j"), text);
    for (const chunkBytes of [1, 3, 7, 1024]) {
      const body = await new Response(wholeLogJson(logs, "j", { chunkBytes })).text();
      assert.deepEqual(JSON.parse(body), { logs: text }, `chunks of ${chunkBytes} bytes`);
    }
  });
});

Deno.test("wholeLogJson() answers an empty or missing log with empty logs", async () => {
  await withLogs(async (logs) => {
    assert.deepEqual(JSON.parse(await new Response(wholeLogJson(logs, "none")).text()), {
      logs: "",
    });
    await logs.create("empty");
    assert.deepEqual(JSON.parse(await new Response(wholeLogJson(logs, "empty")).text()), {
      logs: "",
    });
  });
});

Deno.test("wholeLogJson() reads a capped log's dropped range as its marker line", async () => {
  await withLogs(async (logs) => {
    const block = (c: string) => c.repeat(4096);
    await Deno.writeTextFile(logs.pathOf("j"), block("a") + block("b") + block("c") + block("d"));
    const gap = await logs.trim("j", 4096, 4096);
    assert.deepEqual(gap, { start: 4096, end: 12288 });
    const body = await new Response(wholeLogJson(logs, "j", { chunkBytes: 1000 })).text();
    assert.deepEqual(JSON.parse(body), { logs: block("a") + gapMarker(gap!) + block("d") });
  });
});

Deno.test("wholeLogJson() sends the log as it was when the answer started", async () => {
  await withLogs(async (logs) => {
    await Deno.writeTextFile(logs.pathOf("j"), "first\n");
    const stream = wholeLogJson(logs, "j", { chunkBytes: 2 });
    const reader = stream.getReader();
    const first = await reader.read(); // the answer has started: the size is fixed
    await Deno.writeTextFile(logs.pathOf("j"), "second\n", { append: true });
    let body = new TextDecoder().decode(first.value);
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      body += new TextDecoder().decode(next.value);
    }
    assert.deepEqual(JSON.parse(body), { logs: "first\n" });
  });
});
