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

Deno.test("parseConfig() takes the package extraction limits, flags over environment", () => {
  const defaults = parseConfig([], {});
  assert.equal(defaults.maxPackageExtractBytes, 1024 ** 3);
  assert.equal(defaults.maxPackageRatio, 200);
  const env = { JOBHEAD_MAX_PACKAGE_EXTRACT_BYTES: "1000", JOBHEAD_MAX_PACKAGE_RATIO: "0" };
  const fromEnv = parseConfig([], env);
  assert.equal(fromEnv.maxPackageExtractBytes, 1000);
  assert.equal(fromEnv.maxPackageRatio, 0);
  const flags = parseConfig(
    ["--max-package-extract-bytes", "5", "--max-package-ratio", "2.5"],
    env,
  );
  assert.equal(flags.maxPackageExtractBytes, 5);
  assert.equal(flags.maxPackageRatio, 2.5);
  assert.throws(
    () => parseConfig(["--max-package-ratio", "lots"], {}),
    /Invalid --max-package-ratio/,
  );
});
