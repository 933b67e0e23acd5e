/**
 * `deno task check` — the main job: runs every suite with a budget, prints progress on stderr
 * and a summary table on stdout, writes each counterexample found as an ITF trace, and exits 1
 * if any suite failed (with `--quirk`, a failure is the defect being detected).
 *
 * @module
 */
import type { QuirkName } from "../../impl/quirks.ts";
import type { Shard } from "../check/plan.ts";
import { ProgressDisplay } from "../check/progress.ts";
import {
  type CheckOutcome,
  jsonReport,
  junitXml,
  REPORT_FORMATS,
  type ReportFormat,
  type SuiteOutcome,
  writeReport,
} from "../check/report.ts";
import { type CheckConfig, CheckRun } from "../check/run.ts";
import { type Coverage, formatCoverage, type MachineCoverage, summarize } from "../coverage.ts";
import type { Machine } from "../machine.ts";
import { type Suite, SUITES } from "../machines.ts";
import { PCT_DEPTH } from "../suites.ts";
import {
  parseArgs,
  printLines,
  quirkNames,
  runCli,
  RunError,
  UsageError,
  writableDir,
} from "./common.ts";
import { suitesNamed } from "./model_args.ts";

const USAGE = `usage: deno task check [--runs N] [--seconds S] [--seed N] [--suite NAME]...
                       [--quirk NAME]... [--expect-failure] [--out DIR] [--sched random|pct]
                       [--pct-depth D] [--coverage [FILE]] [--workers N] [--shard I/N]
                       [--report junit|json FILE]...
  --runs N      runs per suite (default: 10000 per machine suite, 100000 zip-fuzz cases,
                20000 zip-compress-fuzz cases)
  --seconds S   stop each suite (each piece of it, with workers) after S seconds (default: no
                limit)
  --seed N      fast-check seed (default: random, printed)
  --suite NAME  ${SUITES.map((s) => s.name).join(" | ")}
                (default: all, or those of the machine the quirks belong to)
  --quirk NAME  switch a seed defect on in the implementation (repeatable); see README
  --expect-failure  exit 0 when a suite failed (the defect was detected), 1 when none did
  --out DIR     where counterexamples are written (default: out/counterexamples)
  --sched S     who schedules race suites: random (fast-check's scheduler, the default) or pct
                (priorities with d - 1 change points, Burckhardt et al. 2010)
  --pct-depth D the bug depth d PCT aims at, 1 or more (default: ${PCT_DEPTH})
  --coverage [FILE]  after the table, per machine: each op's spec results (ok and every errno)
                with counts, the ops never generated and those never ok; FILE gets it as JSON
  --workers N   Deno Workers running suites and run ranges of a suite (default: the number of
                cores, here ${navigator.hardwareConcurrency}); the table does not depend on N under --runs
  --shard I/N   run only part I of N of the work (every suite's runs cut in N ranges), for
                N machines of a CI matrix
  --report F FILE  also write the outcome, one test case per suite, as F = junit (XML) or json`;

function row(cells: readonly (string | number)[]): string {
  const widths = [18, 8, 10, 9, 9];
  return cells.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join(" ").trimEnd();
}

/** A `--report FORMAT FILE`. */
interface ReportArg {
  readonly format: ReportFormat;
  readonly file: string;
}

/**
 * Takes the flags parseArgs has no kind for out of `argv`: `--coverage [FILE]` /
 * `--coverage=FILE` (an optional value: `coverage` is undefined without the flag, `file`
 * undefined for the table only) and `--report FORMAT FILE` (two values, repeatable, one per
 * format). A FILE that is a directory, or whose directory does not exist, is refused before
 * any suite runs.
 */
function specialArgs(
  argv: readonly string[],
): { rest: string[]; coverage?: { file?: string }; reports: ReportArg[] } {
  const rest: string[] = [];
  const reports: ReportArg[] = [];
  let coverage: { file?: string } | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === "--report") {
      const [format, file] = [argv[i + 1], argv[i + 2]];
      i += 2;
      if (!REPORT_FORMATS.includes(format as ReportFormat)) {
        throw new UsageError(`--report expects junit or json, got ${JSON.stringify(format ?? "")}`);
      }
      if (file === undefined || file === "") {
        throw new UsageError(`--report ${format} needs a file`);
      }
      if (reports.some((r) => r.format === format)) {
        throw new UsageError(`--report ${format} given twice`);
      }
      checkWritable(file, "--report");
      reports.push({ format: format as ReportFormat, file });
      continue;
    }
    if (arg !== "--coverage" && !arg.startsWith("--coverage=")) {
      rest.push(arg);
      continue;
    }
    if (coverage) throw new UsageError("--coverage given twice");
    const next = argv[i + 1];
    const file = arg !== "--coverage"
      ? arg.slice("--coverage=".length)
      : next !== undefined && !next.startsWith("-")
      ? argv[++i]
      : undefined;
    if (file === "") throw new UsageError("--coverage= needs a file name");
    if (file !== undefined) checkWritable(file, "--coverage");
    coverage = { file };
  }
  return { rest, coverage, reports };
}

