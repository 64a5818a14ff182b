/**
 * End to end: working_dir packages are extracted off the head's event loop, once per
 * package, into a read-only copy the jobs share; zip bombs stop at the configured limits.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { Uint8ArrayWriter, ZipWriter } from "@zip.js/zip.js";
import { plantPackage, startHead, waitForStatus } from "./harness.ts";
import { exists, jobLogs, submitJob } from "./helpers.ts";
import { waitFor } from "./poll.ts";
import { makeZip } from "./zip.ts";

const MIB = 1024 * 1024;

/** A zip of one deflated entry of `bytes` zeros: about 1,000 times smaller than its content. */
async function zerosZip(bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const chunk = new Uint8Array(MIB);
  let left = bytes;
  const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false, level: 9 });
  await zip.add("zeros.bin", {
    readable: new ReadableStream<Uint8Array>({
      pull(controller) {
        if (left <= 0) return controller.close();
        const next = chunk.subarray(0, Math.min(left, MIB));
        left -= next.length;
        controller.enqueue(next);
      },
    }),
  });
  return await zip.close() as Uint8Array<ArrayBuffer>;
}

/** The extracted copies (and extractions under way) of every `pkg://` package. */
async function extractedVersions(dataDir: string): Promise<string[]> {
  const root = join(dataDir, "packages", "extracted", "pkg");
  const versions: string[] = [];
  // On PostgreSQL a package is checked as it is fetched: a bomb may never get this far.
  if (!await exists(root)) return versions;
  for await (const name of Deno.readDir(root)) {
    for await (const version of Deno.readDir(join(root, name.name))) {
      versions.push(`${name.name}/${version.name}`);
    }
  }
  return versions;
}

