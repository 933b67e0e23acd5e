/**
 * The CLIs: bad input is one line on stderr and exit code 2 (never a stack trace); replaying a
 * fixture exits 1 with the quirk and 0 without; the oracle accepts a correct trace.
 */
import assert from "node:assert/strict";
import { initialState } from "../spec/mod.ts";
import { runSequential } from "../model/runner.ts";
import { type1Machine as m } from "../model/machines/type1.ts";
import { sequentialTrace } from "../model/trace.ts";
import { runCli } from "./run_cli.ts";

const root = new URL("..", import.meta.url).pathname;

const cli = runCli;

async function tempFile(content: string): Promise<string> {
  const f = await Deno.makeTempFile({ suffix: ".itf.json" });
  await Deno.writeTextFile(f, content);
  return f;
}

const fixture = `${root}fixtures/counterexamples/skipUndoOnDetach.itf.json`;

Deno.test("bad input: one line, exit 2, for every CLI", async (t) => {
  const good = JSON.parse(await Deno.readTextFile(fixture));
  // deno-lint-ignore no-explicit-any -- a JSON document edited in place
  const bad = (f: (j: any) => void) => {
    const j = structuredClone(good);
    f(j);
    return tempFile(JSON.stringify(j));
  };
  const cases: [string, string[], RegExp][] = [
    ["missing file", ["replay", "/nonexistent/x.itf.json"], /x\.itf\.json: no such file/],
    ["a directory", ["oracle", root], /is a directory/],
    ["malformed JSON", ["replay", await tempFile("{ not json")], /malformed JSON/],
    [
      "unknown op",
      ["oracle", await bad((j) => (j.states[2]["mbt::actionTaken"] = "type1.nope"))],
      /\$\.states\[2\]\.mbt::actionTaken: unknown op/,
    ],
    ["wrong field type", [
      "replay",
      await bad((j) => {
        // The first step that names a container (the prelude's first names none).
        const picks = j.states.map((s: { "mbt::nondetPicks"?: object }) => s["mbt::nondetPicks"]);
        picks.find((p?: object) => p && "container" in p).container = true;
      }),
    ], /mbt::nondetPicks\.container: expected an integer/],
    [
      "unknown quirk in a trace",
      ["replay", await bad((j) => (j["#meta"].quirks = ["nope"]))],
      /#meta\.quirks\[0\]: unknown quirk "nope"/,
    ],
    ["unknown quirk flag", ["check", "--quirk", "nope", "--runs", "1"], /unknown quirk "nope"/],
    ["unknown suite", ["check", "--suite", "nope"], /unknown suite "nope"/],
    ["unknown option", ["check", "--frobnicate"], /unknown option --frobnicate/],
    ["non-numeric runs", ["check", "--runs", "many"], /--runs expects a non-negative integer/],
    [
      "replay seed without path",
      ["replay", "--seed", "1"],
      /--seed, --path and --suite go together/,
    ],
    ["oracle without file", ["oracle"], /usage/],
    ["oracle --schema of no machine", ["oracle", "--schema", "nosuch"], /unknown machine "nosuch"/],
    ["replay without file", ["replay"], /expected one trace file/],
  ];
  for (const [name, [cmd, ...args], message] of cases) {
    await t.step(name, async () => {
      const r = await cli(cmd, ...args);
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], message);
      assert.doesNotMatch(r.stderr, /\bat file:/);
    });
  }
});

Deno.test("replay: a fixture diverges with its quirk and passes without", async () => {
  const withQuirk = await cli("replay", fixture);
  assert.equal(withQuirk.code, 1);
  assert.match(withQuirk.stdout, /FIRST DIVERGENCE/);
  const without = await cli("replay", "--no-quirk", fixture);
  assert.equal(without.code, 0, without.stdout);
});

Deno.test("replay: a race schedule this implementation cannot follow is a finding, exit 1", async () => {
  const trace = JSON.parse(
    await Deno.readTextFile(`${root}fixtures/regressions/sdmdev-race-release-holder.itf.json`),
  );
  trace["#meta"].race.schedule[2] = "actor1:no-such-point";
  const r = await cli("replay", await tempFile(JSON.stringify(trace)));
  assert.equal(r.code, 1);
  assert.match(r.stdout, /✗ the recorded schedule cannot be followed .*no-such-point/);
  assert.doesNotMatch(r.stderr, /internal error|at .*\.ts:\d+/);
});