/** Refuses (exit 2) an output file of `flag` that is a directory or whose directory does not exist. */
function checkWritable(file: string, flag: string): void {
  const slash = file.lastIndexOf("/");
  const dir = slash < 0 ? "." : file.slice(0, slash) || "/";
  const isDir = (path: string) => {
    try {
      return Deno.statSync(path).isDirectory;
    } catch {
      return undefined;
    }
  };
  if (isDir(file)) throw new UsageError(`${flag}: ${file} is a directory`);
  if (!isDir(dir)) throw new UsageError(`${flag}: ${file}: no such directory ${dir}`);
}

/** `--shard I/N`, 1 <= I <= N. */
function shardArg(value: string | undefined): Shard | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const [index, count] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || index < 1 || index > count) {
    throw new UsageError(`--shard expects I/N with 1 <= I <= N, got "${value}"`);
  }
  return { index, count };
}

/**
 * The suites to run: `--suite`s (each once), or by default those of the machine every quirk
 * belongs to.
 * Every quirk must live in the machine of some selected suite: a check that cannot exercise a
 * defect must not pass as "not detected".
 */
function selectSuites(names: readonly string[] | undefined, quirks: readonly QuirkName[]): Suite[] {
  const suites = names
    ? [...new Set(suitesNamed(names))]
    : SUITES.filter((s) => quirks.every((q) => s.machine?.quirks.includes(q)));
  if (suites.length === 0) throw new UsageError("no machine has all of these quirks");
  for (const q of quirks) {
    if (suites.some((s) => s.machine?.quirks.includes(q))) continue;
    const able = SUITES.filter((s) => s.machine?.quirks.includes(q)).map((s) => s.name);
    throw new UsageError(
      `--quirk ${q}: no selected suite exercises it (suites that do: ${able.join(", ")})`,
    );
  }
  return suites;
}

/** The summary table, one row per suite, and the totals line. */
function table(outcomes: readonly SuiteOutcome[], wallMs: number, workers: number): string[] {
  const count = (status: SuiteOutcome["status"]) =>
    outcomes.filter((o) => o.status === status).length;
  const interrupted = count("interrupted");
  return [
    row(["suite", "runs", "commands", "failures", "time"]),
    ...outcomes.map((o) =>
      row([
        o.suite,
        o.runs,
        o.commands ?? "-",
        o.status === "failed" ? 1 : 0,
        `${(o.ms / 1000).toFixed(2)}s`,
        o.status === "interrupted" ? "interrupted" : "",
      ])
    ),
    `${count("passed")} passed, ${count("failed")} failed${
      interrupted ? `, ${interrupted} interrupted` : ""
    } in ${(wallMs / 1000).toFixed(1)} s (${workers} worker${workers === 1 ? "" : "s"})`,
  ];
}

/**
 * With quirks: which suites detected the defect, in how many runs, or (unless `interrupted`)
 * that none did.
 */
function detections(
  outcomes: readonly SuiteOutcome[],
  quirks: readonly QuirkName[],
  interrupted: boolean,
): string[] {
  if (quirks.length === 0) return [];
  const found = outcomes.filter((o) => o.status === "failed");
  if (found.length === 0) {
    if (interrupted) return [];
    const runs = outcomes.reduce((n, o) => n + o.runs, 0);
    return [`defect not detected (${quirks.join(", ")}) in ${runs} runs`];
  }
  return found.map((o) => `defect detected by ${o.suite} in ${o.runs} runs`);
}

/** Everything the command line says. */
interface CheckArgs {
  /** What to run. */
  readonly config: CheckConfig;
  /** `--runs`, when given. */
  readonly runs?: number;
  /** `--coverage [FILE]`. */
  readonly coverage?: { readonly file?: string };
  /** `--report`s. */
  readonly reports: readonly ReportArg[];
  /** `--expect-failure`. */
  readonly expectFailure: boolean;
}

