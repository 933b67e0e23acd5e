/**
 * `deno task replay` — replays a counterexample step by step against the spec and the
 * implementation and marks the first divergence. Exit 1 on divergence, 0 when it passes.
 *
 *   deno task replay FILE.itf.json            with the quirks the trace names
 *   deno task replay --no-quirk FILE.itf.json against the correct implementation
 *   deno task replay --seed N --path P [--replay-path R] --suite S [--quirk NAME]...   a fast-check report
 *
 * @module
 */
import type { QuirkName } from "../../impl/quirks.ts";
import { replayRace, type ReplayResult, replaySequential } from "../replay.ts";
import { runSuite, type SuiteName, SUITES } from "../suites.ts";
import { parseTrace } from "../trace.ts";
import { loadTrace, parseArgs, quirkNames, runCli, suiteNames, UsageError } from "./common.ts";

const USAGE = `usage: deno task replay [--no-quirk] FILE.itf.json
       deno task replay --seed N --path P [--replay-path R] --suite ${
  SUITES.join("|")
} [--quirk NAME]...`;

async function fromFile(file: string, noQuirk: boolean): Promise<ReplayResult> {
  const trace = await loadTrace(file);
  const quirks = noQuirk ? {} : Object.fromEntries(trace.meta.quirks.map((q) => [q, true]));
  console.log(
    `${file}: ${trace.meta.suite} trace, quirks: ${
      noQuirk ? "none (--no-quirk)" : trace.meta.quirks.join(", ") || "none"
    }`,
  );
  if (trace.meta.violation) console.log(`recorded violation: ${trace.meta.violation}`);
  return trace.meta.suite === "race"
    ? await replayRace(trace, quirks, !noQuirk)
    : await replaySequential(trace.steps.map((s) => s.cmd), quirks);
}

async function fromSeed(
  seed: number,
  path: string,
  replayPath: string | undefined,
  suite: SuiteName,
  quirks: QuirkName[],
): Promise<ReplayResult> {
  const report = await runSuite(suite, { seed, path, replayPath, runs: 1, quirks });
  if (!report.failure) return { lines: [`seed ${seed} path ${path}: passes now`], passed: true };
  const trace = parseTrace(JSON.stringify(report.failure.trace));
  const switches = Object.fromEntries(quirks.map((q) => [q, true]));
  return suite === "race"
    ? await replayRace(trace, switches, true)
    : await replaySequential(trace.steps.map((s) => s.cmd), switches);
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
    console.log(USAGE);
    return 0;
  }
  let result: ReplayResult;
  if (flags.seed !== undefined || flags.path !== undefined) {
    if (positional.length > 0) {
      throw new UsageError("give either a trace file or --seed/--path, not both");
    }
    if (flags.seed === undefined || flags.path === undefined || flags.suite === undefined) {
      throw new UsageError("--seed, --path and --suite go together");
    }
    const [suite] = suiteNames([flags.suite as string]);
    const quirks = quirkNames(flags.quirk as string[] | undefined);
    result = await fromSeed(
      flags.seed as number,
      flags.path as string,
      flags["replay-path"] as string | undefined,
      suite as SuiteName,
      quirks,
    );
  } else {
    if (positional.length !== 1) throw new UsageError("expected one trace file (see --help)");
    result = await fromFile(positional[0], flags["no-quirk"] === true);
  }
  for (const l of result.lines) console.log(l);
  return result.passed ? 0 : 1;
}

if (import.meta.main) await runCli("replay", main);