Deno.test("oracle: accepts a correct trace, rejects the quirky one", async () => {
  const records = await runSequential(m, [
    { op: "type1.attach", container: 1, group: 10 },
    { op: "type1.setIommu", container: 1 },
    { op: "type1.map", container: 1, iova: 0, size: 4096, vaddr: 0 },
  ]);
  const file = await tempFile(
    JSON.stringify(
      sequentialTrace(
        m,
        { machine: "type1", mode: "sequential", quirks: [] },
        initialState(),
        records,
      ),
    ),
  );
  const ok = await cli("oracle", file);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal((await cli("oracle", fixture)).code, 1);
});

Deno.test("oracle --init: each machine's initial state is a trace the oracle accepts", async (t) => {
  for (const machine of ["type1", "qm", "qm1024", "sdmdev", "zipc", "wdzip"]) {
    await t.step(machine, async () => {
      const init = await cli("oracle", "--init", machine);
      assert.equal(init.code, 0, init.stderr);
      const trace = JSON.parse(init.stdout);
      assert.equal(trace["#meta"].machine, machine);
      assert.equal(trace.states.length, 1);
      const judged = await cli("oracle", await tempFile(init.stdout));
      assert.equal(judged.code, 0, judged.stdout + judged.stderr);
    });
  }
  const unknown = await cli("oracle", "--init", "nosuch");
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^oracle: error: --init: unknown machine "nosuch" \(known: /);
});

Deno.test("check: finds a quirk, writes the counterexample, exits 1", async () => {
  const out = await Deno.makeTempDir();
  const r = await cli(
    "check",
    "--suite",
    "type1",
    "--quirk",
    "unshareUnderflow",
    "--seed",
    "3",
    "--runs",
    "100",
    "--out",
    out,
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^type1\s+\d+\s+\d+\s+1/m);
  const files = [...Deno.readDirSync(out)].map((e) => e.name);
  assert.deepEqual(files, ["type1-unshareUnderflow-3.itf.json"]);
  const replayed = await cli("replay", `${out}/${files[0]}`);
  assert.equal(replayed.code, 1);
  const meta = JSON.parse(await Deno.readTextFile(`${out}/${files[0]}`))["#meta"];
  const bySeed = [
    "--seed",
    "3",
    "--path",
    meta.path,
    "--replay-path",
    meta.replayPath,
    "--suite",
    "type1",
  ];
  assert.equal((await cli("replay", ...bySeed, "--quirk", "unshareUnderflow")).code, 1);
  assert.equal((await cli("replay", ...bySeed)).code, 0);
});

Deno.test("every CLI prints its usage and exits 0 for -h and --help", async (t) => {
  for (const cli of ["check", "replay", "oracle", "drive", "zip", "fixtures"]) {
    for (const flag of ["-h", "--help"]) {
      await t.step(`${cli} ${flag}`, async () => {
        const r = await runCli(cli, flag);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^usage: /);
        assert.equal(r.stderr, "");
      });
    }
  }
});

Deno.test("replay: a recorded state field of the wrong type is bad input, exit 2, one line", async () => {
  const file = new URL("../fixtures/counterexamples/skipUndoOnDetach.itf.json", import.meta.url);
  const doc = JSON.parse(await Deno.readTextFile(file));
  doc.states[2].type1.containers = { "#bigint": "5" };
  const bad = await Deno.makeTempFile({ suffix: ".itf.json" });
  try {
    await Deno.writeTextFile(bad, JSON.stringify(doc));
    const r = await runCli("replay", bad);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      `replay: error: ${bad}: $.states[2].type1.containers: expected a map, as the spec's state has there, got an integer`,
    );
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("bad usage found before any work: one line, exit 2", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["replay", ["--seed", "1", "--path", "garbage", "--suite", "type1"], /--path: expected/],
    [
      "replay",
      ["--seed", "1", "--path", "3:0", "--replay-path", "!!", "--suite", "type1"],
      /--replay-path/,
    ],
    [
      "replay",
      ["--seed", "1", "--path", "3:0", "--replay-path", "zzzz", "--suite", "type1"],
      /cannot follow it/,
    ],
    ["replay", ["--seed", "1", "--path", "99999:3:3", "--suite", "type1"], /cannot follow it/],
    ["check", ["--suite", "type1", "--runs", "99999999999999999999"], /--runs: .* too large/],
    ["check", ["--suite", "type1", "--runs", "10", "--out", "/proc/nope"], /--out: cannot write/],
    ["drive", ["--machine", "qm", "--out", "/proc/nope", "--", "true"], /--out: cannot write/],
  ];
  for (const [cli, args, message] of cases) {
    await t.step(`${cli} ${args.join(" ")}`, async () => {
      const r = await runCli(cli, ...args);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
    });
  }
});
