import assert from "node:assert/strict";
import { formatJsonLine } from "./log.ts";

Deno.test("formatJsonLine() writes time, level, module, message and the job named in it", () => {
  const now = new Date("2026-01-02T03:04:05.678Z");
  const line = JSON.parse(
    formatJsonLine("error", "jobs", 'starting job "a-1" failed:', [new Error("disk")], now),
  );
  assert.equal(line.time, "2026-01-02T03:04:05.678Z");
  assert.equal(line.level, "error");
  assert.equal(line.module, "jobs");
  assert.equal(line.message, 'starting job "a-1" failed: disk');
  assert.equal(line.job, "a-1");
  assert.match(line.stack, /Error: disk/, "a bug keeps its stack");
});

Deno.test("formatJsonLine() tells a peer's I/O error in one line, without a stack", () => {
  const line = JSON.parse(
    formatJsonLine("warn", "jobs", "log tail closed:", [new Deno.errors.BrokenPipe("gone")]),
  );
  assert.equal(line.message, "log tail closed: gone");
  assert.equal(line.stack, undefined);
  assert.equal(line.job, undefined);
  assert.deepEqual(Object.keys(line).sort(), ["level", "message", "module", "time"]);
});
