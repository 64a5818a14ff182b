import assert from "node:assert/strict";
import { ConnectionError, JobheadError, TailClosedError } from "./errors.ts";
import { JobClient, type WebSocketConstructor } from "./http_client.ts";
import type { JobDetails } from "../modules/jobs/schemas.ts";
import { aJobDetails } from "./job_details_fixture.ts";

/** A fetch that answers from `answer` and records what it was asked. */
function fakeFetch(answer: (url: URL, init: RequestInit) => Response) {
  const calls: { url: URL; init: RequestInit }[] = [];
  const fetch = (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    calls.push({ url, init });
    return Promise.resolve(answer(url, init));
  };
  return { fetch: fetch as typeof globalThis.fetch, calls };
}

function job(status: JobDetails["status"]): JobDetails {
  return aJobDetails({ status, message: "", start_time: 1 });
}

Deno.test("JobClient turns error answers into JobheadError with the API's code", async () => {
  const { fetch } = fakeFetch((url) =>
    url.pathname.endsWith("/missing")
      ? Response.json({ error: { code: "NOT_FOUND", message: "Job missing does not exist" } }, {
        status: 404,
      })
      : new Response("bad gateway", { status: 502 })
  );
  const client = new JobClient({ address: "127.0.0.1:8265/", fetch });
  assert.equal(client.address, "http://127.0.0.1:8265");
  await assert.rejects(client.getJob("missing"), (err: JobheadError) => {
    assert.ok(err instanceof JobheadError);
    assert.equal(err.code, "NOT_FOUND");
    assert.equal(err.status, 404);
    assert.equal(err.message, "Job missing does not exist");
    return true;
  });
  await assert.rejects(client.stopJob("other"), { code: "HTTP_502", status: 502 });
  assert.throws(() => new JobClient({ address: "ftp://x" }), TypeError);
});

Deno.test("JobClient rejects an answer its schema does not describe", async () => {
  const { fetch } = fakeFetch(() => Response.json({ version: 4 }));
  await assert.rejects(new JobClient({ fetch }).version(), (err: JobheadError) => {
    assert.equal(err.code, "BAD_RESPONSE");
    assert.match(err.message, /GET \/api\/version: version/);
    return true;
  });
});

Deno.test("JobClient says 'connection refused' when nothing listens", async () => {
  const fetch = () =>
    Promise.reject(
      new TypeError("error sending request: tcp connect error: Connection refused (os error 111)"),
    );
  await assert.rejects(new JobClient({ fetch }).version(), (err: ConnectionError) => {
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.code, "CONNECTION_FAILED");
    assert.equal(err.message, "Cannot reach the head at http://127.0.0.1:8265: connection refused");
    return true;
  });
});

Deno.test("JobClient.listJobs() sends the filters and the token, and returns the next cursor", async () => {
  const { fetch, calls } = fakeFetch(() =>
    Response.json([job("RUNNING")], { headers: { "X-Next-Cursor": "c2" } })
  );
  const client = new JobClient({ fetch, token: "t0k" });
  const page = await client.listJobs({ status: ["RUNNING", "PENDING"], limit: 1, cursor: "c1" });
  assert.equal(page.nextCursor, "c2");
  assert.equal(page.jobs[0].status, "RUNNING");
  assert.equal(calls[0].url.search, "?status=RUNNING%2CPENDING&limit=1&cursor=c1");
  assert.equal(new Headers(calls[0].init.headers).get("authorization"), "Bearer t0k");
  await assert.rejects(
    client.submitJob({ entrypoint: "x", workingDir: ".", runtime_env: { working_dir: "/srv" } }),
    TypeError,
  );
});

Deno.test("JobClient.submitJob() sends priority and resource requests as given", async () => {
  const { fetch, calls } = fakeFetch(() => Response.json({ job_id: "j1", submission_id: "j1" }));
  await new JobClient({ fetch }).submitJob({
    entrypoint: "true",
    priority: 5,
    entrypoint_num_cpus: 1.5,
    entrypoint_memory: 1024,
    entrypoint_resources: { license: 1 },
  });
  assert.deepEqual(JSON.parse(String(calls[0].init.body)), {
    entrypoint: "true",
    priority: 5,
    entrypoint_num_cpus: 1.5,
    entrypoint_memory: 1024,
    entrypoint_resources: { license: 1 },
  });
});

/** A WebSocket that delivers `frames`, then closes with `code`. */
function scriptedSocket(frames: string[], code: number): WebSocketConstructor {
  return class {
    binaryType = "blob";
    readyState = 0;
    onopen: (() => void) | null = null;
    onmessage: ((e: { data: string }) => void) | null = null;
    onerror: (() => void) | null = null;
    onclose: ((e: { code: number; reason: string }) => void) | null = null;
    constructor() {
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.();
        for (const data of frames) this.onmessage?.({ data });
        this.readyState = 3;
        this.onclose?.({ code, reason: "" });
      }, 0);
    }
    close() {
      this.readyState = 3;
    }
  } as unknown as WebSocketConstructor;
}

Deno.test("JobClient.tailJobLogs() ends only when the job has; otherwise it throws", async () => {
  const answers = [job("RUNNING"), job("SUCCEEDED")];
  const { fetch } = fakeFetch(() => Response.json(answers.shift() ?? job("SUCCEEDED")));
  const finished = new JobClient({ fetch, WebSocket: scriptedSocket(["a\n", "é\n"], 1000) });
  const texts: string[] = [];
  for await (const text of finished.tailJobLogs("j1")) texts.push(text);
  assert.deepEqual(texts, ["a\n", "é\n"]);

  const dropped = new JobClient({
    fetch: fakeFetch(() => Response.json(job("RUNNING"))).fetch,
    WebSocket: scriptedSocket(["a\n", "é\n"], 1006),
  });
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const text of dropped.tailJobLogs("j1", { offset: 10 })) seen.push(text);
    })(),
    (err: TailClosedError) => {
      assert.ok(err instanceof TailClosedError);
      assert.equal(err.closeCode, 1006);
      assert.equal(err.offset, 10 + 2 + 3); // "é" is two bytes
      return true;
    },
  );
  assert.deepEqual(seen, ["a\n", "é\n"]);
});
