/**
 * The `check` CLI as a user runs it: reports written whole (JUnit parsed by Python's
 * ElementTree), the table independent of `--workers`, shards that add up to the whole,
 * `--expect-failure`, quirks no selected suite exercises, one progress line per suite when
 * stderr is not a terminal, and Ctrl-C (exit 130, the seed and the partial table on stdout).
 */
import assert from "node:assert/strict";
import { runCli } from "./run_cli.ts";

const root = new URL("..", import.meta.url).pathname;
const check = (...args: string[]) => runCli("check", ...args);

/** The table's rows without the time column: `[suite, runs, commands, failures]`. */
function rows(stdout: string): string[][] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => l.startsWith("suite "));
  const end = lines.findIndex((l, i) => i > start && / passed, \d+ failed/.test(l));
  return lines.slice(start + 1, end).map((l) => l.split(/\s+/).slice(0, 4));
}

/** Parses XML with Python's ElementTree into `{tag, attrib, text, children}`. */
async function parseXml(file: string) {
  const script = `
import json, sys, xml.etree.ElementTree as ET
def conv(e): return {"tag": e.tag, "attrib": e.attrib, "text": e.text, "children": [conv(c) for c in e]}
print(json.dumps(conv(ET.parse(sys.argv[1]).getroot())))`;
  const out = await new Deno.Command("python3", { args: ["-c", script, file] }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `${file} is not well-formed XML: ${dec.decode(out.stderr)}`);
  return JSON.parse(dec.decode(out.stdout));
}

// skipUndoOnDetach is found by type1 at run 694 of seed 3: in the second of four pieces of 2000
// runs.
const FOUND_LATE = ["--suite", "type1", "--quirk", "skipUndoOnDetach", "--seed", "3"];

Deno.test("check --workers: one suite cut in run ranges reports what one worker reports", async () => {
  const results = [];
  for (const workers of ["1", "4"]) {
    const out = await Deno.makeTempDir();
    const r = await check(...FOUND_LATE, "--runs", "2000", "--workers", workers, "--out", out);
    assert.equal(r.code, 1, r.stderr);
    const [file] = [...Deno.readDirSync(out)].map((e) => `${out}/${e.name}`);
    results.push({ rows: rows(r.stdout), trace: await Deno.readTextFile(file), r });
  }
  assert.deepEqual(results[0].rows, [["type1", "694", results[0].rows[0][2], "1"]]);
  assert.deepEqual(results[1].rows, results[0].rows);
  assert.equal(results[1].trace, results[0].trace, "the same counterexample, byte for byte");
  const r = results[1].r;
  assert.match(r.stdout, /^defect detected by type1 in 694 runs$/m);
  assert.match(r.stdout, /\(4 workers\)/);
  const meta = JSON.parse(results[1].trace)["#meta"];
  const replay = /or from the seed: npm run replay -- (.*)$/m.exec(r.stderr)![1].split(" ");
  assert.deepEqual(replay, [
    "--seed",
    FOUND_LATE[5],
    "--path",
    meta.path,
    "--replay-path",
    meta.replayPath,
    "--suite",
    "type1",
    "--quirk",
    "skipUndoOnDetach",
  ]);
  assert.equal((await runCli("replay", ...replay)).code, 1, "the seed and path reproduce it");
});

