/** End to end: the TypeScript client against a real head, including working_dir uploads. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { TextReader, Uint8ArrayWriter, ZipWriter } from "@zip.js/zip.js";
import { JobheadError, TailClosedError } from "../client/errors.ts";
import { JobClient } from "../client/http_client.ts";
import { plantPackage, startHead } from "./harness.ts";

/** Collects a job's whole log through `tailJobLogs()`; `onText` sees the text so far. */
async function tailAll(
  client: JobClient,
  id: string,
  onText: (text: string) => Promise<void> | void = () => {},
): Promise<string> {
  let text = "";
  for await (const chunk of client.tailJobLogs(id)) {
    text += chunk;
    await onText(text);
  }
  return text;
}

async function zipOf(files: Record<string, string>): Promise<Uint8Array> {
  const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false });
  for (const [name, text] of Object.entries(files)) await zip.add(name, new TextReader(text));
  return await zip.close();
}

Deno.test("JobClient submits, follows, reads ranges, lists, stops and deletes jobs", async () => {
  await using head = await startHead();
  const client = new JobClient({ address: head.url });
  assert.equal((await client.version()).version, "4");

  const { submission_id: done } = await client.submitJob({
    entrypoint: "printf 'one\\ntwo\\n'",
    submission_id: "client-done",
    metadata: { owner: "tests" },
  });
  assert.equal(await tailAll(client, done), "one\ntwo\n");
  const finished = await client.getJob(done);
  assert.equal(finished.status, "SUCCEEDED");
  assert.equal(finished.metadata.owner, "tests");
  assert.deepEqual(await client.getJobLogs(done, { offset: 4, limit: 3 }), {
    logs: "two",
    offset: 4,
    size: 8,
  });
  await assert.rejects(
    client.submitJob({ entrypoint: "true", submission_id: done }),
    { name: "JobheadError", code: "CONFLICT", status: 409 },
  );

  const { submission_id: running } = await client.submitJob({
    entrypoint: "echo ready; exec sleep 30",
  });
  await assert.rejects(client.deleteJob(running), { code: "CONFLICT", status: 409 });
  // The tail goes on after the stop, and ends once the job has.
  const text = await tailAll(client, running, async (text) => {
    if (text === "ready\n") assert.equal(await client.stopJob(running), true);
  });
  assert.match(text, /^ready\n/); // the shell may report "Terminated" after it
  assert.equal((await client.getJob(running)).status, "STOPPED");
  assert.equal((await client.waitForJob(running)).status, "STOPPED");
  assert.equal(await client.stopJob(running), false);

  const succeeded = await client.listJobs({ status: ["SUCCEEDED"] });
  assert.deepEqual(succeeded.jobs.map((j) => j.submission_id), [done]);
  const all = await client.listJobs({ limit: 1 });
  assert.deepEqual(all.jobs.map((j) => j.submission_id), [running]);
  assert.equal((await client.listJobs({ limit: 1, cursor: all.nextCursor })).jobs[0].job_id, done);

  assert.equal(await client.deleteJob(running), true);
  await assert.rejects(client.getJob(running), { code: "NOT_FOUND", status: 404 });
  await assert.rejects(
    (async () => {
      for await (const _ of client.tailJobLogs(running)) { /* never reached */ }
    })(),
    { code: "NOT_FOUND" },
  );
});

