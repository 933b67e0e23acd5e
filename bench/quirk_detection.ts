/**
 * `deno run -A bench/quirk_detection.ts [SEEDS] [MACHINE]`: for every quirk (of MACHINE, if given), runs the suites in `check`'s
 * order (sequential, then race; 10000 runs each, the default) with the quirk on, from scratch, for SEEDS seeds (default 5),
 * and prints runs to failure, time to failure and shrunk counterexample length, with medians.
 * Also prints spec and conformance throughput measured in the same run.
 */
import { QUIRK_NAMES } from "../impl/quirks.ts";
import { initialState, step } from "../spec/system.ts";
import { Conformance } from "../model/runner.ts";
import { type1Machine } from "../model/machines/type1.ts";
import { quirkSuite, SUITES } from "../model/machines.ts";
import { runSuite } from "../model/suites.ts";
import { commandCount, workload } from "./workload.ts";

const seeds = Number(Deno.args[0] ?? 5);
const only = Deno.args[1];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const w = workload(200);
const n = commandCount(w);
let t = performance.now();
for (let rep = 0; rep < 20; rep++) {
  for (const seq of w) {
    let s = initialState();
    for (const cmd of seq) s = step(s, cmd).state;
  }
}
const specRate = (20 * n) / ((performance.now() - t) / 1000);
t = performance.now();
for (const seq of w) {
  const conf = new Conformance(type1Machine);
  for (const cmd of seq) await conf.step(cmd);
}
const confRate = n / ((performance.now() - t) / 1000);
console.log(`spec alone: ${Math.round(specRate).toLocaleString("en")} steps/s`);
console.log(`conformance: ${Math.round(confRate).toLocaleString("en")} commands/s`);
console.log();
console.log(
  "quirk                                  suite       median runs  median ms  median steps",
);
for (const quirk of QUIRK_NAMES.filter((q) => !only || quirkSuite(q).machine?.name === only)) {
  const runs: number[] = [];
  const ms: number[] = [];
  const steps: number[] = [];
  let suiteFound = "";
  for (let seed = 1; seed <= seeds; seed++) {
    let total = 0;
    const start = performance.now();
    for (const suite of SUITES.filter((s) => s.machine?.quirks.includes(quirk))) {
      const r = await runSuite(suite, { seed, runs: 10_000, quirks: [quirk] });
      total += r.runs;
      if (r.failure) {
        suiteFound = suite.name;
        steps.push(r.failure.length);
        break;
      }
    }
    runs.push(total);
    ms.push(performance.now() - start);
  }
  console.log(
    `${quirk.padEnd(38)} ${suiteFound.padEnd(11)} ${String(median(runs)).padStart(11)} ${
      median(ms).toFixed(0).padStart(10)
    } ${String(median(steps)).padStart(13)}   (found ${steps.length}/${seeds})`,
  );
}
