import assert from "node:assert/strict";
import { TextReader, Uint8ArrayWriter, ZipWriter } from "@zip.js/zip.js";
import { FilePackageStore } from "../../storage/packages.ts";
import { packageUri } from "../../storage/package_uri.ts";
import { createApp } from "../../host/app.ts";
import { packageRoutes } from "./routes.ts";

const MAX_PACKAGE_BYTES = 64 * 1024;

async function withApp(
  fn: (request: (path: string, init?: RequestInit) => Promise<Response>) => Promise<void>,
  options: { inUse?: Set<string> } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-packages-" });
  try {
    const app = createApp({ maxBodyBytes: 1024, rawBodyPrefixes: ["/api/packages/"] });
    app.route(
      "/",
      packageRoutes(new FilePackageStore(dir), {
        maxBytes: MAX_PACKAGE_BYTES,
        usersOf: (ref) => Promise.resolve(options.inUse?.has(packageUri(ref)) ?? false),
      }),
    );
    await fn(async (path, init) => await app.request(path, init));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function zipOf(files: Record<string, string>): Promise<Uint8Array<ArrayBuffer>> {
  const zip = new ZipWriter(new Uint8ArrayWriter(), { useWebWorkers: false, level: 0 });
  for (const [name, text] of Object.entries(files)) await zip.add(name, new TextReader(text));
  return await zip.close() as Uint8Array<ArrayBuffer>;
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });

test("PUT then GET /api/packages/pkg/{name} stores a zip over the JSON body limit", async () => {
  await withApp(async (request) => {
    const missing = await request("/api/packages/pkg/a.zip");
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      error: { code: "NOT_FOUND", message: "Package pkg://a.zip does not exist" },
    });
    const zip = await zipOf({ "big.txt": "x".repeat(4096) });
    const put = await request("/api/packages/pkg/a.zip", { method: "PUT", body: zip });
    assert.equal(put.status, 200);
    assert.deepEqual(await put.json(), { uri: "pkg://a.zip", size: zip.length });
    const found = await request("/api/packages/pkg/a.zip");
    assert.equal(found.status, 200);
    assert.deepEqual(await found.json(), { uri: "pkg://a.zip", size: zip.length });
  });
});

test("PUT /api/packages rejects bad names, zip-slip entries and oversized bodies", async () => {
  await withApp(async (request) => {
    const zip = await zipOf({ "ok.txt": "ok" });
    for (
      const path of [
        "/api/packages/s3/a.zip",
        "/api/packages/pkg/.hidden",
        "/api/packages/pkg/a%2F..%2Fb",
      ]
    ) {
      const res = await request(path, { method: "PUT", body: zip });
      assert.equal(res.status, 400, path);
      assert.equal((await res.json()).error.code, "BAD_REQUEST");
    }
    const slip = await request("/api/packages/pkg/slip.zip", {
      method: "PUT",
      body: await zipOf({ "../../evil.sh": "echo owned" }),
    });
    assert.equal(slip.status, 400);
    assert.match((await slip.json()).error.message, /entry "\.\.\/\.\.\/evil\.sh" escapes/);
    const junk = await request("/api/packages/pkg/junk.zip", { method: "PUT", body: "not a zip" });
    assert.equal(junk.status, 400);
    assert.match((await junk.json()).error.message, /not a readable zip/);

    const big = new Uint8Array(MAX_PACKAGE_BYTES + 1);
    const declared = await request("/api/packages/pkg/big.zip", { method: "PUT", body: big });
    assert.equal(declared.status, 413);
    assert.equal((await declared.json()).error.code, "TOO_LARGE");
    // Without a Content-Length the limit is found while reading.
    const streamed = await request("/api/packages/pkg/big.zip", {
      method: "PUT",
      body: new Blob([big]).stream(),
    });
    assert.equal(streamed.status, 413);
    await streamed.body?.cancel();
    for (const name of ["slip.zip", "junk.zip", "big.zip"]) {
      const res = await request(`/api/packages/pkg/${name}`);
      assert.equal(res.status, 404, name);
      await res.body?.cancel();
    }
  });
});

test("DELETE /api/packages/pkg/{name} removes a package; 404 when absent, 409 while a job runs in it", async () => {
  const inUse = new Set<string>();
  await withApp(async (request) => {
    const zip = await zipOf({ "a.txt": "a" });
    assert.equal(
      (await request("/api/packages/pkg/d.zip", { method: "PUT", body: zip })).status,
      200,
    );
    inUse.add("pkg://d.zip");
    const busy = await request("/api/packages/pkg/d.zip", { method: "DELETE" });
    assert.equal(busy.status, 409);
    assert.match((await busy.json()).error.message, /a job that has not ended runs in it/);
    assert.equal((await request("/api/packages/pkg/d.zip")).status, 200, "still there");
    inUse.clear();
    const gone = await request("/api/packages/pkg/d.zip", { method: "DELETE" });
    assert.deepEqual(await gone.json(), { deleted: true });
    assert.equal((await request("/api/packages/pkg/d.zip")).status, 404);
    assert.equal((await request("/api/packages/pkg/d.zip", { method: "DELETE" })).status, 404);
    assert.equal((await request("/api/packages/pkg/.hidden", { method: "DELETE" })).status, 400);
  }, { inUse });
});
