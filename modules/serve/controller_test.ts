import assert from "node:assert/strict";
import { testContext } from "../../tests/module_context.ts";
import { join } from "node:path";
import { Deployment } from "../../kit/deployment_record.ts";
import { type HeadEvent } from "../../kit/events.ts";
import type { ModuleContext } from "../../kit/module.ts";
import { KvServeStore } from "../../storage/serve.ts";
import { ShellSupervisor } from "../../supervision/supervisor.ts";
import { isAlive, processesWithEnv } from "../../tests/harness.ts";
import { waitFor } from "../../tests/poll.ts";
import { LocalReplicaHost } from "./replica_host.ts";
import { DeploymentController } from "./controller.ts";
import type { Replica } from "./replica.ts";
import type { DeploymentDetails } from "./schemas.ts";

/** A head's worth of context for controllers: in-memory KV, real processes in a temp dir. */
async function withHead(fn: (head: TestHead) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-controller-" });
  using kv = await Deno.openKv(":memory:");
  const supervisor = await startSupervisor(dir);
  const { ctx, close } = testContext({ kv, dir, module: "serve", supervisor });
  const head = new TestHead(ctx, supervisor, dir);
  try {
    await fn(head);
  } finally {
    await head.close();
    close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A started supervisor of actors whose files are under `dir`. */
async function startSupervisor(dir: string): Promise<ShellSupervisor> {
  const supervisor = new ShellSupervisor(join(dir, "run"), { cgroup: "off" });
  await supervisor.start();
  return supervisor;
}

/** Controllers over one context; `restart()` replaces the supervisor as a new head would. */
class TestHead {
  ctx: ModuleContext;
  store: KvServeStore<Deployment, Replica>;
  deleted: string[] = [];
  #supervisor: ShellSupervisor;
  #logsDir: string;
  #controllers: DeploymentController[] = [];

  constructor(ctx: ModuleContext, supervisor: ShellSupervisor, dir: string) {
    this.ctx = ctx;
    this.#supervisor = supervisor;
    this.store = new KvServeStore(ctx.kv, ctx.kvPrefix);
    this.#logsDir = join(dir, "serve_logs");
  }

  /** A controller of a new deployment, with `spec` applied. */
  async apply(spec: Record<string, unknown>): Promise<DeploymentController> {
    const deployment: Deployment = {
      name: String(spec.name),
      spec: specOf(spec),
      status: "UPDATING",
      message: "",
      created_at: 0,
      updated_at: 0,
    };
    const controller = this.controller(deployment);
    await controller.update(deployment.spec);
    return controller;
  }

  /** A controller of `deployment`, with the replicas the store holds for it. */
  controller(deployment: Deployment, replicas: Replica[] = []): DeploymentController {
    const host = new LocalReplicaHost({
      supervisor: this.ctx.supervisor,
      logsDir: this.#logsDir,
      nodeId: this.ctx.info.nodeId,
    });
    const controller = new DeploymentController(
      {
        ctx: this.ctx,
        store: this.store,
        hostOf: () => host,
        placeNext: () => host,
        onDeleted: () => this.deleted.push(deployment.name),
      },
      deployment,
      replicas,
    );
    this.#controllers.push(controller);
    return controller;
  }

  /**
   * Stops controlling and watching, as a head that shuts down does (replicas keep running),
   * then takes up the stored deployments with a new supervisor.
   */
  async restart(): Promise<DeploymentController[]> {
    await this.close();
    this.#supervisor = await startSupervisor(this.ctx.config.dataDir);
    this.ctx = { ...this.ctx, supervisor: this.#supervisor };
    const controllers = [];
    for (const deployment of await this.store.listDeployments()) {
      const controller = this.controller(
        deployment,
        await this.store.listReplicas(deployment.name),
      );
      await controller.adopt();
      controllers.push(controller);
    }
    return controllers;
  }

  async close(): Promise<void> {
    await Promise.all(this.#controllers.splice(0).map((c) => c.close()));
    await this.#supervisor.close();
  }

  /** Waits, on the head's events, until `controller`'s details satisfy `predicate`. */
  until(
    controller: DeploymentController,
    predicate: (d: DeploymentDetails) => boolean,
  ): Promise<DeploymentDetails> {
    return new Promise((resolve) => {
      const check = () => {
        const details = controller.details();
        if (!predicate(details)) return;
        off();
        resolve(details);
      };
      const off = this.ctx.events.on(check);
      check();
    });
  }

  /** Waits for the first event on the head's bus that `predicate` accepts. */
  event<T extends HeadEvent>(predicate: (e: HeadEvent) => e is T): Promise<T> {
    return new Promise((resolve) => {
      const off = this.ctx.events.on((e) => {
        if (!predicate(e)) return;
        off();
        resolve(e);
      });
    });
  }

  /** Waits until `controller` is HEALTHY with `count` ready replicas of `version`. */
  healthy(controller: DeploymentController, count: number, version: string) {
    return this.until(controller, (d) =>
      d.status === "HEALTHY" && d.replicas.length === count &&
      d.replicas.every((r) => r.version === version && r.ready));
  }
}

/** A spec as the service hands it to a controller: defaults filled in, a version given. */
function specOf(spec: Record<string, unknown>): Deployment["spec"] {
  return Deployment.shape.spec.parse(spec);
}

/**
 * The pid of actor `id`'s command (`sleep`), not of its supervisor's shells. Its `sh -c`
 * may not have exec'd `sleep` yet when the replica counts as ready, and nothing announces
 * an exec: polled.
 */
async function commandPid(id: string): Promise<number> {
  const pids = await waitFor(`the command of ${id} to be sleep`, async () => {
    const found = [];
    for (const pid of await processesWithEnv("JOBHEAD_ACTOR_ID", id)) {
      const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
      if (cmdline.startsWith("sleep\0")) found.push(pid);
    }
    return found.length > 0 && found;
  });
  assert.equal(pids.length, 1, `the command of ${id}: ${pids}`);
  return pids[0];
}

const SLEEPER = { name: "web", entrypoint: "exec sleep 1000", num_replicas: 2 };

Deno.test({
  name: "DeploymentController keeps the old version serving while the new one cannot start",
  sanitizeOps: true,
  // libc, loaded once for mkfifo, stays loaded for the life of the process by design.
  sanitizeResources: false,
  async fn() {
    await withHead(async (head) => {
      const controller = await head.apply({ ...SLEEPER, version: "v1" });
      const v1 = (await head.healthy(controller, 2, "v1")).replicas;

      // It runs, but never passes its health check, and may not be restarted.
      const broken = {
        ...SLEEPER,
        version: "v2",
        health_check: { command: "exit 1", period_s: 0.01, startup_timeout_s: 0.2 },
        restart_policy: { max_restarts: 0 },
      };
      await controller.update(specOf(broken));
      const halted = await head.until(
        controller,
        (d) => d.replicas.some((r) => r.state === "DEAD"),
      );
      assert.equal(halted.status, "UNHEALTHY");
      assert.match(
        halted.message,
        /is DEAD and will not be restarted: it did not pass its health check within 0.2 s of starting; not restarted: it was restarted 0 times/,
      );
      assert.equal(halted.replicas.length, 3, "one new replica at a time");
      const old = halted.replicas.filter((r) => r.version === "v1");
      assert.deepEqual(old.map((r) => [r.pid, r.ready]), v1.map((r) => [r.pid, true]));
      for (const { pid } of v1) assert.ok(await isAlive(pid!), "the old version still serves");

      // A spec that works: the dead replica makes way and the rollout completes.
      await controller.update(specOf({ ...SLEEPER, version: "v3" }));
      await head.healthy(controller, 2, "v3");
      for (const { pid } of v1) assert.equal(await isAlive(pid!), false);

      await controller.delete();
      assert.deepEqual(head.deleted, ["web"]);
      assert.deepEqual(await head.store.listDeployments(), []);
      assert.deepEqual(await head.store.listReplicas("web"), []);
      const actors = await head.ctx.actors.list({});
      assert.ok(actors.every((a) => a.state === "DEAD"), JSON.stringify(actors));
    });
  },
});

Deno.test({
  name: "DeploymentController.delete() in the middle of a rollout step stops every replica",
  sanitizeOps: true,
  sanitizeResources: false, // libc, as above
  async fn() {
    await withHead(async (head) => {
      const controller = await head.apply({ ...SLEEPER, num_replicas: 1, version: "v1" });
      const [v1] = (await head.healthy(controller, 1, "v1")).replicas;
      // The rollout waits for a new replica that will not pass its check for an hour.
      const health_check = { command: "exit 1", period_s: 0.01, startup_timeout_s: 3600 };
      await controller.update(specOf({ ...SLEEPER, num_replicas: 1, version: "v2", health_check }));
      const rolling = await head.until(
        controller,
        (d) => d.replicas.some((r) => r.version === "v2" && r.state === "ALIVE"),
      );
      await controller.delete();
      assert.deepEqual(head.deleted, ["web"]);
      assert.deepEqual(await head.store.listDeployments(), []);
      for (const { pid } of [v1, ...rolling.replicas]) assert.equal(await isAlive(pid!), false);
    });
  },
});

Deno.test({
  name: "DeploymentController.close() leaves replicas running, and adopt() takes them up again",
  sanitizeOps: true,
  sanitizeResources: false, // libc, as above
  async fn() {
    await withHead(async (head) => {
      const controller = await head.apply({
        ...SLEEPER,
        version: "v1",
        health_check: { command: 'test -n "$PORT"', period_s: 0.01 },
        restart_policy: { initial_backoff_s: 0.01 },
      });
      const identity = (d: DeploymentDetails) =>
        d.replicas.map((r) => [r.actor_id, r.pid, r.num_restarts]).sort();
      const before = await head.healthy(controller, 2, "v1");
      const [adopted] = await head.restart();
      const after = await head.healthy(adopted, 2, "v1");
      assert.deepEqual(identity(after), identity(before), "the same processes, not restarted");

      // Still supervised: a replica whose command is killed is restarted in place.
      const [victim] = after.replicas;
      Deno.kill(await commandPid(victim.actor_id), "SIGKILL");
      const restarted = await head.until(adopted, (d) =>
        d.status === "HEALTHY" &&
        d.replicas.some((r) => r.actor_id === victim.actor_id && r.num_restarts === 1));
      assert.notEqual(
        restarted.replicas.find((r) => r.actor_id === victim.actor_id)!.pid,
        victim.pid,
      );
      await adopted.delete();
    });
  },
});

Deno.test({
  name: "DeploymentController restarts a ready replica once its health check fails in a row",
  sanitizeOps: true,
  sanitizeResources: false, // libc, as above
  async fn() {
    await withHead(async (head) => {
      const sick = join(head.ctx.config.dataDir, "sick");
      const controller = await head.apply({
        ...SLEEPER,
        num_replicas: 1,
        version: "v1",
        health_check: { command: `test ! -e '${sick}'`, period_s: 0.01, failure_threshold: 2 },
        restart_policy: { initial_backoff_s: 0.01 },
      });
      const [first] = (await head.healthy(controller, 1, "v1")).replicas;
      const restarting = head.event((e): e is HeadEvent & { type: "actor" } =>
        e.type === "actor" && e.actor.state === "RESTARTING"
      );
      await Deno.writeTextFile(sick, "");
      const { actor } = await restarting;
      assert.equal(actor.actor_id, first.actor_id);
      assert.equal(actor.death_cause, "its health check failed 2 times in a row");
      assert.equal(await isAlive(first.pid!), false, "it was stopped");

      await Deno.remove(sick);
      const [again] = (await head.healthy(controller, 1, "v1")).replicas;
      assert.equal(again.actor_id, first.actor_id);
      assert.equal(again.num_restarts, 1);
      await controller.delete();
    });
  },
});
