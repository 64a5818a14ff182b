import assert from "node:assert/strict";
import { join } from "node:path";
import type { HeadInfo, HeadModule } from "../kit/module.ts";
import { readGitCommit, snapshotRoutes } from "./snapshot.ts";

const info = { sessionName: "session_1", version: "1.2.3", commit: "abc" } as HeadInfo;
const quiet = { info() {}, warn() {}, error() {} };

Deno.test("GET /api/snapshot gathers the modules' sections; a failing one is left out", async () => {
  const modules: HeadModule[] = [
    { name: "jobs", minimal: true, snapshot: () => ({ j: 1 }) },
    {
      name: "serve",
      minimal: false,
      snapshotKey: "deployments",
      snapshot: () => Promise.resolve({}),
    },
    { name: "broken", minimal: false, snapshot: () => Promise.reject(new Error("no")) },
    { name: "quiet", minimal: false },
  ];
  const res = await snapshotRoutes(() => modules, info, { logger: quiet }).request("/api/snapshot");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    result: true,
    msg: 'the snapshot section of module "broken" failed',
    data: {
      snapshot: {
        jobs: { j: 1 },
        deployments: {},
        session_name: "session_1",
        version: "1.2.3",
        commit: "abc",
      },
    },
  });
});

Deno.test("readGitCommit() follows HEAD to a loose or a packed ref", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readGitCommit(dir), "", "not a work tree");
    await Deno.mkdir(join(dir, ".git/refs/heads"), { recursive: true });
    await Deno.writeTextFile(join(dir, ".git/HEAD"), "ref: refs/heads/main\n");
    await Deno.writeTextFile(join(dir, ".git/packed-refs"), "# pack-refs\naaa refs/heads/main\n");
    assert.equal(await readGitCommit(dir), "aaa");
    await Deno.writeTextFile(join(dir, ".git/refs/heads/main"), "bbb\n");
    assert.equal(await readGitCommit(dir), "bbb");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