Deno.test("check --shard: the shards' runs add up to the unsharded run's, bad shards exit 2", async () => {
  const dir = await Deno.makeTempDir();
  const args = ["--suite", "type1", "--suite", "zip-fuzz", "--runs", "60", "--seed", "2"];
  const whole = await check(...args, "--workers", "1");
  assert.equal(whole.code, 0, whole.stderr);
  const totals = new Map<string, number>();
  for (const shard of ["1/2", "2/2"]) {
    const file = `${dir}/shard${shard[0]}.json`;
    const r = await check(...args, "--shard", shard, "--report", "json", file);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(await Deno.readTextFile(file));
    assert.equal(j.shard.index, Number(shard[0]));
    for (const s of j.suites) totals.set(s.suite, (totals.get(s.suite) ?? 0) + s.runs);
  }
  assert.deepEqual(Object.fromEntries(totals), { type1: 60, "zip-fuzz": 60 });
  const wholeRows = Object.fromEntries(rows(whole.stdout).map((r) => [r[0], Number(r[1])]));
  assert.deepEqual(wholeRows, { type1: 60, "zip-fuzz": 60 });
  for (const bad of ["0/2", "3/2", "1", "a/b"]) {
    const r = await check("--shard", bad, "--runs", "1");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^check: error: --shard expects I\/N with 1 <= I <= N/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("check: --workers 0 and --runs 0 are one line and exit 2; a repeated --suite runs once", async () => {
  for (
    const [flag, message] of [["--workers", "--workers must be at least 1"], [
      "--runs",
      "--runs must be at least 1",
    ]]
  ) {
    const r = await check(flag, "0");
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim(), `check: error: ${message}`);
  }
  const twice = await check("--suite", "type1", "--suite", "type1", "--runs", "5");
  assert.equal(twice.code, 0, twice.stderr);
  assert.deepEqual(rows(twice.stdout).map((r) => r[0]), ["type1"]);
});

Deno.test("check --report junit/json: each suite a test case, the failure with seed, path, file", async () => {
  const dir = await Deno.makeTempDir();
  const [xml, json] = [`${dir}/report.xml`, `${dir}/report.json`];
  const r = await check(
    "--suite",
    "type1",
    "--suite",
    "qm",
    "--quirk",
    "unshareUnderflow",
    "--seed",
    "1",
    "--runs",
    "50",
    "--out",
    dir,
    "--report",
    "junit",
    xml,
    "--report",
    "json",
    json,
  );
  assert.equal(r.code, 1, r.stderr);
  const suites = (await parseXml(xml)).children[0];
  assert.equal(suites.tag, "testsuite");
  assert.deepEqual([suites.attrib.tests, suites.attrib.failures], ["2", "1"]);
  const cases = suites.children.filter((c: { tag: string }) => c.tag === "testcase");
  assert.deepEqual(cases.map((c: { attrib: { name: string } }) => c.attrib.name), ["type1", "qm"]);
  const failure = cases[0].children.find((c: { tag: string }) => c.tag === "failure");
  assert.match(failure.attrib.message, /unshare-underflow/);
  const cx = `${dir}/type1-unshareUnderflow-1.itf.json`;
  const meta = JSON.parse(await Deno.readTextFile(cx))["#meta"];
  assert.ok(failure.text.includes(`seed: 1\npath: ${meta.path}\n`), failure.text);
  assert.ok(failure.text.includes(`counterexample: ${cx} (`), failure.text);
  assert.equal(cases[1].children.some((c: { tag: string }) => c.tag === "failure"), false);
  const j = JSON.parse(await Deno.readTextFile(json));
  assert.deepEqual(j.suites.map((s: { status: string }) => s.status), ["failed", "passed"]);
  assert.equal(j.suites[0].failure.counterexample, cx);
  assert.equal(j.suites[0].failure.path, meta.path);
  assert.deepEqual(
    [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
    ["report.json", "report.xml", "type1-unshareUnderflow-1.itf.json"],
    "no temporary file left",
  );
});

Deno.test("check --report: bad usage exits 2, an unwritable file exits 1, one line each", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [string[], number, RegExp][] = [
    [["--report", "xml", "f"], 2, /--report expects junit or json, got "xml"/],
    [["--report", "junit"], 2, /--report junit needs a file/],
    [["--report", "json", dir], 2, /--report: .* is a directory/],
    [["--report", "json", `${dir}/no/r.json`], 2, /--report: .*: no such directory/],
    [["--report", "json", `${dir}/a`, "--report", "json", `${dir}/b`], 2, /given twice/],
    [["--report", "junit", "/proc/version"], 1, /--report: cannot write \/proc\/version/],
  ];
  for (const [args, code, message] of cases) {
    const r = await check("--suite", "type1", "--runs", "2", "--seed", "1", ...args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("check: type1 passed"));
    assert.match(lines.at(-1)!, message);
    assert.match(lines.at(-1)!, /^check: error: /);
    if (code === 2) assert.equal(lines.length, 1, r.stderr);
  }
});

Deno.test("check: a counterexample that cannot be written is exit 1, one line, after the table", async () => {
  // The directory is writable (checked before the run), the counterexample's name is taken by
  // a directory.
  const out = await Deno.makeTempDir();
  const file = `${out}/type1-unshareUnderflow-3.itf.json`;
  await Deno.mkdir(file);
  try {
    const r = await check(
      "--suite",
      "type1",
      "--quirk",
      "unshareUnderflow",
      "--seed",
      "3",
      "--runs",
      "20",
      "--out",
      out,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(rows(r.stdout).map((row) => row[3]), ["1"]);
    assert.match(
      r.stderr,
      /^check: seed 3, path [\d:]+; counterexample \(\d+ steps\) NOT written$/m,
    );
    const last = r.stderr.trim().split("\n").at(-1)!;
    assert.ok(last.startsWith(`check: error: cannot write counterexample ${file}: `), last);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("check --quirk: --expect-failure inverts the exit code; an unexercised quirk is exit 2", async () => {
  const found = await check(
    ...FOUND_LATE,
    "--runs",
    "1000",
    "--workers",
    "1",
    "--expect-failure",
    "--out",
    await Deno.makeTempDir(),
  );
  assert.equal(found.code, 0, found.stderr);
  assert.match(found.stdout, /^defect detected by type1 in 694 runs$/m);
  const missed = await check(...FOUND_LATE, "--runs", "100", "--expect-failure");
  assert.equal(missed.code, 1, missed.stderr);
  assert.match(missed.stdout, /^defect not detected \(skipUndoOnDetach\) in 100 runs$/m);
  assert.equal((await check(...FOUND_LATE, "--runs", "100")).code, 0);
  const passes = await check("--suite", "type1", "--runs", "5", "--expect-failure");
  assert.equal(passes.code, 1, "no failure found is exit 1 under --expect-failure");
  for (const suite of ["qm", "zip-fuzz"]) {
    const r = await check("--suite", suite, "--quirk", "unshareUnderflow", "--runs", "5");
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      "check: error: --quirk unshareUnderflow: no selected suite exercises it " +
        "(suites that do: type1, type1-race)",
    );
  }
});

Deno.test("check: stderr that is not a terminal gets one line per suite, no status line", async () => {
  const r = await check("--suite", "type1", "--suite", "qm", "--runs", "30", "--seed", "4");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 3, r.stderr);
  assert.match(
    lines[0],
    /^check: seed 4, 30 runs per suite, correct implementation, \d+ workers?$/,
  );
  assert.deepEqual(
    lines.slice(1).map((l) => /^check: (\S+) passed 30 runs in /.exec(l)?.[1]).sort(),
    [
      "qm",
      "type1",
    ],
  );
  assert.ok(!r.stderr.includes("\r"), "no carriage returns");
});

Deno.test("check: Ctrl-C prints the partial table and the seed, writes the report, exits 130", async () => {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}model/cli/check.ts`,
      "--suite",
      "type1",
      "--suite",
      "qm",
      "--runs",
      "1000000",
      "--seed",
      "77",
      "--workers",
      "2",
      "--report",
      "json",
      `${dir}/r.json`,
    ],
    env: { DENO_NO_PACKAGE_JSON: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdoutText = new Response(child.stdout).text();
  let stderr = "";
  const dec = new TextDecoder();
  const reader = child.stderr.getReader();
  // The header comes just before the SIGINT handler is installed; then let the workers run.
  while (!stderr.includes("check: seed 77")) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += dec.decode(value);
  }
  await new Promise((resolve) => setTimeout(resolve, 1500));
  child.kill("SIGINT");
  const status = await child.status;
  reader.releaseLock();
  await child.stderr.cancel();
  const stdout = await stdoutText;
  assert.equal(status.code, 130, stdout + stderr);
  assert.match(stdout, /^suite +runs +commands +failures +time$/m);
  assert.match(stdout, /^type1 +\d+ +- +0 +[\d.]+s +interrupted$/m);
  assert.match(stdout, /^0 passed, 0 failed, 2 interrupted in /m);
  assert.match(
    stdout,
    /^interrupted: seed 77; no counterexample written \(they go to out\/counterexamples\)$/m,
  );
  const j = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
  assert.equal(j.interrupted, true);
  assert.deepEqual(j.suites.map((s: { status: string }) => s.status), [
    "interrupted",
    "interrupted",
  ]);
});
