/**
 * A fixed, deterministic command workload for the benches: `count` commands drawn from the
 * same arbitraries the checker uses, with a fixed seed.
 *
 * @module
 */
import fc from "fast-check";
import { anyCommand, poolsFor } from "../model/commands.ts";
import { type Command, DEFAULT_TOPOLOGY } from "../spec/system.ts";

/** `runs` command sequences of up to 40 commands each. */
export function workload(runs: number, seed = 42): Command[][] {
  const arb = fc.array(anyCommand(poolsFor(DEFAULT_TOPOLOGY)), { maxLength: 40, size: "max" });
  return fc.sample(arb, { numRuns: runs, seed });
}

/** Total number of commands in a workload. */
export function commandCount(w: readonly (readonly Command[])[]): number {
  return w.reduce((n, seq) => n + seq.length, 0);
}