/** CPU time, in clock ticks, of the thread `tid` of `pid` (the main thread when equal). */
async function cpuTicks(pid: number, tid?: number): Promise<number> {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const stat = await Deno.readTextFile(path);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

Deno.test("zip bombs fail their jobs with RUNTIME_ENV_SETUP_FAILURE saying which limit", async () => {
  const limit = 48 * MIB;
  await using head = await startHead({ extraArgs: ["--max-package-extract-bytes", String(limit)] });
  const bombs = {
    "big.zip": [
      await zerosZip(64 * MIB),
      `it expands to more than ${limit} bytes (the limit set by --max-package-extract-bytes)`,
    ],
    "dense.zip": [
      await zerosZip(8 * MIB),
      `its compression ratio is over 200 (the limit set by --max-package-ratio)`,
    ],
  } as const;
  for (const [name, [zip, why]] of Object.entries(bombs)) {
    const put = await head.json(`/api/packages/pkg/${name}`, { method: "PUT", body: zip });
    assert.equal(put.status, 400, "declared sizes are checked at upload");
    assert.ok(put.body.error.message.includes(why), put.body.error.message);
    // One stored before the limits were lowered is refused before it is inflated.
    await plantPackage(head, { protocol: "pkg", name }, zip);
    const id = await submitJob(head, {
      entrypoint: "echo ran",
      runtime_env: { working_dir: `pkg://${name}` },
    });
    const job = await waitForStatus(head, id, ["FAILED"]);
    assert.equal(job.error_type, "RUNTIME_ENV_SETUP_FAILURE");
    assert.ok(
      job.message.startsWith(`runtime_env setup failed: Package pkg://${name} is invalid: ${why}`),
      job.message,
    );
    assert.equal(await jobLogs(head, id), "");
  }
  assert.deepEqual(await extractedVersions(head.dataDir), [], "nothing of a bomb stays on disk");
});

Deno.test("a large package is inflated off the event loop while the head keeps answering", async () => {
  await using head = await startHead({ extraArgs: ["--max-package-ratio", "0"] });
  const put = await head.json("/api/packages/pkg/large.zip", {
    method: "PUT",
    body: await zerosZip(128 * MIB),
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));

  const mainBefore = await cpuTicks(head.pid, head.pid);
  const allBefore = await cpuTicks(head.pid);
  let answered = 0;
  let extracting = true;
  const probe = (async () => {
    // A light load, and a bounded one: on a slow machine the inflation takes longer, and
    // the probe must not be what keeps the main thread busy.
    while (extracting && answered < 50) {
      const res = await head.fetch("/-/healthz");
      assert.equal(await res.text(), "ok");
      answered++;
      await delay(20);
    }
  })();
  const id = await submitJob(head, {
    entrypoint: "stat -c %s zeros.bin",
    runtime_env: { working_dir: "pkg://large.zip" },
  });
  await waitForStatus(head, id, ["SUCCEEDED"]);
  extracting = false;
  await probe;
  const main = await cpuTicks(head.pid, head.pid) - mainBefore;
  const all = await cpuTicks(head.pid) - allBefore;
  assert.equal(await jobLogs(head, id), `${128 * MIB}\n`);
  assert.ok(answered > 0);
  // Inflating and writing 128 MiB costs the head tenths of a second of CPU; the main
  // thread, which answers every request, must have done little of it.
  assert.ok(main * 4 < all, `the main thread used ${main} of the head's ${all} CPU ticks`);
});

Deno.test("jobs of one package share one read-only copy; JOBHEAD_WORKING_DIR_COPY=1 gives a job its own", async () => {
  await using head = await startHead();
  const put = await head.fetch("/api/packages/pkg/shared.zip", {
    method: "PUT",
    body: await makeZip({ "data.txt": "shared\n", "sub/more.txt": "more\n" }),
  });
  assert.equal(put.status, 200, await put.text());
  const where = "pwd -P; stat -c %i data.txt";
  const ids = await Promise.all(
    [1, 2].map(() =>
      submitJob(head, { entrypoint: where, runtime_env: { working_dir: "pkg://shared.zip" } })
    ),
  );
  const outputs = [];
  for (const id of ids) {
    await waitForStatus(head, id, ["SUCCEEDED"]);
    outputs.push(await jobLogs(head, id));
  }
  assert.equal(outputs[0], outputs[1], "both jobs ran in the same directory, on the same file");
  const shared = outputs[0].split("\n")[0];
  const extracted = join(await Deno.realPath(head.dataDir), "packages", "extracted", "pkg");
  assert.ok(shared.startsWith(join(extracted, "shared.zip") + "/"), shared);
  assert.equal((await Deno.stat(join(shared, "data.txt"))).mode! & 0o777, 0o444);
  assert.equal((await Deno.stat(join(shared, "sub"))).mode! & 0o777, 0o555);

  // The modes hold for any user but root (which ignores them; see the README).
  const nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
  const writer = await submitJob(head, {
    entrypoint: `${nobody} cat data.txt && ${nobody} sh -c 'echo more >> data.txt'`,
    runtime_env: { working_dir: "pkg://shared.zip" },
  });
  const refused = await waitForStatus(head, writer, ["FAILED"]);
  assert.match(refused.message, /shared\n.*data\.txt: Permission denied/s);

  const own = await submitJob(head, {
    entrypoint: "pwd -P; echo mine > data.txt; mkdir out; cat data.txt",
    runtime_env: {
      working_dir: "pkg://shared.zip",
      env_vars: { JOBHEAD_WORKING_DIR_COPY: "1" },
    },
  });
  await waitForStatus(head, own, ["SUCCEEDED"]);
  const copy = join(await Deno.realPath(head.dataDir), "working_dirs", own);
  assert.equal(await jobLogs(head, own), `${copy}\nmine\n`);
  assert.equal(await Deno.readTextFile(join(shared, "data.txt")), "shared\n");
  const deleted = await head.json(`/api/jobs/${own}`, { method: "DELETE" });
  assert.equal(deleted.status, 200);
  await assert.rejects(Deno.stat(copy), Deno.errors.NotFound, "its own copy goes with the job");
  assert.equal(await Deno.readTextFile(join(shared, "data.txt")), "shared\n");
});

Deno.test("a head killed mid-extraction leaves no half copy: the next start extracts it whole", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "jobhead-test-" });
  const runId = crypto.randomUUID();
  const options = { dataDir, runId, extraArgs: ["--max-package-ratio", "0"] };
  const copies = join(dataDir, "packages", "extracted", "pkg", "large.zip");
  const list = async () => (await Array.fromAsync(Deno.readDir(copies))).map((e) => e.name);
  try {
    let id: string;
    {
      await using head = await startHead(options);
      const put = await head.json("/api/packages/pkg/large.zip", {
        method: "PUT",
        body: await zerosZip(128 * MIB),
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      id = await submitJob(head, {
        entrypoint: "stat -c %s zeros.bin",
        runtime_env: { working_dir: "pkg://large.zip" },
      });
      // Polled: nothing announces a file being made.
      await waitFor("an extraction under way", async () => {
        const names = await list().catch(() => []);
        return names.some((name) => name.startsWith(".tmp-"));
      });
      await head.kill("SIGKILL");
    }
    const left = await list();
    assert.ok(left.every((name) => name.startsWith(".tmp-")), `a half copy only: ${left}`);

    await using head = await startHead(options);
    await waitForStatus(head, id, ["SUCCEEDED"]);
    assert.equal(await jobLogs(head, id), `${128 * MIB}\n`);
    const after = await list();
    assert.equal(after.length, 1, `one copy: ${after}`);
    assert.ok(!after[0].startsWith(".tmp-"), after[0]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
