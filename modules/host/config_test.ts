import assert from "node:assert/strict";
import { ConfigError, isLoopback, isLoopbackName, parseConfig } from "./config.ts";

Deno.test("parseConfig() defaults to loopback, port 8265 and ./.jobhead", () => {
  const config = parseConfig([], {});
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.port, 8265);
  assert.equal(config.dataDir, "./.jobhead");
  assert.equal(config.stopGraceMs, 3000);
  assert.equal(config.token, undefined);
});

Deno.test("parseConfig() takes environment twins, and flags over them", () => {
  const env = { JOBHEAD_PORT: "9000", JOBHEAD_DATA_DIR: "/d", JOBHEAD_MODULES: "a.ts, b.ts" };
  const config = parseConfig(["--port", "0", "--module", "c.ts"], env);
  assert.equal(config.port, 0);
  assert.equal(config.dataDir, "/d");
  assert.deepEqual(config.modules, ["a.ts", "b.ts", "c.ts"]);
});

Deno.test("parseConfig() refuses a non-loopback host without a token", () => {
  assert.throws(() => parseConfig(["--host", "0.0.0.0"], {}), (err: Error) => {
    return err instanceof ConfigError && err.message.includes("--token");
  });
  assert.equal(parseConfig(["--host", "0.0.0.0"], { JOBHEAD_AUTH_TOKEN: "s" }).token, "s");
});

Deno.test("parseConfig() rejects bad numbers and unknown flags", () => {
  assert.throws(() => parseConfig(["--port", "http"], {}), ConfigError);
  assert.throws(() => parseConfig(["--port", "70000"], {}), ConfigError);
  assert.throws(() => parseConfig(["--nope"], {}), ConfigError);
  assert.throws(() => parseConfig(["--token", ""], {}), ConfigError);
});

Deno.test("isLoopbackName() takes localhost, 127.0.0.0/8 literals and [::1], never a prefix", () => {
  for (
    const name of ["localhost", "LOCALHOST", "127.0.0.1", "127.255.255.255", "127.1.2.3", "[::1]"]
  ) {
    assert.ok(isLoopbackName(name), name);
  }
  const others = [
    "127.evil.example",
    "127.0.0.1.evil.example",
    "127.0.0.1evil",
    "127.0.0.256",
    "127.0.0.01",
    "127.0.0",
    "127.1",
    "127.0.0.1.",
    "0x7f.0.0.1",
    "128.0.0.1",
    "localhost.evil.example",
    "localhost.",
    "::1",
    "[::1].evil",
    "[::2]",
    "",
  ];
  for (const name of others) assert.ok(!isLoopbackName(name), name);
  assert.ok(isLoopback("::1"), "a listen address may be written without brackets");
  assert.ok(!isLoopback("127.evil.example"));
});

Deno.test("parseConfig() refuses a host name that merely starts with 127. without a token", () => {
  assert.throws(() => parseConfig(["--host", "127.evil.example"], {}), ConfigError);
  assert.equal(parseConfig(["--host", "127.0.0.2"], {}).host, "127.0.0.2");
});

Deno.test("parseConfig() reads the limits on connections and tails, with environment twins", () => {
  const defaults = parseConfig([], {});
  assert.equal(defaults.headerTimeoutS, 30);
  assert.equal(defaults.maxConnections, undefined, "from the open-files limit at start");
  assert.equal(defaults.maxLogTails, 4096);
  const env = {
    JOBHEAD_HEADER_TIMEOUT_S: "2.5",
    JOBHEAD_MAX_CONNECTIONS: "100",
    JOBHEAD_MAX_LOG_TAILS: "7",
  };
  const fromEnv = parseConfig([], env);
  assert.deepEqual(
    [fromEnv.headerTimeoutS, fromEnv.maxConnections, fromEnv.maxLogTails],
    [2.5, 100, 7],
  );
  const flags = parseConfig(
    ["--header-timeout-s", "0", "--max-connections", "3", "--max-log-tails", "0"],
    env,
  );
  assert.deepEqual([flags.headerTimeoutS, flags.maxConnections, flags.maxLogTails], [0, 3, 0]);
  assert.throws(() => parseConfig(["--max-connections", "0"], {}), ConfigError);
  assert.throws(() => parseConfig(["--header-timeout-s", "-1"], {}), ConfigError);
});
