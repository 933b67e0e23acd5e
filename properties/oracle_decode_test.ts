/**
 * What makes the oracle fast must not change what it decides: states decoded sharing the
 * objects of the state before are the states written, and deepEqual with remembered pairs
 * answers as deepEqual without.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { deepEqual } from "../model/equal.ts";
import { fromItf, toItf } from "../model/itf.ts";
import { type1Machine as m } from "../model/machines/type1.ts";
import { testSeed } from "../model/seed.ts";

const runs = fc.array(m.commands(), { minLength: 1, maxLength: 40 });

/** The spec states of a run, each encoded as ITF JSON (through text, as a file gives it). */
function encodedStates(cmds: readonly Parameters<typeof m.step>[1][]) {
  let s = m.initial();
  const states = [s];
  for (const c of cmds) {
    s = m.step(s, c).state;
    states.push(s);
  }
  return states.map((state) => ({ state, json: JSON.parse(JSON.stringify(toItf(state))) }));
}

Deno.test("decoding against the state before gives the state, sharing what did not change", () => {
  fc.assert(
    fc.property(runs, (cmds) => {
      let previous: { json: unknown; value: unknown } | undefined;
      for (const { state, json } of encodedStates(cmds)) {
        const value = fromItf(json, "$", { previous });
        assert.ok(deepEqual(value, state));
        assert.ok(deepEqual(value, fromItf(json)));
        if (previous && deepEqual(previous.value, value)) assert.equal(value, previous.value);
        for (const v of m.vars) {
          const [was, now] = [previous?.value, value].map((x) =>
            (x as Record<string, unknown>)?.[v]
          );
          if (previous && deepEqual(was, now)) assert.equal(now, was, `${v} is shared`);
        }
        previous = { json, value };
      }
    }),
    { seed: testSeed(), numRuns: 200 },
  );
});

Deno.test("decoding against a different shape shares nothing it should not", () => {
  const before = { "#map": [[1, { a: 1 }], [2, { b: [1, 2] }]] };
  const value = fromItf(before, "$", {});
  const after = { "#map": [[2, { a: 1 }], [1, { b: [1, 2] }]] };
  const decoded = fromItf(after, "$", { previous: { json: before, value } });
  assert.ok(deepEqual(decoded, new Map<number, unknown>([[2, { a: 1 }], [1, { b: [1, 2] }]])));
  const list = fromItf([1, 2, 3], "$", { previous: { json: { "#set": [1, 2] }, value: null } });
  assert.deepEqual(list, [1, 2, 3]);
});

Deno.test("deepEqual with remembered pairs answers as without, version after version", () => {
  fc.assert(
    fc.property(runs, runs, (one, other) => {
      const a = encodedStates(one);
      const b = encodedStates(other);
      const proven = new WeakMap<object, object>();
      let previous: { json: unknown; value: unknown } | undefined;
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const spec = a[Math.min(i, a.length - 1)].state;
        const { json } = b[Math.min(i, b.length - 1)];
        const traced = fromItf(json, "$", { previous });
        previous = { json, value: traced };
        assert.equal(deepEqual(spec, traced, proven), deepEqual(spec, traced));
      }
    }),
    { seed: testSeed(), numRuns: 200 },
  );
});
