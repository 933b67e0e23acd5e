/**
 * `deno run -A bench/wd_backends.ts [RUNS] [ROUNDS]`: the checker's throughput on the wd
 * library's two backends, the one contract checked on each. Each round runs RUNS runs (default
 * 2000, seed 1) of `wd` (sdmdev), the anchor, and of `wd-uacce`, then of the race suites
 * `wd-race` (the anchor) and `wd-uacce-race`, the order of the pair alternating between rounds
 * (default 3). The machines share their generators, so both suites of a pair run the same
 * commands and a ratio is the cost of the backend. Prints runs per second of each suite (the
 * median over the rounds) and its ratio to the anchor of its mode.
 */
import { suiteNamed } from "../model/machines.ts";
import { runCli, RunError } from "../model/cli/common.ts";
import { runSuite } from "../model/suites.ts";

const runs = Number(Deno.args[0] ?? 2000);
const rounds = Number(Deno.args[1] ?? 3);
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(rounds) || rounds < 1) {
  console.error("usage: deno run -A bench/wd_backends.ts [RUNS >= 1] [ROUNDS >= 1]");
  Deno.exit(2);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs per second of `runs` runs of suite `name`, which must pass. */
async function rate(name: string): Promise<number> {
  const r = await runSuite(suiteNamed(name)!, { seed: 1, runs });
  if (r.failure) {
    throw new RunError(`${name} failed on the correct implementation: ${r.failure.violation}`);
  }
  return r.runs / (r.ms / 1000);
}

await runCli("wd_backends", async () => {
  for (const [anchor, other] of [["wd", "wd-uacce"], ["wd-race", "wd-uacce-race"]]) {
    const rates = new Map<string, number[]>([[anchor, []], [other, []]]);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [anchor, other] : [other, anchor];
      for (const name of order) rates.get(name)!.push(await rate(name));
    }
    const base = median(rates.get(anchor)!);
    for (const [name, xs] of rates) {
      const m = median(xs);
      const tag = name === anchor ? "anchor" : `${(m / base).toFixed(2)} x anchor`;
      console.log(`${name.padEnd(14)} ${Math.round(m).toString().padStart(6)} runs/s  ${tag}`);
    }
  }
  return 0;
});
