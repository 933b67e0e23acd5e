/**
 * `deno run -A bench/pct_detection.ts [SEEDS] [SUITE:QUIRK]...`: for every race quirk (default:
 * type1-race with shareWithoutGroupLock and unshareBeforeUndo, stack-race with stopQueueNoop,
 * skipUndoOnDetach and unshareBeforeUndo), runs the race suite from scratch with the quirk on
 * (20000 runs at most) under fast-check's scheduler, PCT depth 2 and PCT depth 3, for seeds 1 to
 * SEEDS (default 5), and prints runs and seconds to the shrunk counterexample, with medians.
 */
import type { QuirkName } from "../impl/quirks.ts";
import { suiteNamed } from "../model/machines.ts";
import { runSuite, type SuiteOptions } from "../model/suites.ts";

const seeds = Number(Deno.args[0] ?? 5);
const cases = Deno.args.length > 1 ? Deno.args.slice(1) : [
  "type1-race:shareWithoutGroupLock",
  "type1-race:unshareBeforeUndo",
  "stack-race:stopQueueNoop",
  "stack-race:skipUndoOnDetach",
  "stack-race:unshareBeforeUndo",
];
const scheds: [string, Partial<SuiteOptions>][] = [
  ["random", {}],
  ["pct d2", { sched: "pct", pctDepth: 2 }],
  ["pct d3", { sched: "pct", pctDepth: 3 }],
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log("suite       quirk                  sched   median runs  median s  runs per seed");
for (const c of cases) {
  const [name, quirk] = c.split(":");
  const suite = suiteNamed(name);
  if (!suite) throw new Error(`unknown suite ${name}`);
  for (const [label, sched] of scheds) {
    const runs: number[] = [];
    const secs: number[] = [];
    for (let seed = 1; seed <= seeds; seed++) {
      const r = await runSuite(suite, {
        seed,
        runs: 20_000,
        quirks: [quirk as QuirkName],
        ...sched,
      });
      runs.push(r.failure ? r.runs : Infinity);
      secs.push(r.failure ? r.ms / 1000 : Infinity);
    }
    console.log(
      `${name.padEnd(11)} ${quirk.padEnd(22)} ${label.padEnd(7)} ${
        String(median(runs)).padStart(11)
      } ${median(secs).toFixed(2).padStart(9)}  ${runs.join(" ")}`,
    );
  }
}
