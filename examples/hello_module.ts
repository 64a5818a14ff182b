/**
 * A complete jobhead module, to copy from. Load it with
 * `deno task start --module examples/hello_module.ts`, then:
 *
 * - `GET /api/hello` greets, and counts greetings in the module's own KV keys and in
 *   its own metric, `jobhead_hello_greetings_total` of `GET /metrics`;
 * - `GET /api/hello/primes?below=N` counts primes in the head's worker pool, so the
 *   head stays responsive while it computes;
 * - `GET /api/snapshot` shows `data.snapshot.hello`: greetings, and the jobs that
 *   ended since the head started, learnt from the event bus;
 * - the dashboard gains a "Hello" page (`#/m/hello/greeter`, from `hello_view.js`).
 *
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { describeRoute, type HeadModule, type ModuleContext } from "../mod.ts";

/** Largest `below` a primes request may ask for. */
const MAX_BELOW = 50_000_000;

const PrimesQuery = z.object({ below: z.coerce.number().int().min(0).max(MAX_BELOW) });
const Hello = z.object({ hello: z.string(), greetings: z.number().int() });
type Hello = z.infer<typeof Hello>;
const Primes = z.object({ below: z.number().int(), primes: z.number().int() });
type Primes = z.infer<typeof Primes>;

// What GET /api/openapi.json says of the routes: registered with each handler.
const helloDoc = describeRoute({ summary: "Greets, and counts greetings", response: Hello });
const primesDoc = describeRoute({
  summary: "Counts the primes below a number, in the head's worker pool",
  query: PrimesQuery,
  response: Primes,
});

/** Creates the hello module; the head calls this once. */
export function createModule(): HeadModule {
  // State lives here, in the closure: one copy per head.
  let ctx: ModuleContext | undefined;
  let unsubscribe = () => {};
  const jobsEnded: Record<string, number> = {};

  const greetingsKey = () => [...ctx!.kvPrefix, "greetings"];
  const greetings = async () => (await ctx!.kv.get<Deno.KvU64>(greetingsKey())).value?.value ?? 0n;

  return {
    name: "hello",
    minimal: true,
    // A dashboard page: the head serves this file as `/ui/modules/hello/greeter.js`.
    views: [{ id: "greeter", title: "Hello", file: new URL("./hello_view.js", import.meta.url) }],
    routes(context) {
      ctx = context;
      // Served at GET /metrics as jobhead_hello_greetings_total: names get the module's prefix.
      const greeted = context.metrics.counter({
        name: "greetings_total",
        help: "Greetings answered since the head started.",
      });
      return new Hono()
        .get("/api/hello", helloDoc, async (c) => {
          await context.kv.atomic().sum(greetingsKey(), 1n).commit();
          greeted.inc();
          return c.json({ hello: "world", greetings: Number(await greetings()) } satisfies Hello);
        })
        .get("/api/hello/primes", primesDoc, async (c) => {
          const parsed = PrimesQuery.safeParse(c.req.query());
          if (!parsed.success) {
            // The head turns this into a JSON error with status 400; other errors are 500s.
            throw new HTTPException(400, { message: `below: a whole number 0-${MAX_BELOW}` });
          }
          const { below } = parsed.data;
          const count = await context.workers.run<number>(import.meta.url, "countPrimes", [below], {
            signal: context.signal, // the head is shutting down: stop computing
          });
          return c.json({ below, primes: count } satisfies Primes);
        });
    },
    start(context) {
      unsubscribe = context.events.on((event) => {
        if (
          event.type !== "job" || !["SUCCEEDED", "FAILED", "STOPPED"].includes(event.job.status)
        ) {
          return;
        }
        jobsEnded[event.job.status] = (jobsEnded[event.job.status] ?? 0) + 1;
      });
      context.signal.addEventListener("abort", () => unsubscribe(), { once: true });
      context.logger.info("hello module started");
    },
    stop() {
      unsubscribe(); // safe to call twice
    },
    async snapshot() {
      return { greetings: Number(await greetings()), jobs_ended: { ...jobsEnded } };
    },
  };
}

/** Counts the primes below `n` (a sieve): CPU-heavy, so the module runs it in a worker. */
export function countPrimes(n: number): number {
  if (n < 3) return 0;
  const composite = new Uint8Array(n);
  let count = 0;
  for (let i = 2; i < n; i++) {
    if (composite[i]) continue;
    count++;
    for (let j = i * i; j < n; j += i) composite[j] = 1;
  }
  return count;
}
