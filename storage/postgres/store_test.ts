import assert from "node:assert/strict";
import { StoreUnavailableError } from "../errors.ts";
import { createTestDatabase, startPrivateServer } from "../../tests/postgres.ts";
import { waitFor } from "../../tests/poll.ts";
import { openPostgresStore, SCHEMA_VERSION, StoreRefusedError } from "./mod.ts";

/** Asserts `promise` rejects with a StoreRefusedError of one line matching `pattern`. */
async function assertRefused(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.ok(err instanceof StoreRefusedError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

Deno.test("openPostgresStore: creates the schema once, then opens what is there", async () => {
  const db = await createTestDatabase();
  const stores = await Promise.all(
    [1, 2, 3].map(() => openPostgresStore(db.url, { password: db.password, token: "t" })),
  );
  try {
    await stores[0].kv.set(["shared"], "yes");
    assert.equal((await stores[2].kv.get(["shared"])).value, "yes");
    const [row] = await stores[1].sql`SELECT value FROM jobhead_meta WHERE name = 'schema_version'`;
    assert.equal(Number(row.value), SCHEMA_VERSION);
  } finally {
    for (const store of stores) await store.close();
  }
});

Deno.test("openPostgresStore: refuses a bad URL, a wrong password, an unreachable server, a missing database, naming the store with the password masked", async () => {
  const db = await createTestDatabase();
  await assertRefused(openPostgresStore("postgres://"), /not a PostgreSQL URL/);
  await assertRefused(openPostgresStore("mysql://u@h/db"), /the store mysql:\/\/u@h\/db is not/);
  await assertRefused(openPostgresStore("not a url"), /not a valid URL/);
  const wrong = db.url.replace("jobhead@", "jobhead:not-it@");
  await assertRefused(
    openPostgresStore(wrong),
    /^the store postgres:\/\/jobhead:\*\*\*@127\.0\.0\.1:\d+\/\w+ refused the password of user "jobhead"$/,
  );
  await assertRefused(openPostgresStore(db.url, { password: "not-it" }), /refused the password/);
  // A port nothing listens on (the server's, plus one, is the test's guess; checked first).
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  await assertRefused(
    openPostgresStore(`postgres://jobhead:secret@127.0.0.1:${port}/x`),
    new RegExp(`^cannot reach the store postgres://jobhead:\\*\\*\\*@127\\.0\\.0\\.1:${port}/x: `),
  );
  await assertRefused(
    openPostgresStore(db.url.replace(/\/\w+$/, "/no_such_db"), { password: db.password }),
    /has no database "no_such_db"/,
  );
});

Deno.test("openPostgresStore: refuses a store of a newer schema, and one of another cluster", async () => {
  const db = await createTestDatabase();
  const store = await openPostgresStore(db.url, { password: db.password, token: "cluster-a" });
  try {
    // The same token opens it again; another, or none, is refused.
    await (await openPostgresStore(db.url, { password: db.password, token: "cluster-a" })).close();
    await assertRefused(
      openPostgresStore(db.url, { password: db.password, token: "cluster-b" }),
      /belongs to another cluster/,
    );
    await assertRefused(openPostgresStore(db.url, { password: db.password }), /another cluster/);
    const [meta] = await store
      .sql`SELECT value FROM jobhead_meta WHERE name = 'cluster_fingerprint'`;
    assert.doesNotMatch(meta.value, /cluster-a/);
    await store.sql`UPDATE jobhead_meta SET value = ${SCHEMA_VERSION + 1}
      WHERE name = 'schema_version'`;
    await assertRefused(
      openPostgresStore(db.url, { password: db.password, token: "cluster-a" }),
      new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this jobhead's`),
    );
  } finally {
    await store.close();
  }
  // A store made without a token takes processes without one only.
  const open = await createTestDatabase();
  await (await openPostgresStore(open.url, { password: open.password })).close();
  await (await openPostgresStore(open.url, { password: open.password })).close();
  await assertRefused(
    openPostgresStore(open.url, { password: open.password, token: "late" }),
    /created with no token/,
  );
});

Deno.test("listen and notify: payloads reach every listener of the channel, in order", async () => {
  const db = await createTestDatabase();
  const a = await openPostgresStore(db.url, { password: db.password });
  const b = await openPostgresStore(db.url, { password: db.password });
  try {
    const heard: string[] = [];
    const subscription = await b.listen("jobs", (payload) => heard.push(payload));
    const other: string[] = [];
    const otherSubscription = await b.listen("nodes", (payload) => other.push(payload));
    for (let i = 0; i < 20; i++) await a.notify("jobs", `job-${i}`);
    const big = "x".repeat(7_999);
    await a.notify("jobs", big);
    await assert.rejects(a.notify("jobs", "y".repeat(8_000)), TypeError);
    const expected = [...Array.from({ length: 20 }, (_, i) => `job-${i}`), big];
    await waitFor("the notifications", () => Promise.resolve(heard.length >= expected.length));
    assert.deepEqual(heard, expected);
    assert.deepEqual(other, []);
    await subscription.unlisten();
    await otherSubscription.unlisten();
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("PostgreSQL restarted: calls fail with StoreUnavailableError while it is away, then work again, and LISTEN is made again", async () => {
  await using server = await startPrivateServer();
  const db = await server.createDatabase();
  const changes: boolean[] = [];
  const store = await openPostgresStore(db.url, {
    password: db.password,
    onAvailability: (available) => changes.push(available),
  });
  try {
    await store.kv.set(["before"], 1);
    let listens = 0;
    const heard: string[] = [];
    const subscription = await store.listen("ch", (p) => heard.push(p), () => listens++);
    await server.restart(async () => {
      await assert.rejects(store.kv.get(["before"]), StoreUnavailableError);
      await assert.rejects(store.kv.set(["during"], 1), StoreUnavailableError);
      await assert.rejects(store.notify("ch", "lost"), StoreUnavailableError);
      assert.equal(store.available, false);
    });
    // Back: calls work again once the back-off has passed.
    const entry = await waitFor("the store to answer again", async () => {
      try {
        return await store.kv.get<number>(["before"]);
      } catch (err) {
        if (err instanceof StoreUnavailableError) return undefined;
        throw err;
      }
    });
    assert.equal(entry.value, 1);
    assert.equal(store.available, true);
    assert.deepEqual(changes, [false, true]);
    await waitFor("LISTEN to be made again", () => Promise.resolve(listens >= 2));
    await store.notify("ch", "after");
    await waitFor("the notification after the restart", () => Promise.resolve(heard.length > 0));
    assert.deepEqual(heard, ["after"]);
    await subscription.unlisten();
  } finally {
    await store.close();
  }
});
