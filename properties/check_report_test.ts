/**
 * The pure parts of `check`: how work is cut into pieces (shards, workers) and merged back,
 * the worker pool, fuzz suites in case ranges, the JUnit and JSON reports (the XML parsed by Python's ElementTree), the
 * status line.
 */
import assert from "node:assert/strict";
import { suiteNamed } from "../model/machines.ts";
import type { Suite } from "../model/machines.ts";
import { mergePieces, type PieceResult, planPieces } from "../model/check/plan.ts";
import { WorkerPool } from "../model/check/pool.ts";
import type { PieceJob } from "../model/check/worker.ts";
import { duration, statusLine } from "../model/check/progress.ts";
import { type CheckOutcome, jsonReport, junitXml, xmlEscape } from "../model/check/report.ts";
import { runSuite, type SuiteReport } from "../model/suites.ts";

const type1 = suiteNamed("type1")!;
const qmRace = suiteNamed("qm-race")!;
const zipFuzz = suiteNamed("zip-fuzz")!;
const compressFuzz = suiteNamed("zip-compress-fuzz")!;
const ALL = [type1, qmRace, zipFuzz, compressFuzz];
const runsOf = (s: Suite) => (s.mode === "fuzz" ? 7 : 101);

/** Every (suite, run index) a plan covers, each once or the test fails. */
function coveredRuns(pieces: ReturnType<typeof planPieces>): Map<string, number[]> {
  const runs = new Map<string, number[]>();
  for (const p of pieces) {
    const list = runs.get(p.suite.name) ?? [];
    for (let i = p.from; i < p.from + p.runs; i++) list.push(i);
    runs.set(p.suite.name, list);
  }
  return runs;
}

Deno.test("plan: shards split every suite, together exactly once", () => {
  for (const count of [1, 2, 3, 5, 9]) {
    const all = new Map<string, number[]>();
    for (let index = 1; index <= count; index++) {
      const pieces = planPieces(ALL, runsOf, 1, { index, count });
      assert.ok(pieces.every((p, id) => p.id === id && p.runs > 0));
      for (const [name, runs] of coveredRuns(pieces)) {
        all.set(name, [...all.get(name) ?? [], ...runs]);
      }
    }
    for (const s of ALL) {
      const runs = (all.get(s.name) ?? []).sort((a, b) => a - b);
      assert.deepEqual(runs, [...Array(runsOf(s)).keys()], `${s.name} with ${count} shards`);
    }
  }
  const second = planPieces(ALL, runsOf, 1, { index: 2, count: 2 });
  assert.deepEqual(
    second.map((p) => [p.suite.name, p.from, p.runs]),
    [["type1", 50, 51], ["qm-race", 50, 51], ["zip-fuzz", 3, 4], ["zip-compress-fuzz", 3, 4]],
  );
  assert.deepEqual(
    planPieces([zipFuzz], runsOf, 1, { index: 1, count: 9 }),
    [],
    "7 runs, 9 shards",
  );
});

Deno.test("plan: workers cut only when pieces are fewer than workers", () => {
  assert.equal(planPieces(ALL, runsOf, 2).length, 4);
  const one = planPieces([type1], runsOf, 4);
  assert.deepEqual(one.map((p) => [p.from, p.runs]), [[0, 25], [25, 25], [50, 25], [75, 26]]);
  const mixed = planPieces([type1, zipFuzz], runsOf, 3);
  assert.deepEqual(mixed.map((p) => [p.suite.name, p.from, p.runs]), [
    ["type1", 0, 50],
    ["type1", 50, 51],
    ["zip-fuzz", 0, 3],
    ["zip-fuzz", 3, 4],
  ]);
  assert.deepEqual([...coveredRuns(planPieces([type1], () => 3, 8)).get("type1")!], [0, 1, 2]);
});

function result(piece: PieceResult["piece"], runs: number, failed = false): PieceResult {
  const report: SuiteReport = {
    suite: piece.suite.name,
    runs,
    commands: runs * 10,
    ms: 5,
    seed: 1,
    failure: failed ? { violation: `at ${piece.from}`, trace: {}, length: 2 } : undefined,
  };
  return { piece, report };
}

Deno.test("merge: a suite is decided by its first failing piece once every piece before it passed", () => {
  const pieces = planPieces([type1], runsOf, 4);
  const results = new Map<number, PieceResult>();
  results.set(2, result(pieces[2], 3, true));
  assert.equal(mergePieces(pieces, results), undefined, "pieces 0 and 1 may fail earlier");
  results.set(0, result(pieces[0], 25));
  results.set(1, result(pieces[1], 25));
  const m = mergePieces(pieces, results)!;
  assert.equal(m.report.failure?.violation, "at 50");
  assert.equal(m.report.runs, 53);
  assert.equal(m.report.commands, 530);
  assert.equal(m.counted.length, 3, "piece 3 does not count");
  results.set(2, result(pieces[2], 25));
  assert.equal(mergePieces(pieces, results), undefined, "piece 3 still running");
  results.set(3, result(pieces[3], 26));
  const passed = mergePieces(pieces, results)!;
  assert.equal(passed.report.failure, undefined);
  assert.equal(passed.report.runs, 101);
  assert.equal(passed.report.ms, 20);
});

