/** ITF encoding round-trips, and trace parsing names the JSON path of every problem. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { initialState, step } from "../spec/mod.ts";
import { anyCommand, poolsFor } from "../model/commands.ts";
import { deepEqual } from "../model/equal.ts";
import { fromItf, ItfError, toItf } from "../model/itf.ts";
import { testSeed } from "../model/seed.ts";
import { runSequential } from "../model/runner.ts";
import { type1Machine as m } from "../model/machines/type1.ts";
import { machineNamed } from "../model/machines.ts";
import { parseTrace, sequentialTrace } from "../model/trace.ts";
import { DEFAULT_TOPOLOGY } from "../spec/system.ts";

const commands = fc.array(anyCommand(poolsFor(DEFAULT_TOPOLOGY)), { maxLength: 30 });

Deno.test("ITF round trip of every reachable spec state", () => {
  fc.assert(
    fc.property(commands, (cmds) => {
      let s = initialState();
      for (const c of cmds) {
        s = step(s, c).state;
        const back = fromItf(JSON.parse(JSON.stringify(toItf(s))));
        if (!deepEqual(back, s)) return false;
      }
      return true;
    }),
    { seed: testSeed(), numRuns: 300 },
  );
});

Deno.test("ITF encodes integers as #bigint, maps, sets and null", () => {
  assert.deepEqual(toItf(5), { "#bigint": "5" });
  assert.deepEqual(toItf(new Map([[1, "a"]])), { "#map": [[{ "#bigint": "1" }, "a"]] });
  assert.deepEqual(toItf(new Set([true])), { "#set": [true] });
  assert.deepEqual(fromItf(toItf(null)), null);
  assert.equal(fromItf({ "#bigint": "9007199254740993" }), 9007199254740993n);
  assert.throws(() => toItf(1.5), TypeError);
});

Deno.test("a written trace parses back to the same steps", async () => {
  await fc.assert(
    fc.asyncProperty(commands, async (cmds) => {
      const records = await runSequential(m, cmds);
      const json = sequentialTrace(
        m,
        { machine: "type1", mode: "sequential", quirks: [] },
        initialState(),
        records,
      );
      const trace = parseTrace(JSON.stringify(json), machineNamed);
      assert.equal(trace.steps.length, records.length);
      trace.steps.forEach((s, i) => {
        assert.deepEqual(s.cmd, records[i].cmd);
        assert.ok(deepEqual(s.state, records[i].observed));
        assert.deepEqual(s.ret, records[i].impl.ret);
      });
    }),
    { seed: testSeed(), numRuns: 100 },
  );
});

Deno.test("trace errors name the JSON path", async (t) => {
  const good = sequentialTrace(
    m,
    { machine: "type1", mode: "sequential", quirks: [] },
    initialState(),
    [
      ...(await runSequential(m, [{ op: "type1.attach", container: 1, group: 10 }])),
    ],
  ) as Record<string, unknown>;
  // deno-lint-ignore no-explicit-any -- a JSON document edited in place
  const mutate = (f: (j: any) => void) => {
    const j = structuredClone(good);
    f(j);
    return JSON.stringify(j);
  };
  const cases: [string, string, RegExp][] = [
    ["malformed JSON", "{", /^\$: malformed JSON/],
    [
      "unknown op",
      mutate((j) => (j.states[1]["mbt::actionTaken"] = "type1.frobnicate")),
      /\$\.states\[1\]\.mbt::actionTaken: unknown op "type1.frobnicate"/,
    ],
    [
      "wrong argument type",
      mutate((j) => (j.states[1]["mbt::nondetPicks"].group = "ten")),
      /\$\.states\[1\]\.mbt::nondetPicks\.group: expected an integer/,
    ],
    [
      "missing argument",
      mutate((j) => delete j.states[1]["mbt::nondetPicks"].group),
      /\.group: missing argument/,
    ],
    [
      "extra argument",
      mutate((j) => (j.states[1]["mbt::nondetPicks"].colour = 1)),
      /\.colour: type1\.attach has no argument/,
    ],
    [
      "unknown errno",
      mutate((j) => (j.states[1]["warpspec::ret"] = { err: "EWHAT" })),
      /warpspec::ret\.err: unknown errno/,
    ],
    [
      "unknown quirk",
      mutate((j) => (j["#meta"].quirks = ["noSuchQuirk"])),
      /\$\.#meta\.quirks\[0\]: unknown quirk/,
    ],
    [
      "bad bigint",
      mutate((j) => (j.states[1]["mbt::nondetPicks"].group = { "#bigint": "x" })),
      /#bigint: expected a string of decimal digits/,
    ],
    ["no states", mutate((j) => (j.states = [])), /\$\.states: a trace needs/],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => parseTrace(text, machineNamed),
        (e: unknown) => e instanceof ItfError && message.test(e.message),
      );
    });
  }
});
