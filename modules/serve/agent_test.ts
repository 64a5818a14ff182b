import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../../kit/log.ts";
import type { ExitHandler, SupervisedProcess, SupervisorIdentity } from "../../kit/supervision.ts";
import { ConflictError } from "../../storage/errors.ts";
import { ShellSupervisor } from "../../supervision/supervisor.ts";
import { killProcessesWithEnv, processesWithEnv } from "../../tests/harness.ts";
import { waitFor } from "../../tests/poll.ts";
import { ReplicaAgent } from "./agent.ts";
import { LocalReplicaHost, type ReplicaLaunch } from "./replica_host.ts";

/**
 * A node's replicas whose runs wait at a gate, so that a request can come while one is
 * under way. A look for a replica by its marker opens the gate once it is done.
 */
class GatedHost extends LocalReplicaHost {
  gate = Promise.withResolvers<void>();
  /** Whether a replica was looked for on the node (rather than taken from the run). */
  lookedFor = false;

  override async run(launch: ReplicaLaunch, onExit: ExitHandler): Promise<SupervisedProcess> {
    await this.gate.promise;
    return await super.run(launch, onExit);
  }

  override async adopt(
    deployment: string,
    id: string,
    identity: SupervisorIdentity | null,
    onExit: ExitHandler,
  ): Promise<SupervisedProcess | undefined> {
    this.lookedFor = true;
    try {
      return await super.adopt(deployment, id, identity, onExit);
    } finally {
      this.gate.resolve();
    }
  }
}

/** An agent over a real supervisor in a temp dir; its replicas are killed afterwards. */
async function withAgent(
  fn: (agent: ReplicaAgent, host: GatedHost, launch: ReplicaLaunch) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "jobhead-agent-" });
  const supervisor = new ShellSupervisor(join(dir, "run"), { cgroup: "off" });
  await supervisor.start();
  const host = new GatedHost({ supervisor, logsDir: join(dir, "serve_logs"), nodeId: "node-1" });
  const agent = new ReplicaAgent(host, createLogger("serve"));
  const mark = crypto.randomUUID();
  const launch = {
    id: "servereplica_web_1",
    deployment: "web",
    command: "exec sleep 600",
    env: { AGENT_TEST_MARK: mark },
  };
  try {
    await host.createLog("web", launch.id);
    await fn(agent, host, launch);
    // A supervisor's last acts (its exit file) follow the replica's end by a moment.
    await waitFor("the replica's processes gone", async () => {
      return (await processesWithEnv("AGENT_TEST_MARK", mark)).length === 0;
    }, { timeoutMs: 10_000 });
  } finally {
    agent.close();
    await killProcessesWithEnv("AGENT_TEST_MARK", mark);
    await supervisor.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "ReplicaAgent.adopt() of a replica being run answers with that run's process",
  // libc, loaded once for mkfifo, stays loaded for the life of the process by design.
  sanitizeResources: false,
  fn: () =>
    withAgent(async (agent, host, launch) => {
      // A controller that took over asks for it while the previous one's run is under way.
      const running = agent.run(launch);
      const adopting = agent.adopt("web", launch.id, null);
      if (!host.lookedFor) host.gate.resolve();
      const [ran, adopted] = await Promise.all([running, adopting]);
      assert.deepEqual(adopted, ran);
      // Still known: no second process of it can start.
      await assert.rejects(agent.run(launch), ConflictError);
      await agent.stop(launch.id, 0);
      await agent.end(launch.id); // once its supervisor is reaped
      agent.release(launch.id);
    }),
});

Deno.test({
  name: "ReplicaAgent.fence() kills a replica whose run was under way",
  sanitizeResources: false, // libc, as above
  fn: () =>
    withAgent(async (agent, host, launch) => {
      const running = agent.run(launch);
      const ending = agent.end(launch.id); // once its supervisor is reaped
      const fencing = agent.fence([{ deployment: "web", id: launch.id, identity: null }]);
      if (!host.lookedFor) host.gate.resolve();
      await running;
      assert.deepEqual(await fencing, [launch.id]);
      await ending;
    }),
});

Deno.test({
  name:
    "ReplicaAgent.run() of a replica that ended runs it again; the late release leaves the new run",
  sanitizeResources: false, // libc, as above
  fn: () =>
    withAgent(async (agent, host, launch) => {
      host.gate.resolve();
      await agent.run({ ...launch, command: "exit 3" });
      assert.equal((await agent.end(launch.id)).kind, "exited");
      // The controller restarts it before its release of the first run reaches the node.
      await agent.run(launch);
      agent.release(launch.id);
      // The new run is still the agent's to stop: its `sleep` ends by the stop's SIGTERM, or
      // its supervisor by the SIGKILL that follows at once (not "exit 3").
      const stopped = await agent.stop(launch.id, 0);
      assert.ok(
        stopped.kind === "died" || (stopped.kind === "exited" && stopped.code === -15),
        JSON.stringify(stopped),
      );
      await agent.end(launch.id); // once its supervisor is reaped
      agent.release(launch.id);
    }),
});
