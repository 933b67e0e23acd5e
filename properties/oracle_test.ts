/**
 * The oracle's modes: divergences with values, projected and action-only traces, unknown
 * outcomes followed both ways within a bound, race verdicts that explain themselves, and bad
 * input that exits 2 with one line naming file and JSON path.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { describeDivergence } from "../model/equal.ts";
import { ItfError } from "../model/itf.ts";
import { type1Machine as m } from "../model/machines/type1.ts";
import { machineNamed } from "../model/machines.ts";
import { checkTrace } from "../model/oracle/mod.ts";
import { checkLinearizable } from "../model/oracle/race.ts";
import { runSequential } from "../model/runner.ts";
import { testSeed } from "../model/seed.ts";
import { parseTrace, sequentialTrace } from "../model/trace.ts";
import { runCli } from "./run_cli.ts";

const root = new URL("..", import.meta.url).pathname;

type Cmd = Parameters<typeof m.step>[1];
// deno-lint-ignore no-explicit-any -- ITF documents edited in place
type Doc = any;

const SETUP: Cmd[] = [
  { op: "type1.openGroup", container: 1, group: 10 },
  { op: "type1.attach", container: 1, group: 10 },
  { op: "type1.setIommu", container: 1 },
];
const MAP: Cmd = { op: "type1.map", container: 1, iova: 0, size: 4096, vaddr: 0 };

/** The trace the correct implementation writes for `cmds`, as a JSON document to edit. */
async function traceOf(cmds: readonly Cmd[]): Promise<Doc> {
  const records = await runSequential(m, cmds);
  const meta = { machine: "type1", mode: "sequential" as const, quirks: [] };
  return structuredClone(sequentialTrace(m, meta, m.initial(), records));
}

function judge(doc: Doc, maxBranches?: number) {
  const r = checkTrace(parseTrace(JSON.stringify(doc), machineNamed), { maxBranches });
  return { passed: r.passed, text: r.report().join("\n") };
}

/** Removes the state variables, keeping action, ret and events. */
function actionsOnly(doc: Doc): Doc {
  doc.vars = doc.vars.filter((v: string) => v.includes("::"));
  for (const s of doc.states) for (const v of m.vars) delete s[v];
  return doc;
}

