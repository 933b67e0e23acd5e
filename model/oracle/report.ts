/**
 * What the oracle hands back and how its step tables look.
 *
 * @module
 */
import type { Ret } from "../../spec/types.ts";

/** The oracle's verdict on a trace. */
export interface OracleResult {
  /** True when the trace conforms to the spec. */
  readonly passed: boolean;
  /** The report for people, built on demand (a long trace's table is long). */
  report(): string[];
}

/** `ok 0` / `err EBUSY`. */
export function showRet(r: Ret): string {
  return "ok" in r ? `ok ${JSON.stringify(r.ok)}` : `err ${r.err}`;
}

/** One row of a step table: mark, step number, command, both return values, verdict. */
export function verdictLine(
  mark: string,
  step: number,
  command: string,
  spec: string,
  trace: string,
  verdict: string,
): string {
  const head = `${mark} ${String(step).padStart(3)}  ${command.padEnd(58)}`;
  return `${head} spec ${spec.padEnd(14)} trace ${trace.padEnd(14)} ${verdict}`;
}
