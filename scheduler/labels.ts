/**
 * Node labels and Ray's label selectors (`entrypoint_label_selector`). Pure: no I/O.
 *
 * A selector maps a label key to a condition on its value, as Ray writes them:
 * `"us-west"` (equals), `"!us-west"` (any other value, or no such label),
 * `"in(us-west, us-east)"` (one of), `"!in(us-west, us-east)"` (none of, or no such label).
 * A node matches when every condition holds.
 */

/** A node's labels: key → value. */
export type Labels = Record<string, string>;

/** One condition of a selector, parsed. */
export interface LabelCondition {
  key: string;
  /** The values it names (one for an equality). */
  values: string[];
  /** True: the value must be none of `values`. */
  negated: boolean;
}

/** Ray's label rules: a key is an optional DNS prefix and `/`, then a name; values are names. */
const NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Why `key` is no valid label key; undefined when it is one. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (name === "" || !NAME.test(name) || (prefix !== undefined && !PREFIX.test(prefix))) {
    return `label key ${JSON.stringify(key)} is not a name of at most 63 letters, digits, ` +
      `'-', '_' or '.' (optionally after a DNS prefix and '/')`;
  }
  return undefined;
}

/** Why `value` is no valid label value; undefined when it is one. */
export function labelValueProblem(value: string): string | undefined {
  if (!NAME.test(value)) {
    return `label value ${JSON.stringify(value)} is not at most 63 letters, digits, ` +
      `'-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/**
 * Parses `k=v,k2=v2` (the `--labels` flag). Throws an Error saying what is wrong.
 */
export function parseLabels(text: string): Labels {
  const labels: Labels = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const equals = part.indexOf("=");
    if (equals <= 0) throw new Error(`${JSON.stringify(part)} is not key=value`);
    const key = part.slice(0, equals).trim();
    const value = part.slice(equals + 1).trim();
    const problem = labelKeyProblem(key) ?? labelValueProblem(value);
    if (problem) throw new Error(problem);
    if (key in labels) throw new Error(`label key ${JSON.stringify(key)} is given twice`);
    labels[key] = value;
  }
  return labels;
}

/**
 * Parses a selector as submitted. Throws an Error naming the key and what is wrong with
 * its condition.
 */
export function parseSelector(selector: Record<string, string>): LabelCondition[] {
  return Object.entries(selector).map(([key, raw]) => {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) throw new Error(keyProblem);
    let text = raw.trim();
    const negated = text.startsWith("!");
    if (negated) text = text.slice(1).trim();
    let values: string[];
    const set = /^in\((.*)\)$/.exec(text);
    if (set) {
      values = set[1].split(",").map((v) => v.trim());
      if (values.length === 1 && values[0] === "") {
        throw new Error(`${JSON.stringify(key)}: in() names no value`);
      }
    } else {
      values = [text];
    }
    for (const value of values) {
      const problem = labelValueProblem(value);
      if (problem) throw new Error(`${JSON.stringify(key)}: ${problem}`);
    }
    return { key, values, negated };
  });
}

/** Whether a node with `labels` meets every condition of `selector`. */
export function matchesSelector(labels: Labels, selector: readonly LabelCondition[]): boolean {
  return selector.every((condition) => {
    const value = labels[condition.key];
    const named = value !== undefined && condition.values.includes(value);
    return condition.negated ? !named : named;
  });
}

/** A selector as people read it: `region in(us-west, us-east), gpu != none`. */
export function formatSelector(selector: readonly LabelCondition[]): string {
  return selector.map(({ key, values, negated }) =>
    values.length === 1
      ? `${key}${negated ? " != " : "="}${values[0]}`
      : `${key} ${negated ? "not in" : "in"}(${values.join(", ")})`
  ).join(", ");
}
