/**
 * The nodes table of a cluster, in PostgreSQL: one row per node with its agent address,
 * capacity, labels, state (ALIVE or DEAD), epoch and last heartbeat (on the store's
 * clock, so the machines' clocks need not agree). A heartbeat is one UPDATE.
 */
import type postgres from "postgres";
import type { ClusterNode } from "../kit/cluster.ts";
import type { Labels } from "../scheduler/labels.ts";
import type { Resources } from "../scheduler/resources.ts";

/** A node as it registers. */
export interface NodeRegistration {
  name: string;
  id: string;
  address: string;
  total: Resources;
  labels: Labels;
}

/** A node's row: its view, and the store's clock when it was read. */
export interface NodeRow extends ClusterNode {
  epoch: number;
  /** The node shut down gracefully: another process may take its name at once. */
  released: boolean;
}

/** Refused registration: another process is alive under the same name. */
export class NodeNameTakenError extends Error {
  override name = "NodeNameTakenError";
}

/** The channel a change of the nodes table is announced on (payload: the node's name). */
export const NODES_CHANNEL = "jobhead_nodes";

/** The nodes table. */
export class NodeTable {
  #sql: postgres.Sql;

  constructor(sql: postgres.Sql) {
    this.#sql = sql;
  }

  /** Creates the table if it is not there (several processes may start at once). */
  async ensure(): Promise<void> {
    await this.#sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext('jobhead_nodes'))`;
      await tx`create table if not exists jobhead_nodes (
        name text primary key,
        id text not null,
        address text not null,
        total jsonb not null,
        labels jsonb not null,
        state text not null,
        epoch bigint not null,
        released boolean not null default false,
        last_heartbeat timestamptz not null
      )`;
    });
  }

  /**
   * Registers a node, ALIVE with a new epoch. Throws NodeNameTakenError when a process
   * under the same name is alive: heartbeats within `timeoutS`, not released, and of
   * another node id (the same id is the same data directory, whose lock this one holds).
   */
  async register(node: NodeRegistration, timeoutS: number): Promise<number> {
    const rows = await this.#sql`
      insert into jobhead_nodes as n
        (name, id, address, total, labels, state, epoch, released, last_heartbeat)
      values (${node.name}, ${node.id}, ${node.address}, ${this.#sql.json(node.total)},
        ${this.#sql.json(node.labels)}, 'ALIVE', 1, false, now())
      on conflict (name) do update set id = excluded.id, address = excluded.address,
        total = excluded.total, labels = excluded.labels, state = 'ALIVE',
        epoch = n.epoch + 1, released = false, last_heartbeat = now()
      where n.state = 'DEAD' or n.released or n.id = excluded.id
        or n.last_heartbeat < now() - make_interval(secs => ${timeoutS})
      returning epoch`;
    if (rows.length === 0) {
      throw new NodeNameTakenError(
        `a node named "${node.name}" is alive already (it heartbeats); give this one ` +
          `another --name, or stop the other`,
      );
    }
    await this.#notify(node.name);
    return Number(rows[0].epoch);
  }

  /**
   * One heartbeat of the node at `epoch`: false when its row no longer is that ALIVE
   * node (it was declared DEAD, or its name taken): it must fence and register again.
   */
  async heartbeat(name: string, epoch: number): Promise<boolean> {
    const rows = await this.#sql`
      update jobhead_nodes set last_heartbeat = now()
      where name = ${name} and epoch = ${epoch} and state = 'ALIVE' returning 1`;
    return rows.length === 1;
  }

  /** A graceful shutdown: the name is free for the next process at once. */
  async release(name: string, epoch: number): Promise<void> {
    await this.#sql`update jobhead_nodes set released = true
      where name = ${name} and epoch = ${epoch}`;
    await this.#notify(name);
  }

  /** Every node, and the store's clock (ms) at the read. */
  async list(): Promise<{ nodes: NodeRow[]; now: number }> {
    const rows = await this.#sql`
      select name, id, address, total, labels, state, epoch, released,
        (extract(epoch from last_heartbeat) * 1000)::float8 as last_heartbeat,
        (extract(epoch from now()) * 1000)::float8 as now
      from jobhead_nodes order by name`;
    return {
      nodes: rows.map((row) => ({
        name: row.name,
        id: row.id,
        address: row.address,
        total: row.total,
        labels: row.labels,
        state: row.state,
        epoch: Number(row.epoch),
        released: row.released,
        lastHeartbeat: row.last_heartbeat,
      })),
      now: rows[0]?.now ?? Date.now(),
    };
  }

  /**
   * Declares a node DEAD, unless it heartbeated or registered again since `seen` was
   * read. True when this call declared it.
   */
  async markDead(seen: NodeRow): Promise<boolean> {
    const rows = await this.#sql`
      update jobhead_nodes set state = 'DEAD'
      where name = ${seen.name} and epoch = ${seen.epoch} and state = 'ALIVE'
        and (extract(epoch from last_heartbeat) * 1000)::float8 = ${seen.lastHeartbeat}
      returning 1`;
    if (rows.length === 0) return false;
    await this.#notify(seen.name);
    return true;
  }

  async #notify(name: string): Promise<void> {
    await this.#sql`select pg_notify(${NODES_CHANNEL}, ${name})`;
  }
}
