import assert from "node:assert/strict";
import {
  actorCgroupName,
  cgroup2MountPoints,
  CgroupTree,
  ownCgroupPath,
  parentCgroupName,
  parseCgroupEvents,
  parseProcs,
} from "./cgroup.ts";
import { isSameLiveProcess, readStat } from "./procfs.ts";
import { type FifoReader, Fifos } from "../tests/fifos.ts";

const MOUNT_INFO = [
  "24 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw",
  "31 24 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "35 31 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  "50 24 0:40 / /mnt/my\\040cgroups rw shared:9 - cgroup2 none rw,nsdelegate",
].join("\n");

Deno.test("cgroup2MountPoints() lists only cgroup2 mounts, spaces decoded", () => {
  assert.deepEqual(cgroup2MountPoints(MOUNT_INFO), ["/sys/fs/cgroup/unified", "/mnt/my cgroups"]);
  assert.deepEqual(cgroup2MountPoints(""), []);
});

Deno.test("ownCgroupPath() reads the v2 line of /proc/self/cgroup", () => {
  assert.equal(
    ownCgroupPath("9:name=systemd:/\n4:memory:/x\n0::/system.slice/a.service\n"),
    "/system.slice/a.service",
  );
  assert.equal(ownCgroupPath("4:memory:/x\n"), "/");
  assert.equal(ownCgroupPath("0::/\n"), "/");
});

Deno.test("parseCgroupEvents() and parseProcs() read the kernel's files", () => {
  assert.deepEqual(parseCgroupEvents("populated 1\nfrozen 0\n"), {
    populated: true,
    frozen: false,
  });
  assert.deepEqual(parseCgroupEvents("populated 0\nfrozen 1\n"), {
    populated: false,
    frozen: true,
  });
  assert.deepEqual(parseProcs("12\n345\n"), [12, 345]);
  assert.deepEqual(parseProcs(""), []);
});

Deno.test("parentCgroupName() is stable per run directory and differs between them", async () => {
  const a = await parentCgroupName("/data/a/run");
  assert.match(a, /^jobhead-[0-9a-f]{12}$/);
  assert.equal(await parentCgroupName("/data/a/run"), a);
  assert.notEqual(await parentCgroupName("/data/b/run"), a);
  assert.equal(actorCgroupName("jobsup_x"), "actor-jobsup_x");
});

/** Whether this machine offers a writable cgroup v2 hierarchy (the tests below need one). */
const probed = await CgroupTree.probe(`jobhead-unit-${Deno.pid}`);
await probed?.close();

Deno.test({
  name: "CgroupTree reaches every process of a cgroup: TERM through a freeze, then kill and remove",
  ignore: !probed,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using fifos = await Fifos.create();
    const tree = (await CgroupTree.probe(`jobhead-unit-${crypto.randomUUID().slice(0, 8)}`))!;
    const path = tree.create("a1");
    assert.equal(await tree.find("a1"), path);
    assert.equal(await tree.find("nope"), undefined);
    const [alive, escapee, ignorer, terms] = await Promise.all(
      ["alive", "escapee", "ignorer", "terms"].map((name) => fifos.reader(name)),
    );
    // An escapee (a new session, an empty environment) that ends on TERM, and a
    // TERM-ignoring process; every one holds "alive" open.
    const script = fifos.path("script.sh");
    await Deno.writeTextFile(
      script,
      `echo $$ >"$1/cgroup.procs"
exec 3>"$2/alive"
env -i D="$2" setsid sh -c 'trap "echo TERM >\\"\\$D/terms\\"; exit 0" TERM; echo $$ >"$D/escapee"; sleep 1000 & wait' &
sh -c 'trap "" TERM; echo $$ >"$1/ignorer"; exec sleep 1000' sh "$2" &
wait
`,
    );
    const child = new Deno.Command("sh", {
      args: [script, path, fifos.dir],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await stopAll(tree, path, child, { alive, escapee, ignorer, terms });
    } finally {
      await tree.remove(path); // whatever failed, no process is left for the fifos to wait on
      await child.status;
      await tree.close();
    }
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(tree.path), Deno.errors.NotFound);
  },
});

async function stopAll(
  tree: CgroupTree,
  path: string,
  child: Deno.ChildProcess,
  { alive, escapee, ignorer, terms }: Record<string, FifoReader>,
): Promise<void> {
  const escapeePid = Number(await escapee.text());
  const ignorerPid = Number(await ignorer.text());
  assert.notEqual(readStat(escapeePid)?.sid, readStat(child.pid)?.sid, "left the session");
  const ticks = readStat(ignorerPid)!.startTicks;

  await tree.signal(path, "SIGTERM");
  assert.equal(await terms.text(), "TERM\n", "the escapee got SIGTERM");
  await child.status;
  assert.ok(isSameLiveProcess(ignorerPid, ticks), "a TERM-ignoring process lives on");

  assert.equal(await tree.remove(path), true, "killed and removed");
  await alive.eof();
  assert.ok(!isSameLiveProcess(ignorerPid, ticks));
}

Deno.test({
  name: "CgroupTree without cgroup.kill kills by freezing and signalling, and thaws what it froze",
  ignore: !probed,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const probedTree = (await CgroupTree.probe(`jobhead-unit-${crypto.randomUUID().slice(0, 8)}`))!;
    const tree = new CgroupTree(probedTree.path, { hasKill: false });
    const path = tree.create("old-kernel");
    await using fifos = await Fifos.create();
    const ready = await fifos.reader("ready");
    const child = new Deno.Command("sh", {
      args: [
        "-c",
        'echo $$ >"$1/cgroup.procs"; echo ready >"$2"; sleep 1000 & wait',
        "sh",
        path,
        ready.path,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      assert.equal(await ready.text(), "ready\n");
      await Deno.writeTextFile(`${path}/cgroup.freeze`, "1");
      await tree.thaw(path);
      assert.equal(await Deno.readTextFile(`${path}/cgroup.freeze`), "0\n");
      await tree.kill(path);
      assert.equal((await child.status).signal, "SIGKILL");
      assert.equal(await tree.remove(path), true);
    } finally {
      await new CgroupTree(tree.path, { hasKill: true }).remove(path);
      await child.status;
      await tree.close();
    }
  },
});