Deno.test("a state divergence shows both values, per variable, and the keys one side lacks", async () => {
  const doc = await traceOf([...SETUP, MAP]);
  const last = doc.states.at(-1);
  last.type1.pins["#map"].push([9, { "#map": [[9, 1]] }]);
  last.iommu.groups["#map"] = last.iommu.groups["#map"].slice(0, 2);
  const { passed, text } = judge(doc);
  assert.equal(passed, false);
  assert.match(text, /FIRST DIVERGENCE: state differs:/);
  assert.match(text, /iommu: at \$\.iommu\.groups\[10\]: spec \{"id":10,.*\}, trace absent/);
  assert.match(text, /\(trace lacks 10, 11, 20, 21\)/);
  assert.match(text, /type1: at \$\.type1\.pins\[9\]: spec absent, trace \[\[9,1\]\]$/m);
  assert.doesNotMatch(text, /type1: .*\(trace/);
});

Deno.test("a divergence in many keys names five and how many there are", () => {
  const spec = { a: new Map([1, 2, 3, 4, 5, 6, 7].map((k) => [k, k])), b: new Set([1, 2]) };
  const trace = { a: new Map([[9, 9]]), b: new Set([2, 3]) };
  assert.deepEqual(describeDivergence(spec, trace, ["spec", "trace"]), [
    "a: at $.a[1]: spec 1, trace absent (trace lacks 1, 2, 3, 4, 5, … (7 in all); trace has extra 9)",
    "b: at $.b: spec [1,2], trace [2,3] (trace lacks 1; trace has extra 3)",
  ]);
  assert.deepEqual(describeDivergence(spec, spec, ["spec", "trace"]), []);
});

Deno.test("a huge value is cut short in the report", async () => {
  const doc = await traceOf([...SETUP]);
  doc.states.at(-1).type1.containers["#map"][0][1].mm = "x".repeat(5000);
  const { text } = judge(doc);
  const line = text.split("\n").find((l) => l.includes("containers[1].mm"))!;
  assert.ok(line.length < 400, line);
  assert.match(line, /trace "x+…/);
});

/** Makes `doc` a trace that records only `type1.containers` of each state. */
function observeContainersOnly(doc: Doc): void {
  doc["#meta"]["vars-observed"] = ["type1.containers"];
  for (const s of doc.states) {
    s.type1 = { containers: s.type1.containers };
    delete s.iommu;
  }
}

Deno.test("vars-observed: only the declared fields are compared, the spec supplies the rest", async () => {
  const doc = await traceOf([...SETUP, MAP]);
  observeContainersOnly(doc);
  const ok = judge(doc);
  assert.equal(ok.passed, true, ok.text);
  assert.match(ok.text, /^observed: type1\.containers \(the spec supplies the rest\)/);
  doc.states[3].type1.containers["#map"][0][1].iommuSet = false;
  const bad = judge(doc);
  assert.equal(bad.passed, false);
  assert.match(
    bad.text,
    /✗ {3}3 .*type1: at \$\.type1\.containers\[1\]\.iommuSet: spec true, trace false/s,
  );
});

Deno.test("vars-observed is validated against the spec's state", async () => {
  const doc = await traceOf(SETUP);
  const cases: [unknown, RegExp][] = [
    [["type1.nope"], /vars-observed"\]\[0\]: type1 has no field "nope" \(its fields: containers,/],
    [["memory"], /\[0\]: the type1 state has no field "memory" \(its fields: iommu, type1\)/],
    [["type1..pins"], /\[0\]: expected a field path like "iommu\.domains"/],
    ["type1", /vars-observed"\]: expected a list of field paths/],
  ];
  for (const [paths, message] of cases) {
    doc["#meta"]["vars-observed"] = paths;
    assert.throws(
      () => parseTrace(JSON.stringify(doc), machineNamed),
      (e: unknown) => e instanceof ItfError && message.test(e.message),
    );
  }
  for (const paths of [["type1", "type1.pins"], ["type1.pins", "type1"]]) {
    doc["#meta"]["vars-observed"] = paths;
    assert.deepEqual(parseTrace(JSON.stringify(doc), machineNamed).projection, { type1: true });
  }
  doc["#meta"]["vars-observed"] = ["type1.pins", "iommu.buffers"];
  assert.deepEqual(
    parseTrace(JSON.stringify(doc), machineNamed).projection,
    { type1: { pins: true }, iommu: { buffers: true } },
  );
  doc["#meta"]["vars-observed"] = ["type1", "type1.nope"];
  assert.throws(
    () => parseTrace(JSON.stringify(doc), machineNamed),
    (e: unknown) => e instanceof ItfError && /\[1\]: type1 has no field "nope"/.test(e.message),
  );
  doc["#meta"]["vars-observed"] = ["type1.pins"];
  delete doc.states[2].type1.pins;
  assert.throws(
    () => parseTrace(JSON.stringify(doc), machineNamed),
    (e: unknown) =>
      e instanceof ItfError &&
      /\$\.states\[2\]\.type1\.pins: missing observed field/.test(e.message),
  );
});

Deno.test("a trace of actions, returns and events only is judged on those", async () => {
  const doc = actionsOnly(await traceOf([...SETUP, MAP]));
  const ok = judge(doc);
  assert.equal(ok.passed, true, ok.text);
  assert.match(ok.text, /observed: actions, returns and events only/);
  doc.states[4]["warpspec::ret"] = { err: "EEXIST" };
  const bad = judge(doc);
  assert.equal(bad.passed, false);
  assert.match(bad.text, /ret differs: spec ok 0, trace err EEXIST/);
});

Deno.test("every correct trace conforms in every mode, with any steps marked unknown", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(m.commands(), { maxLength: 30 }),
      fc.constantFrom("whole", "type1.containers", "none"),
      fc.array(fc.nat(), { maxLength: 3 }),
      async (cmds, mode, unknown) => {
        const doc = await traceOf(cmds);
        if (mode === "none") actionsOnly(doc);
        if (mode === "type1.containers") {
          doc["#meta"]["vars-observed"] = [mode];
          for (const s of doc.states) s.type1 = { containers: s.type1.containers };
        }
        for (const k of unknown) {
          if (doc.states.length > 1) {
            doc.states[1 + (k % (doc.states.length - 1))]["warpspec::ret"] = { unknown: true };
          }
        }
        const r = judge(doc);
        assert.equal(r.passed, true, r.text);
      },
    ),
    { seed: testSeed(), numRuns: 150 },
  );
});

Deno.test("a changed ret is found in every mode", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(m.commands(), { minLength: 1, maxLength: 30 }),
      fc.constantFrom("whole", "type1.containers", "none"),
      fc.nat(),
      async (cmds, mode, k) => {
        const doc = await traceOf(cmds);
        if (mode === "none") actionsOnly(doc);
        if (mode === "type1.containers") doc["#meta"]["vars-observed"] = [mode];
        const s = doc.states[1 + (k % (doc.states.length - 1))];
        s["warpspec::ret"] = "ok" in s["warpspec::ret"] ? { err: "EIO" } : { ok: "changed" };
        const r = judge(doc);
        assert.equal(r.passed, false);
        assert.match(r.text, /FIRST DIVERGENCE: ret differs/);
      },
    ),
    { seed: testSeed(), numRuns: 100 },
  );
});

