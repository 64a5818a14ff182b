import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "./config.ts";

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

Deno.test("parseConfig() reads --data-mode as octal, keeping the owner's rights", () => {
  assert.equal(parseConfig([], {}).dataMode, 0o700);
  assert.equal(parseConfig(["--data-mode", "0750"], {}).dataMode, 0o750);
  assert.equal(parseConfig([], { JOBHEAD_DATA_MODE: "755" }).dataMode, 0o755);
  for (const bad of ["0600", "750x", "0o750", "", "07500", "9"]) {
    assert.throws(() => parseConfig(["--data-mode", bad], {}), ConfigError, bad);
  }
});

Deno.test("parseConfig() takes --recover and its twin", () => {
  assert.equal(parseConfig([], {}).recover, false);
  assert.equal(parseConfig(["--recover"], {}).recover, true);
  assert.equal(parseConfig([], { JOBHEAD_RECOVER: "1" }).recover, true);
});