/** Parses and checks the command line (undefined for `--help`, after printing the usage). */
async function checkArgs(argv: readonly string[]): Promise<CheckArgs | undefined> {
  const { rest, coverage, reports } = specialArgs(argv);
  const { flags, positional } = parseArgs(rest, {
    runs: "int",
    seconds: "int",
    seed: "int",
    suite: "list",
    quirk: "list",
    out: "string",
    sched: "string",
    "pct-depth": "int",
    workers: "int",
    shard: "string",
    "expect-failure": "bool",
    help: "bool",
  });
  if (flags.help) {
    await printLines(USAGE);
    return undefined;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const quirks = quirkNames(flags.quirk as string[] | undefined);
  const suites = selectSuites(flags.suite as string[] | undefined, quirks);
  const runs = flags.runs as number | undefined;
  if (runs === 0) throw new UsageError("--runs must be at least 1");
  const sched = flags.sched ?? "random";
  if (sched !== "random" && sched !== "pct") {
    throw new UsageError(`--sched expects random or pct, got "${sched}"`);
  }
  const pctDepth = flags["pct-depth"] as number | undefined;
  if (pctDepth !== undefined && sched !== "pct") {
    throw new UsageError("--pct-depth needs --sched pct");
  }
  if (pctDepth === 0) throw new UsageError("--pct-depth must be at least 1");
  const workers = (flags.workers as number | undefined) ?? navigator.hardwareConcurrency;
  if (workers < 1) throw new UsageError("--workers must be at least 1");
  const config: CheckConfig = {
    suites,
    runsOf: (s) => runs ?? s.defaultRuns,
    seed: (flags.seed as number | undefined) ?? Math.floor(Math.random() * 2 ** 31),
    seconds: flags.seconds as number | undefined,
    quirks,
    sched,
    pctDepth,
    workers,
    shard: shardArg(flags.shard as string | undefined),
    out: (flags.out as string | undefined) ?? "out/counterexamples",
    coverage: coverage !== undefined,
  };
  await writableDir("--out", config.out);
  return { config, runs, coverage, reports, expectFailure: flags["expect-failure"] === true };
}

/** The header line on stderr: seed, budget, implementation, scheduler, workers, shard. */
function header(c: CheckConfig, runs: number | undefined): string {
  const label = c.quirks.length ? `quirks ${c.quirks.join(",")}` : "correct implementation";
  const budget = runs === undefined ? "default runs per suite" : `${runs} runs per suite`;
  const races = c.sched === "pct" ? `, races under pct depth ${c.pctDepth ?? PCT_DEPTH}` : "";
  const shard = c.shard ? `, shard ${c.shard.index}/${c.shard.count}` : "";
  const workers = `${c.workers} worker${c.workers === 1 ? "" : "s"}`;
  return `check: seed ${c.seed}, ${budget}, ${label}${races}, ${workers}${shard}`;
}

async function main(): Promise<number> {
  const started = new Date();
  const args = await checkArgs(Deno.args);
  if (!args) return 0;
  const { config, coverage, reports, expectFailure } = args;
  console.error(header(config, args.runs));
  const progress = new ProgressDisplay(Deno.stderr.isTerminal(), () => run.progress());
  const run: CheckRun = new CheckRun(config, (line) => progress.line(line));
  let interrupted = false;
  const interrupt = Promise.withResolvers<void>();
  const onSigint = () => {
    interrupted = true;
    run.stop();
    interrupt.resolve();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  // A counterexample that could not be written fails the run once the table is out.
  let error: unknown;
  try {
    await Promise.race([run.run(), interrupt.promise]);
  } catch (e) {
    error = e;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    progress.stop();
  }
  const outcomes = run.outcomes();
  const wallMs = run.elapsedMs();
  await printLines(
    ...table(outcomes, wallMs, config.workers),
    ...detections(outcomes, config.quirks, interrupted),
  );
  const result: CheckOutcome = {
    ...config,
    expectFailure,
    interrupted,
    started,
    wallMs,
    suites: outcomes,
  };
  for (const r of reports) {
    await writeReport(r.file, r.format === "junit" ? junitXml(result) : jsonReport(result));
  }
  if (error) throw error;
  if (interrupted) {
    const files = run.files.length
      ? `counterexamples written to ${run.files.join(", ")}`
      : `no counterexample written (they go to ${config.out})`;
    await printLines(`interrupted: seed ${config.seed}; ${files}`);
    return 130;
  }
  if (coverage) await reportCoverage(run.tallies, coverage.file, config.seed);
  const failed = outcomes.some((o) => o.status === "failed");
  return failed === expectFailure ? 0 : 1;
}

/** Prints the coverage tables and, with `file`, writes them there as JSON. */
async function reportCoverage(
  tallies: ReadonlyMap<Machine, Coverage>,
  file: string | undefined,
  seed: number,
): Promise<void> {
  const machines: Record<string, MachineCoverage> = {};
  for (const [machine, c] of tallies) machines[machine.name] = summarize(machine, c);
  await printLines(
    ...(tallies.size ? formatCoverage(machines) : ["", "coverage: no machine suite ran"]),
  );
  if (file === undefined) return;
  try {
    await Deno.writeTextFile(file, JSON.stringify({ seed, machines }, null, 1) + "\n");
  } catch (e) {
    throw new RunError(`--coverage: cannot write ${file}: ${(e as Error).message}`);
  }
}

if (import.meta.main) await runCli("check", main);
