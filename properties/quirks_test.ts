/**
 * Every quirk: its saved counterexample fails with the quirk and passes without it, and the
 * checker finds the quirk from scratch within a fixed budget.
 */
import assert from "node:assert/strict";
import { QUIRK_NAMES } from "../impl/quirks.ts";
import { machineNamed, quirkSuite } from "../model/machines.ts";
import { replayTrace } from "../model/replay.ts";
import { runSuite } from "../model/suites.ts";
import { parseTrace } from "../model/trace.ts";

/** Runs allowed to find each quirk from scratch (the fastest need a handful, the slowest ~2000). */
const BUDGET = 20_000;
const DETECTION_SEED = 1;

for (const quirk of QUIRK_NAMES) {
  Deno.test(`quirk ${quirk}`, async (t) => {
    const file = new URL(`../fixtures/counterexamples/${quirk}.itf.json`, import.meta.url);
    const trace = parseTrace(await Deno.readTextFile(file), machineNamed);
    const suite = quirkSuite(quirk);
    const replay = (quirks: Record<string, boolean>) =>
      replayTrace(trace, quirks, Object.keys(quirks).length > 0);

    await t.step("the fixture names the quirk, its machine and mode", () => {
      assert.deepEqual(trace.meta.quirks, [quirk]);
      assert.equal(trace.meta.machine, suite.machine?.name);
      assert.equal(trace.meta.mode, suite.mode);
    });
    await t.step("the fixture fails with the quirk", async () => {
      const r = await replay({ [quirk]: true });
      assert.equal(r.passed, false);
      // ... because of the quirk, not because its schedule no longer fits the implementation.
      assert.ok(!r.lines.join("\n").includes("cannot be followed"), r.lines.join("\n"));
    });
    await t.step("the fixture passes on the correct implementation", async () => {
      const r = await replay({});
      assert.equal(r.passed, true, r.lines.join("\n"));
    });
    await t.step(`the checker finds it from scratch within ${BUDGET} runs`, async () => {
      const r = await runSuite(suite, {
        seed: DETECTION_SEED,
        runs: BUDGET,
        quirks: [quirk],
      });
      assert.ok(r.failure, `not found in ${r.runs} runs`);
      console.log(
        `  ${quirk}: found after ${r.runs} runs, ${r.failure.length} steps, ${r.ms.toFixed(0)} ms`,
      );
    });
  });
}

Deno.test("the README's quirk catalogue lists every quirk with its suite", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  for (const quirk of QUIRK_NAMES) {
    const row = readme.split("\n").find((l) => l.startsWith(`| \`${quirk}\``));
    assert.ok(row, `README has no row for ${quirk}`);
    const cells = row.split("|").map((c) => c.trim());
    assert.equal(cells.at(-2), quirkSuite(quirk).name, `README suite of ${quirk}`);
  }
});
