import assert from "node:assert/strict";
import {
  CONFIG_ENV_NAMES,
  ConfigError,
  isLoopback,
  isLoopbackName,
  OPTIONS,
  parseConfig,
  startUsage,
  WITHHELD_ENV_NAMES,
} from "./config.ts";

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

async function withFile(name: string, text: string, fn: (path: string) => void) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-config-" });
  try {
    const path = `${dir}/${name}`;
    await Deno.writeTextFile(path, text);
    fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseConfig() reads a TOML or JSON --config file; the environment and flags win over it", async () => {
  const toml = `port = 9100\ndata-dir = "/from-file"\nminimal = true\nmodule = ["f.ts"]\n` +
    `stop-wait-s = 1.5\n`;
  await withFile("head.toml", toml, (path) => {
    const config = parseConfig(["--config", path], {});
    assert.equal(config.port, 9100);
    assert.equal(config.dataDir, "/from-file");
    assert.equal(config.minimal, true);
    assert.deepEqual(config.modules, ["f.ts"]);
    assert.equal(config.stopGraceMs, 1500);
    const overridden = parseConfig(["--config", path, "--port", "9300", "--module", "g.ts"], {
      JOBHEAD_DATA_DIR: "/from-env",
      JOBHEAD_PORT: "9200",
      JOBHEAD_MINIMAL: "0",
    });
    assert.equal(overridden.port, 9300);
    assert.equal(overridden.dataDir, "/from-env");
    assert.equal(overridden.minimal, false);
    assert.deepEqual(overridden.modules, ["f.ts", "g.ts"]);
  });
  await withFile("head.json", `{"port": 9400, "token": "from-file"}`, (path) => {
    const config = parseConfig([], { JOBHEAD_CONFIG: path });
    assert.equal(config.port, 9400);
    assert.equal(config.token, "from-file");
  });
});

Deno.test("parseConfig() names the file and the key of a bad --config file", async () => {
  const cases: [string, string, RegExp][] = [
    ["a.json", `{"prot": 1}`, /unknown option "prot"/],
    ["b.json", `{"port": true}`, /"port" must be a string or a number/],
    ["c.json", `[1]`, /must hold an object/],
    ["d.toml", `port = `, /is not valid/],
    ["e.json", `{"module": "x.ts"}`, /"module" must be a list of strings/],
  ];
  for (const [name, text, pattern] of cases) {
    await withFile(name, text, (path) => {
      assert.throws(() => parseConfig(["--config", path], {}), (err: Error) => {
        return err instanceof ConfigError && err.message.includes(path) &&
          pattern.test(err.message);
      }, name);
    });
  }
  assert.throws(() => parseConfig(["--config", "/no/such/file.json"], {}), /Cannot read/);
});

Deno.test("startUsage() lists every option with its environment twin and default", () => {
  const usage = startUsage();
  for (const option of OPTIONS) {
    assert.match(usage, new RegExp(`--${option.flag}\\b`));
    assert.ok(usage.includes(option.env), option.env);
  }
  assert.match(
    usage,
    /--port PORT +port to listen on; 0 picks a free one \(JOBHEAD_PORT, default 8265\)/,
  );
  assert.ok(CONFIG_ENV_NAMES.includes("JOBHEAD_AUTH_TOKEN"));
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

Deno.test("parseConfig() reads no environment variable that jobs may inherit (WITHHELD_ENV_NAMES)", () => {
  const read = new Set<string>();
  const env = new Proxy({}, {
    get: (_, key) => {
      if (typeof key === "string") read.add(key);
      return undefined;
    },
  });
  parseConfig([], env);
  assert.ok(read.has("JOBHEAD_AUTH_TOKEN"));
  assert.ok(read.has("PGPASSWORD"));
  assert.deepEqual([...read].filter((key) => !WITHHELD_ENV_NAMES.includes(key)), []);
  assert.ok(CONFIG_ENV_NAMES.every((key) => WITHHELD_ENV_NAMES.includes(key)));
});

Deno.test("parseConfig() takes --store and its password from a file, else PGPASSWORD", async () => {
  assert.equal(parseConfig([], {}).store, "kv");
  const url = "postgres://jobhead@db.example:5432/jobhead";
  assert.equal(parseConfig(["--store", url], {}).store, url);
  assert.equal(parseConfig([], { JOBHEAD_STORE: url }).store, url);
  assert.equal(parseConfig([], {}).storePassword, undefined);
  assert.equal(parseConfig([], { PGPASSWORD: "from-env" }).storePassword, "from-env");
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "from file \n");
    const config = parseConfig(["--store-password-file", file], { PGPASSWORD: "from-env" });
    assert.equal(config.storePassword, "from file ", "only the line end is cut");
    await Deno.writeTextFile(file, "");
    assert.throws(() => parseConfig(["--store-password-file", file], {}), ConfigError);
  } finally {
    await Deno.remove(file);
  }
  assert.throws(
    () => parseConfig(["--store-password-file", file], {}),
    /Cannot read the store password file/,
  );
  assert.throws(() => parseConfig(["--store", " "], {}), ConfigError);
});

