/**
 * `deno task replay` — replays a counterexample step by step against the spec and the
 * implementation and marks the first divergence. Exit 1 on divergence, 0 when it passes.
 *
 *   deno task replay FILE.itf.json            with the quirks the trace names
 *   deno task replay --no-quirk FILE.itf.json against the correct implementation
 *   deno task replay --seed N --path P [--replay-path R] --suite S [--quirk NAME]...
 *                                             a fast-check report
 *
 * @module
 */
import { machineNamed } from "../machines.ts";
import { type ReplayResult, replayTrace } from "../replay.ts";
import { runSuite } from "../suites.ts";
import { parseTrace } from "../trace.ts";
import { parseArgs, printLines, quirkNames, runCli, UsageError } from "./common.ts";
import { loadTrace, suitesNamed } from "./model_args.ts";

const USAGE = `usage: deno task replay [--no-quirk] FILE.itf.json
       deno task replay --seed N --path P [--replay-path R] --suite NAME [--quirk NAME]...`;

function switches(quirks: readonly string[]): Record<string, boolean> {
  return Object.fromEntries(quirks.map((q) => [q, true]));
}

async function fromFile(file: string, noQuirk: boolean): Promise<ReplayResult> {
  const trace = await loadTrace(file);
  const { machine, mode, quirks, violation } = trace.meta;
  const label = noQuirk ? "none (--no-quirk)" : quirks.join(", ") || "none";
  await printLines(`${file}: ${machine} ${mode} trace, quirks: ${label}`);
  if (violation) await printLines(`recorded violation: ${violation}`);
  return await replayTrace(trace, noQuirk ? {} : switches(quirks), !noQuirk);
}

async function fromSeed(flags: Record<string, unknown>): Promise<ReplayResult> {
  if (flags.seed === undefined || flags.path === undefined || flags.suite === undefined) {
    throw new UsageError("--seed, --path and --suite go together");
  }
  const [suite] = suitesNamed([flags.suite as string]);
  const quirks = quirkNames(flags.quirk as string[] | undefined);
  const seed = flags.seed as number;
  const path = flags.path as string;
  const replayPath = flags["replay-path"] as string | undefined;
  const report = await runSuite(suite, { seed, path, replayPath, runs: 1, quirks });
  if (!report.failure) return { lines: [`seed ${seed} path ${path}: passes now`], passed: true };
  const trace = parseTrace(JSON.stringify(report.failure.trace), machineNamed);
  return await replayTrace(trace, switches(quirks), true);
}

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, {
    "no-quirk": "bool",
    seed: "int",
    path: "string",
    "replay-path": "string",
    suite: "string",
    quirk: "list",
    help: "bool",
  });
  if (flags.help) {
    await printLines(USAGE);
    return 0;
  }
  let result: ReplayResult;
  if (flags.seed !== undefined || flags.path !== undefined) {
    if (positional.length > 0) {
      throw new UsageError("give either a trace file or --seed/--path, not both");
    }
    result = await fromSeed(flags);
  } else {
    if (positional.length !== 1) throw new UsageError("expected one trace file (see --help)");
    result = await fromFile(positional[0], flags["no-quirk"] === true);
  }
  await printLines(...result.lines);
  return result.passed ? 0 : 1;
}

if (import.meta.main) await runCli("replay", main);