const NASTY = `a<b>&"c" 'd'\u0001\u0000 \uD800 ]]> \r\nline2\tend`;

const OUTCOME: CheckOutcome = {
  seed: 42,
  quirks: ["unshareUnderflow"],
  sched: "random",
  workers: 2,
  shard: { index: 1, count: 3 },
  expectFailure: false,
  interrupted: false,
  started: new Date("2026-01-02T03:04:05Z"),
  wallMs: 1234,
  suites: [
    { suite: "type1", status: "passed", runs: 10, commands: 100, ms: 500 },
    {
      suite: "type1-race",
      status: "failed",
      runs: 3,
      commands: 30,
      ms: 700,
      failure: {
        violation: NASTY,
        seed: 42,
        path: "2:0:1",
        counterexample: "out/x & <y>.itf.json",
        length: 4,
        replay: "npm run replay -- --seed 42 --path 2:0:1 --suite type1-race",
      },
    },
    { suite: "stack", status: "interrupted", runs: 1, ms: 9 },
  ],
};

/** An XML element as ElementTree sees it. */
interface El {
  tag: string;
  attrib: Record<string, string>;
  text: string | null;
  children: El[];
}

/** Parses `xml` with Python's ElementTree (which rejects anything not well-formed). */
async function parseXml(xml: string): Promise<El> {
  const script = `
import json, sys, xml.etree.ElementTree as ET
def conv(e): return {"tag": e.tag, "attrib": e.attrib, "text": e.text, "children": [conv(c) for c in e]}
print(json.dumps(conv(ET.fromstring(sys.stdin.buffer.read()))))`;
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(xml));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `not well-formed XML: ${dec.decode(out.stderr)}`);
  return JSON.parse(dec.decode(out.stdout));
}

const child = (e: El, tag: string) => e.children.filter((c) => c.tag === tag);

Deno.test("report junit: testsuites/testsuite/testcase, failure with violation, seed, path, file", async () => {
  const root = await parseXml(junitXml(OUTCOME));
  assert.equal(root.tag, "testsuites");
  assert.deepEqual(
    [root.attrib.tests, root.attrib.failures, root.attrib.skipped, root.attrib.time],
    ["3", "1", "1", "1.234"],
  );
  const [suite] = child(root, "testsuite");
  assert.equal(suite.attrib.name, "warpspec check (shard 1/3)");
  assert.equal(suite.attrib.timestamp, "2026-01-02T03:04:05");
  const props = Object.fromEntries(
    child(child(suite, "properties")[0], "property").map((p) => [p.attrib.name, p.attrib.value]),
  );
  assert.equal(props.seed, "42");
  assert.equal(props.quirks, "unshareUnderflow");
  const cases = child(suite, "testcase");
  assert.deepEqual(cases.map((c) => c.attrib.name), ["type1", "type1-race", "stack"]);
  assert.deepEqual(cases.map((c) => c.attrib.time), ["0.500", "0.700", "0.009"]);
  assert.deepEqual(child(cases[0], "failure"), []);
  const [failure] = child(cases[1], "failure");
  const kept = ["\u0000", "\u0001", "\uD800"].reduce((t, c) => t.replaceAll(c, "\uFFFD"), NASTY);
  assert.equal(failure.attrib.message, kept, "attribute keeps newline, tab and markup");
  assert.ok(failure.text!.includes(`violation: ${kept}`), failure.text!);
  assert.match(failure.text!, /^seed: 42$/m);
  assert.match(failure.text!, /^path: 2:0:1$/m);
  assert.match(failure.text!, /^counterexample: out\/x & <y>\.itf\.json \(4 steps\)$/m);
  assert.match(failure.text!, /--seed 42 --path 2:0:1 --suite type1-race/);
  assert.equal(child(cases[2], "skipped")[0].attrib.message, "interrupted");
  assert.equal(child(cases[0], "system-out")[0].text, "10 runs, 100 commands");
});

Deno.test("report junit: xmlEscape leaves nothing a parser would refuse", async () => {
  const all = Array.from({ length: 0x80 }, (_, i) => String.fromCharCode(i)).join("") +
    "\uD83D\uDE00 \uDE00 \uFFFE \uFFFF";
  const root = await parseXml(`<a b="${xmlEscape(all)}">${xmlEscape(all)}</a>`);
  const kept = all.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD");
  assert.equal(root.text, kept, "text round-trips, carriage return and astral characters included");
  assert.equal(
    root.attrib.b,
    kept.replace(/[\t\n]/g, " "),
    "raw in an attribute, tab and newline are normalised to spaces (attrs() writes them as references)",
  );
  assert.equal(xmlEscape("a&b<c>"), "a&amp;b&lt;c&gt;");
});