Deno.test("parseConfig() takes --cgroup auto|off and its twin", () => {
  assert.equal(parseConfig([], {}).cgroup, "auto");
  assert.equal(parseConfig(["--cgroup", "off"], {}).cgroup, "off");
  assert.equal(parseConfig([], { JOBHEAD_CGROUP: "off" }).cgroup, "off");
  assert.throws(() => parseConfig(["--cgroup", "v1"], {}), ConfigError);
});

Deno.test("startUsage() keeps lines within 100 columns and space after every flag", () => {
  for (const line of startUsage().split("\n")) {
    assert.ok(line.length <= 100, line);
    if (line.startsWith("  --")) assert.match(line, /^ {2}--[a-z-]+( \S+)?( {2,}\S|$)/, line);
  }
});

Deno.test("parseConfig() reads the scheduler's capacity and queue options", () => {
  const defaults = parseConfig([], {});
  assert.equal(defaults.numCpus, undefined, "detected at start");
  assert.equal(defaults.memoryBytes, undefined);
  assert.deepEqual(defaults.resources, {});
  assert.equal(defaults.maxRunningJobs, undefined);
  assert.equal(defaults.reserveAfterS, 300);
  assert.equal(defaults.pendingTimeoutS, 900);
  assert.equal(defaults.enforceCpu, false);
  const config = parseConfig(
    ["--num-cpus", "2.5", "--memory", "16G", "--max-running-jobs", "3"],
    { JOBHEAD_NUM_GPUS: "4", JOBHEAD_RESOURCES: '{"license": 2}', JOBHEAD_PENDING_TIMEOUT_S: "5" },
  );
  assert.equal(config.numCpus, 2.5);
  assert.equal(config.numGpus, 4);
  assert.equal(config.memoryBytes, 16 * 1024 ** 3);
  assert.deepEqual(config.resources, { license: 2 });
  assert.equal(config.maxRunningJobs, 3);
  assert.equal(config.pendingTimeoutS, 5);
  for (
    const [args, message] of [
      [["--memory", "lots"], /Invalid --memory: "lots"/],
      [["--num-gpus", "1.5"], /Invalid --num-gpus/],
      [["--resources", "[1]"], /expected an object/],
      [["--resources", '{"CPU": 4}'], /set CPU with --num-cpus/],
      [["--resources", '{"license": -1}'], /"license" must be a number of at least 0/],
      [["--resources", "{"], /not JSON/],
    ] as const
  ) {
    assert.throws(() => parseConfig([...args], {}), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, message);
      return true;
    });
  }
});

Deno.test("parseConfig() for `jobhead node` takes the node's options and refuses the head's", () => {
  const config = parseConfig(
    ["--store", "postgres://u@db/x", "--name", "w1", "--labels", "zone=a, gpu=A100"],
    { JOBHEAD_NUM_CPUS: "4" },
    "node",
  );
  assert.equal(config.role, "node");
  assert.equal(config.nodeName, "w1");
  assert.deepEqual(config.labels, { zone: "a", gpu: "A100" });
  assert.equal(config.numCpus, 4);
  assert.equal(config.store, "postgres://u@db/x");
  for (const flag of ["--no-local-jobs", "--placement=pack", "--minimal", "--node-timeout-s=3"]) {
    assert.throws(() => parseConfig([flag], {}, "node"), ConfigError, flag);
  }
  // The environment twin of a head-only option means nothing to a node.
  assert.equal(parseConfig([], { JOBHEAD_PLACEMENT: "nope" }, "node").placement, "spread");
});

Deno.test("parseConfig() reads the cluster options of a head", () => {
  const defaults = parseConfig([], {});
  assert.equal(defaults.store, "kv");
  assert.equal(defaults.nodeTimeoutS, 10);
  assert.equal(defaults.localJobs, true);
  assert.equal(defaults.placement, "spread");
  assert.equal(defaults.nodeName, Deno.hostname());
  const config = parseConfig(["--no-local-jobs", "--placement", "pack"], {
    JOBHEAD_NODE_TIMEOUT_S: "2.5",
  });
  assert.equal(config.localJobs, false);
  assert.equal(config.placement, "pack");
  assert.equal(config.nodeTimeoutS, 2.5);
  assert.throws(() => parseConfig(["--placement", "random"], {}), /Invalid --placement/);
  assert.throws(() => parseConfig(["--labels", "zone"], {}), /Invalid --labels: "zone"/);
});
