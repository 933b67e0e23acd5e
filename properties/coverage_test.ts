/**
 * `check --coverage`: the op × spec-result tally counts every executed command once, under an op
 * of the machine's schema, in sequential runs and races; the CLI prints it after the summary
 * and writes it as JSON; bad `--coverage` usage is one line and exit 2.
 */
import assert from "node:assert/strict";
import { Coverage, formatCoverage, summarize } from "../model/coverage.ts";
import { suiteNamed } from "../model/machines.ts";
import { type1Machine } from "../model/machines/type1.ts";
import { runSuite } from "../model/suites.ts";
import { runCli } from "./run_cli.ts";

const TYPE1_OPS = Object.keys(type1Machine.schema);

const check = (...args: string[]) => runCli("check", ...args);

Deno.test("coverage: 50 type1 runs and 50 races tally each generated command once, by schema op", async () => {
  const coverage = new Coverage();
  let generated = 0;
  for (const name of ["type1", "type1-race"]) {
    const suite = suiteNamed(name)!;
    const r = await runSuite(suite, { seed: 7, runs: 50, coverage });
    assert.equal(r.failure, undefined, r.failure?.violation);
    // A sequential report counts generated commands; a race's setup starts with the prelude.
    const prelude = suite.mode === "race" ? r.runs * type1Machine.prelude.length : 0;
    assert.ok(r.commands > prelude, `${name} ran no generated commands`);
    generated += r.commands - prelude;
  }
  assert.equal(coverage.total(), generated);
  for (const [op, row] of coverage.counts) {
    assert.ok(TYPE1_OPS.includes(op), `${op} is not a type1 op`);
    for (const n of row.values()) assert.ok(Number.isInteger(n) && n > 0);
  }
  // The prelude opens every group, so a generated open of one of them is EBUSY.
  assert.ok((coverage.counts.get("type1.openGroup")?.get("EBUSY") ?? 0) > 0);
  const s = summarize(type1Machine, coverage);
  assert.equal(s.commands, generated);
  assert.deepEqual(
    [...Object.keys(s.ops), ...s.neverGenerated].sort(),
    [...TYPE1_OPS].sort(),
  );
});

Deno.test("coverage: summary orders results, names ops never generated and never ok", () => {
  const c = new Coverage();
  c.record("type1.map", { err: "EINVAL" });
  c.record("type1.map", { ok: 0 });
  c.record("type1.map", { err: "EEXIST" });
  c.record("type1.map", { err: "EINVAL" });
  c.record("type1.unmap", { err: "EINVAL" });
  const s = summarize(type1Machine, c);
  assert.deepEqual(Object.entries(s.ops["type1.map"]), [["ok", 1], ["EINVAL", 2], ["EEXIST", 1]]);
  assert.deepEqual(s.onlyErrors, ["type1.unmap"]);
  assert.equal(s.neverGenerated.length, TYPE1_OPS.length - 2);
  assert.ok(s.neverGenerated.includes("type1.openGroup"));
  const lines = formatCoverage({ type1: s });
  assert.ok(lines.includes("  type1.map    ok 1  EINVAL 2  EEXIST 1"), lines.join("\n"));
  assert.ok(lines.includes("  never ok: type1.unmap"), lines.join("\n"));
});

Deno.test("check --coverage FILE: prints the table after the summary, writes JSON, exits 0", async () => {
  const file = `${await Deno.makeTempDir()}/coverage.json`;
  const r = await check("--suite", "type1", "--runs", "20", "--seed", "3", "--coverage", file);
  assert.equal(r.code, 0, r.stderr);
  const commands = Number(/^type1\s+\d+\s+(\d+)/m.exec(r.stdout)?.[1]);
  assert.ok(commands > 0, r.stdout);
  assert.ok(r.stdout.indexOf("1 passed") < r.stdout.indexOf("coverage type1:"), r.stdout);
  assert.match(r.stdout, /^ {2}type1\.attach +ok \d+ .*EINVAL \d+/m);
  const json = JSON.parse(await Deno.readTextFile(file));
  assert.equal(json.seed, 3);
  assert.equal(json.machines.type1.commands, commands);
  const bare = await check("--suite", "type1", "--runs", "5", "--seed", "3", "--coverage");
  assert.equal(bare.code, 0, bare.stderr);
  assert.match(bare.stdout, /^coverage type1: \d+ generated commands/m);
});

Deno.test("check --coverage: bad usage is one line on stderr, exit 2, before any run", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [string[], RegExp][] = [
    [["--coverage="], /--coverage= needs a file name/],
    [["--coverage", `${dir}/missing/c.json`], /no such directory/],
    [["--coverage", dir], /is a directory/],
    [["--coverage", "--coverage"], /--coverage given twice/],
  ];
  for (const [args, message] of cases) {
    const r = await check("--suite", "type1", "--runs", "1", ...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.equal(r.stdout, "");
  }
});
