import assert from "node:assert/strict";
import { formatSelector, matchesSelector, parseLabels, parseSelector } from "./labels.ts";

Deno.test("parseLabels() reads k=v pairs and refuses what is not one", () => {
  assert.deepEqual(parseLabels("region=us-west, gpu=A100"), { region: "us-west", gpu: "A100" });
  assert.deepEqual(parseLabels(""), {});
  assert.deepEqual(parseLabels("example.com/zone=a"), { "example.com/zone": "a" });
  assert.throws(() => parseLabels("region"), /"region" is not key=value/);
  assert.throws(() => parseLabels("=a"), /is not key=value/);
  assert.throws(() => parseLabels("a=b,a=c"), /given twice/);
  assert.throws(() => parseLabels("a=-b"), /label value "-b"/);
  assert.throws(() => parseLabels("a b=c"), /label key "a b"/);
});

Deno.test("a selector's equality, inequality, in() and !in() match as Ray's do", () => {
  const node = { region: "us-west", gpu: "A100" };
  const matches = (selector: Record<string, string>) =>
    matchesSelector(node, parseSelector(selector));
  assert.equal(matches({}), true);
  assert.equal(matches({ region: "us-west" }), true);
  assert.equal(matches({ region: "us-east" }), false);
  assert.equal(matches({ region: "!us-east" }), true);
  assert.equal(matches({ region: "!us-west" }), false);
  assert.equal(matches({ region: "in(us-east, us-west)" }), true);
  assert.equal(matches({ region: "in(us-east,eu)" }), false);
  assert.equal(matches({ region: "!in(us-east, eu)" }), true);
  assert.equal(matches({ region: "!in(us-west)" }), false);
  // A label the node lacks: an equality fails, a negation holds.
  assert.equal(matches({ zone: "a" }), false);
  assert.equal(matches({ zone: "!a" }), true);
  assert.equal(matches({ region: "us-west", gpu: "!A100" }), false);
});

Deno.test("parseSelector() names the key of a condition it cannot read", () => {
  assert.throws(() => parseSelector({ region: "in()" }), /"region": in\(\) names no value/);
  assert.throws(() => parseSelector({ region: "in(a, -b)" }), /"region": label value "-b"/);
  assert.throws(() => parseSelector({ "bad key": "a" }), /label key "bad key"/);
  assert.throws(() => parseSelector({ region: "a b" }), /"region": label value "a b"/);
});

Deno.test("formatSelector() says a selector as people read it", () => {
  assert.equal(
    formatSelector(parseSelector({ region: "in(a, b)", gpu: "!none", zone: "z" })),
    "region in(a, b), gpu != none, zone=z",
  );
});
