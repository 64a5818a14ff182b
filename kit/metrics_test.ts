import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { escapeLabelValue, MetricsRegistry } from "./metrics.ts";

Deno.test("escapeLabelValue() escapes backslash, double quote and newline only", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd\te'), 'a\\\\b\\"c\\nd\te');
});

Deno.test("MetricsRegistry.expose() writes HELP, TYPE and escaped label values", async () => {
  const registry = new MetricsRegistry();
  const counter = registry.counter({
    name: "t_requests_total",
    help: "Requests\\answered\nby path",
    labelNames: ["path"],
  });
  counter.inc({ path: 'C:\\dir "x"\nnext' });
  counter.inc({ path: 'C:\\dir "x"\nnext' }, 2);
  const text = await registry.expose();
  assert.equal(
    text,
    "# HELP t_requests_total Requests\\\\answered\\nby path\n" +
      "# TYPE t_requests_total counter\n" +
      't_requests_total{path="C:\\\\dir \\"x\\"\\nnext"} 3\n',
  );
  const [family] = parsePrometheus(text);
  assert.deepEqual(family.metrics, [{ value: "3", labels: { path: 'C:\\dir "x"\nnext' } }]);
});

Deno.test("a histogram writes cumulative buckets up to +Inf, then _sum and _count", async () => {
  const registry = new MetricsRegistry();
  const histogram = registry.histogram({
    name: "t_latency_seconds",
    help: "Latency.",
    labelNames: ["route"],
    buckets: [0.1, 1],
  });
  for (const value of [0.05, 0.1, 0.5, 7]) histogram.observe(value, { route: "/a" });
  assert.equal(
    await registry.expose(),
    "# HELP t_latency_seconds Latency.\n" +
      "# TYPE t_latency_seconds histogram\n" +
      't_latency_seconds_bucket{route="/a",le="0.1"} 2\n' +
      't_latency_seconds_bucket{route="/a",le="1"} 3\n' +
      't_latency_seconds_bucket{route="/a",le="+Inf"} 4\n' +
      't_latency_seconds_sum{route="/a"} 7.65\n' +
      't_latency_seconds_count{route="/a"} 4\n',
  );
});

Deno.test("an unlabelled series is 0 before its first change; collectors run per exposition", async () => {
  const registry = new MetricsRegistry();
  registry.counter({ name: "t_total", help: "T." });
  let reads = 0;
  const gauge = registry.gauge({ name: "t_reads", help: "R.", collect: () => gauge.set(++reads) });
  assert.match(await registry.expose(), /^t_total 0$/m);
  assert.match(await registry.expose(), /^t_reads 2$/m);
});

Deno.test("MetricsRegistry rejects bad names, taken names, wrong labels and a counter going down", () => {
  const registry = new MetricsRegistry();
  assert.throws(() => registry.counter({ name: "bad-name", help: "" }), /Invalid metric name/);
  assert.throws(
    () => registry.histogram({ name: "h", help: "", labelNames: ["le"] }),
    /Invalid label name "le"/,
  );
  const counter = registry.counter({ name: "c_total", help: "", labelNames: ["a"] });
  assert.throws(() => registry.gauge({ name: "c_total", help: "" }), /already registered/);
  assert.throws(() => counter.inc({ b: "x" }), /takes the labels \[a\]/);
  assert.throws(() => counter.inc({ a: "x" }, -1), /cannot go down/);
});

Deno.test("a scope prefixes the names it registers", async () => {
  const registry = new MetricsRegistry();
  registry.scope("jobhead_hello_").counter({ name: "greetings_total", help: "G." }).inc();
  assert.match(await registry.expose(), /^jobhead_hello_greetings_total 1$/m);
});
