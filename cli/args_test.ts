import assert from "node:assert/strict";
import {
  connectionOf,
  hasMetadata,
  metadataFilterOf,
  parseCommandArgs,
  positiveIntegerOf,
  shellQuote,
  statusesOf,
  SUBMIT_FLAGS,
  submitOptionsOf,
  tailLines,
  UsageError,
} from "./args.ts";

function submitOf(args: string[]) {
  const { flags, positionals } = parseCommandArgs(args, SUBMIT_FLAGS);
  return submitOptionsOf(flags, positionals);
}

Deno.test("submitOptionsOf() takes one word as written and quotes several", () => {
  assert.equal(submitOf(["--", "echo a && echo b"]).entrypoint, "echo a && echo b");
  assert.equal(
    submitOf(["--", "python", "-c", "print('hi there')", "--out=x.txt"]).entrypoint,
    `python -c 'print('\\''hi there'\\'')' --out=x.txt`,
  );
  assert.equal(shellQuote(""), "''");
  assert.throws(() => submitOf(["--no-wait"]), UsageError);
});

Deno.test("submitOptionsOf() builds the request from Ray's flags", () => {
  const options = submitOf([
    "--submission-id=my-job",
    "--runtime-env-json",
    '{"env_vars":{"A":"1"},"excludes":["*.bin"]}',
    "--working-dir",
    "./app",
    "--exclude",
    "data/",
    "--metadata-json",
    '{"owner":"me"}',
    "--entrypoint-num-cpus",
    "0.5",
    "--entrypoint-memory",
    "1024",
    "--entrypoint-resources",
    '{"disk":1}',
    "--",
    "sh",
    "run.sh",
  ]);
  assert.deepEqual(options, {
    entrypoint: "sh run.sh",
    submission_id: "my-job",
    runtime_env: { env_vars: { A: "1" } },
    workingDir: "./app",
    excludes: ["data/", "*.bin"],
    metadata: { owner: "me" },
    entrypoint_num_cpus: 0.5,
    entrypoint_memory: 1024,
    entrypoint_resources: { disk: 1 },
  });
  // A package URI is not a local directory: it goes to the head as is.
  assert.deepEqual(submitOf(["--working-dir", "gcs://_ray_pkg_1.zip", "--", "true"]).runtime_env, {
    working_dir: "gcs://_ray_pkg_1.zip",
  });
});

Deno.test("submitOptionsOf() takes the short resource flags, memory with a unit, and a priority", () => {
  const options = submitOf([
    "--num-cpus",
    "2",
    "--num-gpus=1",
    "--memory",
    "16G",
    "--resources",
    '{"license":1}',
    "--priority=-3", // a negative number needs the `=`
    "--",
    "true",
  ]);
  assert.deepEqual(options, {
    entrypoint: "true",
    runtime_env: {},
    entrypoint_num_cpus: 2,
    entrypoint_num_gpus: 1,
    entrypoint_memory: 16 * 1024 ** 3,
    entrypoint_resources: { license: 1 },
    priority: -3,
  });
  assert.equal(submitOf(["--entrypoint-memory", "512Mi", "--", "true"]).entrypoint_memory, 2 ** 29);
});

Deno.test("submitOptionsOf() refuses what it cannot send", () => {
  for (
    const args of [
      ["--runtime-env-json", "[1]", "--", "true"],
      ["--runtime-env-json", "{oops", "--", "true"],
      ["--entrypoint-num-cpus", "many", "--", "true"],
      ["--exclude", "*.log", "--", "true"],
      ["--working-dir", "a", "--runtime-env-json", '{"working_dir":"b"}', "--", "true"],
      ["--no-such-flag", "--", "true"],
      ["--memory", "lots", "--", "true"],
      ["--num-cpus", "1", "--entrypoint-num-cpus", "1", "--", "true"],
      ["--priority", "1.5", "--", "true"],
      ["--resources", "2", "--", "true"],
    ]
  ) {
    assert.throws(() => submitOf(args), UsageError, args.join(" "));
  }
});

Deno.test("connectionOf() and statusesOf() read flags first, then the environment", () => {
  const env = { JOBHEAD_ADDRESS: "http://env:1", JOBHEAD_AUTH_TOKEN: "env-token" };
  assert.deepEqual(connectionOf({}, env), { address: "http://env:1", token: "env-token" });
  assert.deepEqual(connectionOf({ address: "http://flag:2", token: "t" }, env), {
    address: "http://flag:2",
    token: "t",
  });
  assert.deepEqual(connectionOf({}, {}), { address: "http://127.0.0.1:8265", token: undefined });
  assert.deepEqual(statusesOf("running, pending"), ["RUNNING", "PENDING"]);
  assert.equal(statusesOf(undefined), undefined);
  assert.throws(() => statusesOf("DONE"), /--status DONE: not one of PENDING, RUNNING/);
});

Deno.test("tailLines() takes the last lines, with or without a final newline", () => {
  assert.equal(tailLines("a\nb\nc\n", 2), "b\nc\n");
  assert.equal(tailLines("a\nb\nc", 2), "b\nc");
  assert.equal(tailLines("a\nb\n", 5), "a\nb\n");
  assert.equal(tailLines("", 3), "");
  assert.equal(tailLines("only\n", 1), "only\n");
});

Deno.test("metadataFilterOf() and hasMetadata() match every KEY=VALUE given", () => {
  const filter = metadataFilterOf(["owner=alice", "note=a=b"]);
  assert.deepEqual(filter, { owner: "alice", note: "a=b" });
  assert.ok(hasMetadata({ metadata: { owner: "alice", note: "a=b", x: "1" } }, filter));
  assert.ok(!hasMetadata({ metadata: { owner: "alice" } }, filter));
  assert.throws(() => metadataFilterOf(["nokey"]), UsageError);
  assert.throws(() => metadataFilterOf(["=v"]), UsageError);
});

Deno.test("positiveIntegerOf() takes whole numbers from 1", () => {
  assert.equal(positiveIntegerOf("--limit", undefined), undefined);
  assert.equal(positiveIntegerOf("--limit", "5"), 5);
  for (const bad of ["0", "-1", "1.5", "x", ""]) {
    assert.throws(() => positiveIntegerOf("--limit", bad), UsageError, bad);
  }
});