Deno.test("report json: every suite with status, counts and failure", () => {
  const j = JSON.parse(jsonReport(OUTCOME));
  assert.equal(j.version, 1);
  assert.equal(j.seed, 42);
  assert.deepEqual(j.shard, { index: 1, count: 3 });
  assert.deepEqual([j.passed, j.failed, j.interruptedSuites], [1, 1, 1]);
  assert.deepEqual(j.suites.map((s: { status: string }) => s.status), [
    "passed",
    "failed",
    "interrupted",
  ]);
  assert.equal(j.suites[1].failure.violation, NASTY);
  assert.equal(j.suites[1].failure.path, "2:0:1");
  assert.equal(j.suites[2].commands, null);
});

Deno.test("progress: status line with runs, rate, ETA, cut to the width", () => {
  const p = {
    done: 2,
    total: 5,
    failed: 1,
    elapsedMs: 65_000,
    running: [{ suite: "qm", runs: 300, budget: 1000, elapsedMs: 3000 }],
  };
  assert.equal(
    statusLine(p, 200),
    "check: 2/5 suites, 1 failed, 1m05s | qm 300/1000 runs, 100 runs/s, ETA 7s",
  );
  assert.match(statusLine({ ...p, seconds: 5 }, 200), /ETA 2s$/, "--seconds bounds the ETA");
  assert.equal(statusLine(p, 20).length, 20);
  const fuzz = { suite: "zip-fuzz", runs: 0, budget: 100000, elapsedMs: 12_000 };
  assert.match(statusLine({ ...p, running: [fuzz] }, 200), /\| zip-fuzz 100000 runs, running 12s$/);
  assert.deepEqual([duration(59.4), duration(3600 + 120)], ["59s", "1h02m"]);
});

Deno.test("pool: runs pieces on workers, a cancelled piece ends at once without a report", async () => {
  const job = (id: number, runs: number): PieceJob => ({
    id,
    suite: "type1",
    seed: 5,
    from: 0,
    runs,
    quirks: [],
    sched: "random",
    coverage: id === 0,
  });
  const pool = new WorkerPool(2);
  const done = new Map<number, SuiteReport>();
  const coverage: number[] = [];
  // Progress of the cancelled piece after its cancel: in flight at most, not a stream of it
  // (a cancel that does not stop the worker would run ten million runs, reporting all along).
  let cancelled = false;
  let lateProgress = 0;
  await pool.run([job(0, 50), job(1, 10_000_000)], () => false, {
    onStart: () => {},
    onProgress: (id) => {
      if (id !== 1) return;
      if (cancelled) lateProgress++;
      else {
        cancelled = true;
        pool.cancel(id);
      }
    },
    onDone: (id, report, c) => {
      done.set(id, report);
      if (c) coverage.push(c.length);
    },
  });
  assert.deepEqual([...done.keys()], [0], "the cancelled piece has no report");
  assert.equal(done.get(0)!.runs, 50);
  assert.ok(coverage[0] > 0, "coverage comes back from the worker");
  assert.ok(cancelled, "the long piece reported progress");
  assert.ok(lateProgress <= 2, `${lateProgress} progress reports came after the cancel`);
});

Deno.test("fuzz suites: a case range from any case, progress per case, --seconds honoured", async () => {
  let calls = 0;
  const r = await runSuite(zipFuzz, { seed: 3, from: 1500, runs: 1000, onRun: () => calls++ });
  assert.equal(r.failure, undefined, r.failure?.violation);
  assert.deepEqual([r.runs, calls], [1000, 1000]);
  const start = performance.now();
  const timed = await runSuite(compressFuzz, { seed: 3, runs: 1_000_000, seconds: 1 });
  assert.ok(timed.runs > 0 && timed.runs < 1_000_000, `${timed.runs} runs`);
  assert.ok(performance.now() - start < 10_000, "the time budget stopped it");
});

Deno.test("pool: a worker that dies fails its piece with the reason; the next piece runs on a new one", async () => {
  // A suite the worker does not know kills it (Deno prints that worker's uncaught TypeError).
  const pool = new WorkerPool(1);
  const done: [number, SuiteReport][] = [];
  const base = { seed: 5, from: 0, runs: 5, quirks: [], sched: "random", coverage: false } as const;
  await pool.run(
    [{ ...base, id: 0, suite: "no-such-suite" }, { ...base, id: 1, suite: "type1" }],
    () => false,
    {
      onStart: () => {},
      onProgress: () => {},
      onDone: (id, report) => done.push([id, report]),
    },
  );
  assert.deepEqual(done.map(([id]) => id), [0, 1]);
  assert.match(done[0][1].failure!.violation, /^worker died: /);
  assert.equal(done[1][1].failure, undefined);
  assert.equal(done[1][1].runs, 5);
});
