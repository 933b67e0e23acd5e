/**
 * `deno task replay` — replays a counterexample step by step against the spec and the
 * implementation and marks the first divergence. Exit 1 on divergence, 0 when it passes.
 *
 *   deno task replay FILE.itf.json            with the quirks the trace names
 *   deno task replay --no-quirk FILE.itf.json against the correct implementation
 *   deno task replay FILE.itf.json --html OUT.html
 *                                             also draws the run as one HTML page
 *   deno task replay --minimize FILE.itf.json [--out MIN.itf.json]
 *                                             re-shrinks it against the current implementation
 *   deno task replay --seed N --path P [--replay-path R] --suite S [--quirk NAME]...
 *                                             a fast-check report
 *
 * @module
 */
import { ItfError } from "../itf.ts";
import { machineNamed } from "../machines.ts";
import { minimize } from "../minimize.ts";
import { checkTrace } from "../oracle/mod.ts";
import { quirkSwitches, type ReplayResult, replayTrace } from "../replay.ts";
import { runSuite } from "../suites.ts";
import { type MachineTrace, parseTrace } from "../trace.ts";
import { replayPage } from "../view/page.ts";
import {
  parseArgs,
  printLines,
  quirkNames,
  runCli,
  RunError,
  UsageError,
  writeTextOrFail,
} from "./common.ts";
import { loadTrace, suitesNamed } from "./model_args.ts";

const USAGE = `usage: deno task replay [--no-quirk] FILE.itf.json [--html OUT.html]
       deno task replay --minimize FILE.itf.json [--out MIN.itf.json]
       deno task replay --seed N --path P [--replay-path R] --suite NAME [--quirk NAME]...`;

/**
 * A trace file, its recorded states checked against the spec's shape as the oracle checks them
 * (replay re-runs the commands and would otherwise never read them): a state field of the
 * wrong type is bad input, whatever the replay does.
 */
async function loadRecordedTrace(file: string): Promise<MachineTrace> {
  const trace = await loadTrace(file);
  try {
    checkTrace(trace);
  } catch (e) {
    if (e instanceof ItfError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
  return trace;
}

async function fromFile(file: string, noQuirk: boolean, html?: string): Promise<ReplayResult> {
  const trace = await loadRecordedTrace(file);
  const { machine, mode, quirks, violation } = trace.meta;
  const label = noQuirk ? "none (--no-quirk)" : quirks.join(", ") || "none";
  await printLines(`${file}: ${machine} ${mode} trace, quirks: ${label}`);
  if (violation) await printLines(`recorded violation: ${violation}`);
  const result = await replayTrace(trace, noQuirk ? {} : quirkSwitches(quirks), !noQuirk);
  await printLines(...result.lines);
  if (html !== undefined) {
    await writeTextOrFail(html, replayPage(file.split("/").at(-1)!, trace, result, label));
    await printLines(`wrote ${html}`);
  }
  return result;
}

async function fromSeed(flags: Record<string, unknown>): Promise<ReplayResult> {
  if (flags.seed === undefined || flags.path === undefined || flags.suite === undefined) {
    throw new UsageError("--seed, --path and --suite go together");
  }
  const [suite] = suitesNamed([flags.suite as string]);
  const quirks = quirkNames(flags.quirk as string[] | undefined);
  const seed = flags.seed as number;
  const path = flags.path as string;
  if (!/^\d+(:\d+)*$/.test(path)) {
    throw new UsageError(`--path: expected a fast-check path like 12:0:3, got "${path}"`);
  }
  const replayPath = flags["replay-path"] as string | undefined;
  if (replayPath !== undefined && !/^[A-Za-z0-9+/:]+$/.test(replayPath)) {
    throw new UsageError(
      `--replay-path: expected fast-check's replay path (like cEB:F), got "${replayPath}"`,
    );
  }
  let report;
  try {
    report = await runSuite(suite, { seed, path, replayPath, runs: 1, quirks });
  } catch (e) {
    // fast-check's own word for a path or replay path it cannot follow.
    const undecodable = replayPath !== undefined && e instanceof TypeError;
    if (undecodable || (e instanceof Error && e.message.startsWith("Unable to replay"))) {
      throw new UsageError(
        `--path ${path}${replayPath ? ` --replay-path ${replayPath}` : ""}: fast-check cannot ` +
          `follow it (${e.message})`,
      );
    }
    throw e;
  }
  if (!report.failure) {
    const lines = [`seed ${seed} path ${path}: passes now`];
    await printLines(...lines);
    return { lines, passed: true };
  }
  const trace = parseTrace(JSON.stringify(report.failure.trace), machineNamed);
  const result = await replayTrace(trace, quirkSwitches(quirks), true);
  await printLines(...result.lines);
  return result;
}

/** Whether `a` and `b` name the same existing file. */
function sameFile(a: string, b: string): boolean {
  try {
    return Deno.realPathSync(a) === Deno.realPathSync(b);
  } catch {
    return false;
  }
}

/** `--minimize FILE [--out OUT]`: writes the shortest failing trace found; exit 0. */
async function minimizeFile(file: string, out: string | undefined): Promise<number> {
  const trace = await loadRecordedTrace(file);
  const target = out ?? file.replace(/(\.itf)?\.json$/, "") + ".min.itf.json";
  if (sameFile(target, file)) throw new UsageError(`--out ${target}: that is the trace itself`);
  const quirks = trace.meta.quirks.join(", ") || "none";
  const found = await minimize(trace);
  if (!found) {
    const also = trace.meta.quirks.length > 0 ? " (or fails without them too)" : "";
    throw new RunError(
      `${file}: does not fail with its quirks (${quirks})${also}: nothing to minimize`,
    );
  }
  await writeTextOrFail(target, JSON.stringify(found.trace, null, 1) + "\n");
  await printLines(
    `${file}: ${found.before} steps before, ${found.after} after (${found.tried} replays, quirks: ${quirks})`,
    `still fails: ${found.violation}`,
    `wrote ${target}`,
  );
  return 0;
}

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, {
    "no-quirk": "bool",
    seed: "int",
    path: "string",
    "replay-path": "string",
    suite: "string",
    quirk: "list",
    html: "string",
    minimize: "bool",
    out: "string",
    help: "bool",
  });
  if (flags.help) {
    await printLines(USAGE);
    return 0;
  }
  const bySeed = flags.seed !== undefined || flags.path !== undefined;
  if (bySeed && positional.length > 0) {
    throw new UsageError("give either a trace file or --seed/--path, not both");
  }
  if (!bySeed && positional.length !== 1) {
    throw new UsageError("expected one trace file (see --help)");
  }
  const html = flags.html as string | undefined;
  const out = flags.out as string | undefined;
  if (html === "") throw new UsageError("--html needs a file name");
  if (out !== undefined && !flags.minimize) throw new UsageError("--out goes with --minimize");
  if (flags.minimize) {
    if (bySeed) throw new UsageError("--minimize takes a trace file, not --seed/--path");
    if (html !== undefined) throw new UsageError("--minimize and --html do not go together");
    if (flags["no-quirk"]) {
      throw new UsageError("--minimize uses the trace's quirks: no --no-quirk");
    }
    if (out === "") throw new UsageError("--out needs a file name");
    return await minimizeFile(positional[0], out);
  }
  if (bySeed && html !== undefined) {
    throw new UsageError("--html takes a trace file, not --seed/--path");
  }
  const result = bySeed
    ? await fromSeed(flags)
    : await fromFile(positional[0], flags["no-quirk"] === true, html);
  return result.passed ? 0 : 1;
}

if (import.meta.main) await runCli("replay", main);