Deno.test("workingDir is uploaded once by content hash, and bad packages fail their job", async () => {
  await using head = await startHead();
  const client = new JobClient({ address: head.url });
  const dir = await Deno.makeTempDir({ prefix: "jobhead-wd-" });
  try {
    await Deno.writeTextFile(join(dir, "run.sh"), "cat data.txt; ls -A\n");
    await Deno.writeTextFile(join(dir, "data.txt"), "hello from the laptop\n");
    await Deno.writeTextFile(join(dir, ".gitignore"), "*.log\n");
    await Deno.writeTextFile(join(dir, "debug.log"), "left out\n");

    const { submission_id: first } = await client.submitJob({
      entrypoint: "sh run.sh",
      workingDir: dir,
    });
    assert.equal(
      await tailAll(client, first),
      "hello from the laptop\n.gitignore\ndata.txt\nrun.sh\n",
    );
    const job = await client.getJob(first);
    assert.equal(job.status, "SUCCEEDED");
    const uri = job.runtime_env.working_dir!;
    assert.match(uri, /^pkg:\/\/[0-9a-f]{64}\.zip$/);

    const again = await client.uploadWorkingDir(dir);
    assert.deepEqual({ uri: again.uri, uploaded: again.uploaded }, { uri, uploaded: false });
    const { submission_id: second } = await client.submitJob({
      entrypoint: "cat data.txt",
      workingDir: dir,
    });
    assert.equal((await client.waitForJob(second)).runtime_env.working_dir, uri);
    // Jobs share the package's one extracted copy, which outlives them.
    const extracted = join(head.dataDir, "packages", "extracted", uri.replace("://", "/"));
    const versions = await Array.fromAsync(Deno.readDir(extracted));
    assert.equal(versions.length, 1);
    const data = join(extracted, versions[0].name, "data.txt");
    assert.equal(await Deno.readTextFile(data), "hello from the laptop\n");
    await client.deleteJob(second);
    assert.equal(await Deno.readTextFile(data), "hello from the laptop\n");

    await Deno.writeTextFile(join(dir, "data.txt"), "changed\n");
    const changed = await client.uploadWorkingDir(dir);
    assert.equal(changed.uploaded, true);
    assert.notEqual(changed.uri, uri);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  // A zip-slip package is refused at upload…
  const slip = await zipOf({ "ok.txt": "ok", "../../escaped.sh": "echo owned" });
  await assert.rejects(client.uploadPackage("pkg://slip.zip", slip), (err: JobheadError) => {
    assert.equal(err.code, "BAD_REQUEST");
    assert.match(err.message, /entry "\.\.\/\.\.\/escaped\.sh" escapes the target directory/);
    return true;
  });
  assert.equal(await client.hasPackage("pkg://slip.zip"), false);
  // …and one that reached the store some other way fails its job, as do missing and corrupt ones.
  await plantPackage(head, { protocol: "pkg", name: "slip.zip" }, slip);
  await plantPackage(
    head,
    { protocol: "pkg", name: "corrupt.zip" },
    new TextEncoder().encode("not a zip at all"),
  );
  const expected = {
    "slip.zip": /^runtime_env setup failed: Package pkg:\/\/slip\.zip is invalid: entry .* escapes/,
    "corrupt.zip": /^runtime_env setup failed: Package pkg:\/\/corrupt\.zip is invalid: it is not/,
    "missing.zip": /^runtime_env setup failed: Package pkg:\/\/missing\.zip does not exist$/,
  };
  await Promise.all(
    Object.entries(expected).map(async ([name, message]) => {
      const { submission_id } = await client.submitJob({
        entrypoint: "touch ran",
        runtime_env: { working_dir: `pkg://${name}` },
      });
      const failed = await client.waitForJob(submission_id);
      assert.equal(failed.status, "FAILED", name);
      assert.equal(failed.error_type, "RUNTIME_ENV_SETUP_FAILURE", name);
      assert.match(failed.message, message);
    }),
  );
  for (const path of ["working_dirs/escaped.sh", "escaped.sh", "../escaped.sh"]) {
    await assert.rejects(Deno.stat(join(head.dataDir, path)), Deno.errors.NotFound);
  }
});

Deno.test("JobClient sends its token, and a tail cut by the head's exit throws", async () => {
  await using head = await startHead({ token: "s3cret" });
  await assert.rejects(
    new JobClient({ address: head.url }).listJobs(),
    { name: "JobheadError", code: "UNAUTHORIZED", status: 401 },
  );
  await assert.rejects(
    new JobClient({ address: head.url, token: "wrong" }).version(),
    { code: "FORBIDDEN", status: 403 },
  );
  const client = new JobClient({ address: head.url, token: "s3cret" });
  const { submission_id: id } = await client.submitJob({ entrypoint: "echo ready; exec sleep 30" });
  await assert.rejects(
    tailAll(client, id, async (text) => {
      if (text === "ready\n") await head.kill("SIGTERM");
    }),
    (err: TailClosedError) => {
      assert.ok(err instanceof TailClosedError, String(err));
      assert.equal(err.closeCode, 1001);
      assert.equal(err.offset, "ready\n".length);
      return true;
    },
  );
});

Deno.test("JobClient.getCluster() reads the node's capacity and use", async () => {
  await using head = await startHead({
    extraArgs: [
      "--num-cpus",
      "2",
      "--num-gpus",
      "0",
      "--memory",
      "1G",
      "--resources",
      '{"license":2}',
    ],
  });
  const cluster = await new JobClient({ address: head.url }).getCluster();
  assert.equal(cluster.nodes.length, 1);
  const [node] = cluster.nodes;
  assert.equal(node.state, "ALIVE");
  assert.deepEqual(node.total, { CPU: 2, GPU: 0, memory: 1024 ** 3, license: 2 });
  assert.deepEqual(node.free, node.total);
  assert.deepEqual([node.running, node.pending, cluster.running, cluster.pending], [0, 0, 0, 0]);
});
