/**
 * The oracle: judges a trace recorded by some implementation against the spec alone.
 * Sequential traces step by step ({@link checkSequential}: returns, events, the observed
 * state, unknown outcomes followed both ways), race traces by linearizability
 * ({@link checkRace}).
 *
 * @module
 */
import type { MachineTrace } from "../trace.ts";
import { checkRace } from "./race.ts";
import type { OracleResult } from "./report.ts";
import { checkSequential, type SequentialOptions } from "./sequential.ts";

export type { OracleResult } from "./report.ts";
export { DEFAULT_MAX_BRANCHES, type SequentialOptions } from "./sequential.ts";

/**
 * Checks `trace` against the spec. Bad input the parser could not see (a state field whose
 * type is not the spec's) is an ItfError naming the JSON path.
 */
export function checkTrace(trace: MachineTrace, options: SequentialOptions = {}): OracleResult {
  return trace.meta.mode === "race" ? checkRace(trace) : checkSequential(trace, options);
}