Deno.test("invariants are checked on the spec's state when the trace has none", async () => {
  const doc = actionsOnly(await traceOf(SETUP));
  const trace = parseTrace(JSON.stringify(doc), machineNamed);
  const broken = { ...m, violations: () => ["planted: always broken"] } as typeof trace.machine;
  const r = checkTrace({ ...trace, machine: broken });
  assert.equal(r.passed, false);
  assert.match(r.report().join("\n"), /the spec's state breaks invariant planted: always broken/);
});

Deno.test("unknown outcomes: both branches followed, the survivors reported", async (t) => {
  // A second identical MAP_DMA: EEXIST if the first took effect, ok if it did not.
  const base = actionsOnly(await traceOf([...SETUP, MAP, MAP]));
  base.states[4]["warpspec::ret"] = { unknown: true };
  await t.step("took effect", () => {
    const r = judge(base);
    assert.equal(r.passed, true, r.text);
    assert.match(r.text, /unknown outcome of step 4: consistent if it had taken effect/);
  });
  await t.step("did not take effect", () => {
    const doc = structuredClone(base);
    doc.states[5]["warpspec::ret"] = { ok: { "#bigint": "0" } };
    const r = judge(doc);
    assert.equal(r.passed, true, r.text);
    assert.match(r.text, /step 4: consistent if it had not taken effect/);
  });
  await t.step("either", () => {
    const doc = structuredClone(base);
    doc.states.pop();
    const r = judge(doc);
    assert.equal(r.passed, true, r.text);
    assert.match(r.text, /step 4: consistent if it had or had not/);
  });
  await t.step("neither", () => {
    const doc = structuredClone(base);
    doc.states[5]["warpspec::ret"] = { err: "EBUSY" };
    const r = judge(doc);
    assert.equal(r.passed, false);
    assert.match(r.text, /if step 4 took effect: ret differs: spec err EEXIST, trace err EBUSY/);
    assert.match(r.text, /if step 4 did not: ret differs: spec ok 0, trace err EBUSY/);
  });
  await t.step("a recorded state decides at once", async () => {
    const doc = await traceOf([...SETUP, MAP]);
    doc.states[4]["warpspec::ret"] = { unknown: true };
    const r = judge(doc);
    assert.equal(r.passed, true, r.text);
    assert.match(r.text, /step 4: consistent if it had taken effect/);
  });
  await t.step("the marker is exactly {unknown: true}", () => {
    const doc = structuredClone(base);
    doc.states[4]["warpspec::ret"] = { unknown: "maybe" };
    assert.throws(
      () => parseTrace(JSON.stringify(doc), machineNamed),
      (e: unknown) =>
        e instanceof ItfError && /states\[4\]\.warpspec::ret: an unknown outcome is exactly/.test(
          e.message,
        ),
    );
  });
});

Deno.test("unknown outcomes: the branching is bounded", async () => {
  // Maps of distinct pages, each unknown: 2^k states stay possible until the bound stops it.
  const maps: Cmd[] = [0, 1, 2, 3, 4].map((k) => ({ ...MAP, iova: k * 4096, vaddr: k * 4096 }));
  const doc = actionsOnly(await traceOf([...SETUP, ...maps]));
  for (let i = 4; i < doc.states.length; i++) doc.states[i]["warpspec::ret"] = { unknown: true };
  assert.equal(judge(doc).passed, true);
  const r = judge(doc, 8);
  assert.equal(r.passed, false);
  assert.match(r.text, /✗ undecided: more than 8 spec states are consistent .* after step 7/);
});

Deno.test("race: not linearizable names the longest prefix and why each next operation fails", async () => {
  const quirky = await Deno.readTextFile(
    `${root}fixtures/counterexamples/shareWithoutGroupLock.itf.json`,
  );
  const r = checkTrace(parseTrace(quirky, machineNamed));
  assert.equal(r.passed, false);
  const text = r.report().join("\n");
  const prefix = /longest linearizable prefix \((\d+) of (\d+)\): (actor\d#\d ?)+\n/.exec(text);
  assert.ok(prefix && Number(prefix[1]) < Number(prefix[2]), text);
  // Each operation that could come next, and why it cannot: its return value, or an order.
  const next = text.split("then:\n")[1]?.split("\n") ?? [];
  assert.ok(next.length > 0, text);
  for (const line of next) {
    assert.match(line, /^ {4}actor\d#\d \S+\(.*\): (ret differs|program order|real time): /);
  }
  // The racing attach or share the spec refuses succeeded in the history.
  assert.match(text, /: ret differs: spec err E[A-Z]+, history ok \d+$/m, text);
  const transient = await Deno.readTextFile(
    `${root}fixtures/counterexamples/unshareBeforeUndo.itf.json`,
  );
  const ok = checkTrace(parseTrace(transient, machineNamed));
  assert.equal(ok.passed, true, "its violation is transient: the history cannot show it");
});

Deno.test("race: an operation of unknown outcome may take effect or not", async () => {
  const start = SETUP.reduce((s, c) => m.step(s, c).state, m.initial());
  const mine = m.step(start, MAP);
  const op = (actor: string, ret = mine.ret) => ({
    actor,
    index: 0,
    cmd: MAP,
    invoked: 0,
    returned: 1,
    ret,
    events: [],
    observed: mine.state,
  });
  // Both map the same page and both say they did: only one can have.
  const [a, b] = [op("actor1"), op("actor2")];
  assert.equal(checkLinearizable(m, start, [a, b], mine.state).order, undefined);
  const found = checkLinearizable(m, start, [a, b], mine.state, { unknown: new Set([a]) });
  assert.deepEqual(found.order, [b]);
  assert.deepEqual(found.skipped, [a]);

  const doc = JSON.parse(
    await Deno.readTextFile(`${root}fixtures/counterexamples/shareWithoutGroupLock.itf.json`),
  );
  // The racing share the spec refuses: of unknown outcome, it may be skipped, but its effect
  // (the owner's share count) is in the end state.
  const share = doc.states.findIndex((s: Doc) => s["mbt::actionTaken"] === "iommu.share");
  doc.states[share]["warpspec::ret"] = { unknown: true };
  const r = judge(doc);
  assert.equal(r.passed, false, "its share's effect is in the end state whatever it returned");
  const all = doc.states.length - 1;
  assert.match(
    r.text,
    new RegExp(
      `prefix \\(${all} of ${all}\\).*\n.*every operation fits in that order, but the end state`,
    ),
  );
});

Deno.test("race: vars-observed compares the observed part of the end state", async () => {
  const doc = JSON.parse(
    await Deno.readTextFile(`${root}fixtures/counterexamples/unshareBeforeUndo.itf.json`),
  );
  observeContainersOnly(doc);
  const ok = judge(doc);
  assert.equal(ok.passed, true, ok.text);
  doc.states.at(-1).type1.containers["#map"][0][1].iommuSet = !doc.states.at(-1).type1
    .containers["#map"][0][1].iommuSet;
  const bad = judge(doc);
  assert.equal(bad.passed, false);
  const all = doc.states.length - 1;
  assert.match(bad.text, new RegExp(`longest linearizable prefix \\(${all} of ${all}\\)`));
  assert.match(
    bad.text,
    /every operation fits in that order, but the end state differs:\n {4}type1: at \$\.type1\.containers\[1\]\.iommuSet: spec (true|false), history (true|false)/,
  );
});

Deno.test("bad input: exit 2, one line naming file and JSON path; -h exits 0", async (t) => {
  const good = await traceOf(SETUP);
  const cases: [string, (j: Doc) => void, RegExp][] = [
    ["a 40-digit #bigint", (j) => {
      j.states[2]["mbt::nondetPicks"].container = { "#bigint": "1".repeat(40) };
    }, /\$\.states\[2\]\.mbt::nondetPicks\.container\.#bigint: 1{40} is beyond ±\(2\^53 − 1\)/],
    ["a bare 2^53 + 1", (j) => {
      j.states[2]["mbt::nondetPicks"].container = 9007199254740993;
    }, /\$\.states\[2\]\.mbt::nondetPicks\.container: number 9007199254740992 is beyond/],
    [
      "a state field of the wrong type",
      (j) => {
        j.states[1].type1.containers = 5;
      },
      /\$\.states\[1\]\.type1\.containers: expected a map, as the spec's state has there, got an integer/,
    ],
    ["#meta.format", (j) => (j["#meta"].format = "JSON"), /\$\.#meta\.format: expected "ITF"/],
    [
      "a state's #meta.index",
      (j) => (j.states[2]["#meta"].index = 7),
      /\$\.states\[2\]\.#meta\.index: expected 2/,
    ],
    [
      "an unknown variable",
      (j) => j.vars.push("memory"),
      /\$\.vars\[6\]: unknown variable "memory"/,
    ],
    [
      "nesting 3000 levels deep",
      (j) => {
        j.states[1].type1.deviceFds = Array.from({ length: 3000 }).reduce((v) => [v], []);
      },
      /\$\.states\[1\]\.type1\.deviceFds(\[0\])+…: nested more than 1000 levels deep/,
    ],
  ];
  for (const [name, edit, message] of cases) {
    await t.step(name, async () => {
      const doc = structuredClone(good);
      edit(doc);
      const file = await Deno.makeTempFile({ suffix: ".itf.json" });
      await Deno.writeTextFile(file, JSON.stringify(doc));
      const r = await runCli("oracle", file);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].startsWith(`oracle: error: ${file}: `), lines[0]);
      assert.match(lines[0], message);
    });
  }
  await t.step("--max-branches 0", async () => {
    const r = await runCli(
      "oracle",
      "--max-branches",
      "0",
      `${root}fixtures/counterexamples/skipUndoOnDetach.itf.json`,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^oracle: error: --max-branches must be at least 1\n$/);
  });
  await t.step("-h", async () => {
    const r = await runCli("oracle", "-h");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: deno task oracle/);
  });
});

Deno.test("race: setup commands with placeholders are resolved against the spec's state, as the race ran them", async () => {
  // Recorded before the fix of its race: its setup binds a PASID through placeholders
  // (`by=-1, pasid=-1`), and its history is not linearizable.
  const text = await Deno.readTextFile(
    `${root}fixtures/race-scenarios/sdmdev-race-notify-while-the-parent-goes.itf.json`,
  );
  assert.match(text, /"sdmdev\.bindPasid"/);
  const r = checkTrace(parseTrace(text, machineNamed));
  const report = r.report().join("\n");
  assert.doesNotMatch(report, /the state after the setup differs/);
  assert.match(report, /not linearizable[\s\S]*longest linearizable prefix \(4 of 8\)/);
});

Deno.test("race: a history of 31 operations, the most the linearizer takes, can be linearizable", () => {
  // Thirty-one failing MAP_DMAs of one actor (a length the iova rules refuse): each returns
  // what the spec says, so their program order explains them.
  const bad = { ...MAP, size: 0 };
  const start = SETUP.reduce((s, c) => m.step(s, c).state, m.initial());
  const r = m.step(start, bad);
  assert.deepEqual(r.ret, { err: "EINVAL" });
  const history = Array.from({ length: 31 }, (_, index) => ({
    actor: "actor1",
    index,
    cmd: bad,
    invoked: index,
    returned: index + 1,
    ret: r.ret,
    events: [],
    observed: start,
  }));
  assert.equal(checkLinearizable(m, start, history, start).order?.length, 31);
  assert.throws(() => checkLinearizable(m, start, [...history, history[0]], start), RangeError);
});
