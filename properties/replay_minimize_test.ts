/**
 * `replay --minimize`: a counterexample re-shrunk against the current implementation is
 * shorter, is a trace replay and the oracle read, still fails with its quirk and passes
 * without; races keep a schedule that replays strictly; the result is deterministic; a trace
 * that does not fail is one line and exit 1.
 */
import assert from "node:assert/strict";
import { machineNamed } from "../model/machines.ts";
import { minimize } from "../model/minimize.ts";
import { quirkSwitches, replayTrace } from "../model/replay.ts";
import { parseTrace } from "../model/trace.ts";
import { runCli } from "./run_cli.ts";

const root = new URL("..", import.meta.url).pathname;
const counterexamples = `${root}fixtures/counterexamples`;

function load(file: string) {
  return parseTrace(Deno.readTextFileSync(file), machineNamed);
}

/** Minimizes `fixture` with the CLI into a temporary file: what it printed, the trace. */
async function minimizeCli(fixture: string) {
  const out = `${await Deno.makeTempDir({ prefix: "minimize_" })}/min.itf.json`;
  const r = await runCli("replay", "--minimize", `${counterexamples}/${fixture}`, "--out", out);
  assert.equal(r.code, 0, r.stderr);
  const counts = r.stdout.match(/(\d+) steps before, (\d+) after/);
  assert.ok(counts, r.stdout);
  return { out, before: Number(counts[1]), after: Number(counts[2]), stdout: r.stdout };
}

/** The minimized trace at `out` fails with its quirk, passes without, and the oracle reads it. */
async function stillFailsWithQuirkOnly(out: string) {
  const withQuirk = await runCli("replay", out);
  assert.equal(withQuirk.code, 1, withQuirk.stdout + withQuirk.stderr);
  assert.doesNotMatch(withQuirk.stdout, /cannot be followed/);
  const without = await runCli("replay", "--no-quirk", out);
  assert.equal(without.code, 0, without.stdout + without.stderr);
  const judged = await runCli("oracle", out);
  assert.notEqual(judged.code, 2, judged.stderr);
}

Deno.test("--minimize unshareUnderflow: the prelude's openGroups go, one step is left", async () => {
  const { out, before, after, stdout } = await minimizeCli("unshareUnderflow.itf.json");
  assert.equal(before, load(`${counterexamples}/unshareUnderflow.itf.json`).steps.length);
  assert.equal(after, 1);
  assert.match(
    stdout,
    /still fails: events differ: spec \[\], impl \[\{"warn":"unshare-underflow"/,
  );
  const trace = load(out);
  assert.deepEqual(trace.steps.map((s) => s.cmd.op), ["iommu.unshare"]);
  assert.deepEqual(trace.meta.quirks, ["unshareUnderflow"]);
  await stillFailsWithQuirkOnly(out);
});

Deno.test("--minimize of an sdmdev and a qm counterexample: shorter, still the quirk's", async () => {
  for (const fixture of ["removeWhileOpenDestroys.itf.json", "kernelSqFullNeverCleared.itf.json"]) {
    const { out, before, after } = await minimizeCli(fixture);
    assert.ok(after < before, `${fixture}: ${before} -> ${after}`);
    assert.equal(load(out).steps.length, after);
    await stillFailsWithQuirkOnly(out);
  }
});

Deno.test("--minimize of a race: fewer steps, a schedule that replays strictly", async () => {
  const { out, before, after } = await minimizeCli("shareWithoutGroupLock.itf.json");
  const fixture = load(`${counterexamples}/shareWithoutGroupLock.itf.json`).meta.race!;
  assert.equal(before, fixture.setup.length + fixture.actors.flatMap((a) => a.program).length);
  assert.ok(after < before, `${before} -> ${after}`);
  const race = load(out).meta.race!;
  const size = race.setup.length + race.actors.reduce((n, a) => n + a.program.length, 0);
  assert.equal(size, after);
  assert.ok(race.actors.length >= 2);
  await stillFailsWithQuirkOnly(out);
});

Deno.test("--minimize without --out writes NAME.min.itf.json beside the trace", async () => {
  const dir = await Deno.makeTempDir({ prefix: "minimize_" });
  await Deno.copyFile(`${counterexamples}/eqeCqnUnchecked.itf.json`, `${dir}/eqe.itf.json`);
  const r = await runCli("replay", "--minimize", `${dir}/eqe.itf.json`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`wrote ${dir}/eqe\\.min\\.itf\\.json`));
  assert.ok(load(`${dir}/eqe.min.itf.json`).steps.length < 8);
});

Deno.test("every counterexample minimizes deterministically to a trace failing only with its quirk", async (t) => {
  for (const entry of Deno.readDirSync(counterexamples)) {
    await t.step(entry.name, async () => {
      const trace = load(`${counterexamples}/${entry.name}`);
      const first = await minimize(trace);
      assert.ok(first, "the fixture fails with its quirk");
      assert.ok(first.after <= first.before);
      assert.deepEqual(await minimize(trace), first, "deterministic");
      const min = parseTrace(JSON.stringify(first.trace), machineNamed);
      const withQuirk = await replayTrace(min, quirkSwitches(min.meta.quirks), true);
      assert.equal(withQuirk.passed, false, withQuirk.lines.join("\n"));
      const without = await replayTrace(min, {}, false);
      assert.equal(without.passed, true, without.lines.join("\n"));
    });
  }
});

Deno.test("--minimize of a trace that passes: one line, exit 1", async () => {
  const r = await runCli(
    "replay",
    "--minimize",
    `${root}fixtures/regressions/sdmdev-race-close-vs-open.itf.json`,
    "--out",
    `${await Deno.makeTempDir()}/x.itf.json`,
  );
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /does not fail with its quirks \(none\): nothing to minimize$/);
});
