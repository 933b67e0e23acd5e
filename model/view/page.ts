/**
 * Which run the HTML view of a replay draws, and the page's verdict line.
 *
 * @module
 */
import type { ReplayResult } from "../replay.ts";
import type { MachineTrace } from "../trace.ts";
import { renderHtml } from "./html.ts";
import { recordedRun } from "./recorded.ts";

/** One line saying how a replay ended. */
function verdict(result: ReplayResult, label: string): string {
  if (result.passed) return `the replay passes (quirks: ${label})`;
  const run = result.run;
  const why = run?.mode === "sequential"
    ? `step ${run.records.length}, ${run.records.at(-1)!.cmd.op}: ${run.records.at(-1)!.failure}`
    : run?.failure ?? result.lines[0];
  return `the replay fails (quirks: ${label}): ${why}`;
}

/**
 * The page of `result`, a replay of `trace` (from `file`) with the quirks `label` names: the
 * replay itself, unless it could not run, or passes while the trace records a violation; then
 * the recorded trace as the spec alone judges it, with what it recorded.
 */
export function replayPage(
  file: string,
  trace: MachineTrace,
  result: ReplayResult,
  label: string,
): string {
  const judged = !result.run || (result.passed && trace.meta.violation !== undefined)
    ? recordedRun(trace)
    : undefined;
  const run = judged ?? result.run!;
  const why = result.run ? "the replay passes now" : "the replay could not run";
  const drawn = judged
    ? `the recorded trace, judged by the spec alone (${why})`
    : `the replay against the implementation (quirks: ${label})`;
  return renderHtml({
    file,
    trace,
    run,
    drawn,
    recorded: judged !== undefined,
    verdict: verdict(result, label),
    passed: result.passed,
  });
}
