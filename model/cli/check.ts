/**
 * `deno task check` — the main job: runs every suite with a budget, prints progress on stderr
 * and a summary table on stdout, writes each counterexample found as an ITF trace, and exits 1
 * if any suite failed (with `--quirk`, a failure is the defect being detected).
 *
 * @module
 */
import { Coverage, formatCoverage, type MachineCoverage, summarize } from "../coverage.ts";
import type { Machine } from "../machine.ts";
import { type Suite, SUITES } from "../machines.ts";
import { PCT_DEPTH, runSuite, type SuiteOptions, type SuiteReport } from "../suites.ts";
import { parseArgs, printLines, quirkNames, runCli, RunError, UsageError } from "./common.ts";
import { suitesNamed } from "./model_args.ts";

const USAGE = `usage: deno task check [--runs N] [--seconds S] [--seed N] [--suite NAME]...
                       [--quirk NAME]... [--out DIR] [--sched random|pct] [--pct-depth D]
                       [--coverage [FILE]]
  --runs N      runs per suite (default: 10000 per machine suite, 100000 zip-fuzz cases,
                20000 zip-compress-fuzz cases)
  --seconds S   stop each suite after S seconds (default: no limit)
  --seed N      fast-check seed (default: random, printed)
  --suite NAME  ${SUITES.map((s) => s.name).join(" | ")}
                (default: all, or those of the machine the quirks belong to)
  --quirk NAME  switch a seed defect on in the implementation (repeatable); see README
  --out DIR     where counterexamples are written (default: out/counterexamples)
  --sched S     who schedules race suites: random (fast-check's scheduler, the default) or pct
                (priorities with d - 1 change points, Burckhardt et al. 2010)
  --pct-depth D the bug depth d PCT aims at, 1 or more (default: ${PCT_DEPTH})
  --coverage [FILE]  after the table, per machine: each op's spec results (ok and every errno)
                with counts, the ops never generated and those never ok; FILE gets it as JSON`;

function row(cells: readonly (string | number)[]): string {
  const widths = [18, 8, 10, 9, 9];
  return cells.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join(" ").trimEnd();
}

/**
 * {@link runSuite}, with an exception that escapes it (one thrown outside a command, where the
 * runner cannot turn it into a counterexample: the spec's own step, shrinking) reported as
 * the suite's failure, so the other suites still run. Its "trace" names the suite and seed.
 */
async function runGuarded(suite: Suite, o: SuiteOptions): Promise<SuiteReport> {
  const start = performance.now();
  try {
    return await runSuite(suite, o);
  } catch (e) {
    const violation = `exception outside a command: ${e instanceof Error ? e.stack : String(e)}`;
    const trace = { suite: suite.name, seed: o.seed, quirks: [...(o.quirks ?? [])], violation };
    return {
      suite: suite.name,
      runs: 0,
      commands: 0,
      ms: performance.now() - start,
      seed: o.seed,
      failure: { violation: violation.split("\n")[0], trace, length: 0 },
    };
  }
}

/**
 * Takes `--coverage [FILE]` / `--coverage=FILE` out of `argv` (a flag with an optional value,
 * which parseArgs has not): `coverage` is undefined without it, else where the JSON goes
 * (`file` undefined: the table only). A FILE that is a directory, or whose directory does not
 * exist, is refused before any suite runs.
 */
function coverageArg(argv: readonly string[]): { rest: string[]; coverage?: { file?: string } } {
  const rest: string[] = [];
  let coverage: { file?: string } | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
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
    if (file !== undefined) checkWritable(file);
    coverage = { file };
  }
  return { rest, coverage };
}

/** Refuses (exit 2) a coverage file that is a directory or whose directory does not exist. */
function checkWritable(file: string): void {
  const slash = file.lastIndexOf("/");
  const dir = slash < 0 ? "." : file.slice(0, slash) || "/";
  const isDir = (path: string) => {
    try {
      return Deno.statSync(path).isDirectory;
    } catch {
      return undefined;
    }
  };
  if (isDir(file)) throw new UsageError(`--coverage: ${file} is a directory`);
  if (!isDir(dir)) throw new UsageError(`--coverage: ${file}: no such directory ${dir}`);
}

async function main(): Promise<number> {
  const { rest, coverage } = coverageArg(Deno.args);
  const { flags, positional } = parseArgs(rest, {
    runs: "int",
    seconds: "int",
    seed: "int",
    suite: "list",
    quirk: "list",
    out: "string",
    sched: "string",
    "pct-depth": "int",
    help: "bool",
  });
  if (flags.help) {
    await printLines(USAGE);
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const quirks = quirkNames(flags.quirk as string[] | undefined);
  const suites = flags.suite
    ? suitesNamed(flags.suite as string[])
    : SUITES.filter((s) => quirks.every((q) => s.machine?.quirks.includes(q)));
  if (suites.length === 0) throw new UsageError("no machine has all of these quirks");
  const seed = (flags.seed as number | undefined) ?? Math.floor(Math.random() * 2 ** 31);
  const runs = flags.runs as number | undefined;
  const seconds = flags.seconds as number | undefined;
  const out = (flags.out as string | undefined) ?? "out/counterexamples";
  const sched = flags.sched ?? "random";
  if (sched !== "random" && sched !== "pct") {
    throw new UsageError(`--sched expects random or pct, got "${sched}"`);
  }
  const pctDepth = flags["pct-depth"] as number | undefined;
  if (pctDepth !== undefined && sched !== "pct") {
    throw new UsageError("--pct-depth needs --sched pct");
  }
  if (pctDepth === 0) throw new UsageError("--pct-depth must be at least 1");
  const label = quirks.length ? `quirks ${quirks.join(",")}` : "correct implementation";
  const budget = runs === undefined ? "default runs per suite" : `${runs} runs per suite`;
  const races = sched === "pct" ? `, races under pct depth ${pctDepth ?? PCT_DEPTH}` : "";
  console.error(`check: seed ${seed}, ${budget}, ${label}${races}`);
  const reports: SuiteReport[] = [];
  const tallies = new Map<Machine, Coverage>();
  for (const suite of suites) {
    console.error(`check: ${suite.name} ...`);
    const r = await runGuarded(suite, {
      seed,
      runs: runs ?? suite.defaultRuns,
      seconds,
      quirks,
      sched,
      pctDepth,
      coverage: coverage && suite.machine ? tally(tallies, suite.machine) : undefined,
    });
    reports.push(r);
    if (r.failure) {
      await Deno.mkdir(out, { recursive: true });
      const tag = suite.mode === "race" && sched === "pct" ? "-pct" : "";
      const file = `${out}/${suite.name}-${quirks.join("+") || "correct"}${tag}-${seed}.itf.json`;
      await Deno.writeTextFile(file, JSON.stringify(r.failure.trace, null, 1) + "\n");
      console.error(`check: ${suite.name} FAILED after ${r.runs} runs: ${r.failure.violation}`);
      console.error(`check: counterexample (${r.failure.length} steps) written to ${file}`);
      console.error(`check: replay it with: npm run replay -- ${file}`);
    } else {
      console.error(`check: ${suite.name} passed ${r.runs} runs in ${(r.ms / 1000).toFixed(1)} s`);
    }
  }
  const failed = reports.filter((r) => r.failure).length;
  await printLines(
    row(["suite", "runs", "commands", "failures", "time"]),
    ...reports.map((r) =>
      row([r.suite, r.runs, r.commands, r.failure ? 1 : 0, `${(r.ms / 1000).toFixed(2)}s`])
    ),
    `${reports.length - failed} passed, ${failed} failed`,
  );
  if (coverage) await reportCoverage(tallies, coverage.file, seed);
  return failed > 0 ? 1 : 0;
}

/** The tally of `machine`, created on first use. */
function tally(tallies: Map<Machine, Coverage>, machine: Machine): Coverage {
  let c = tallies.get(machine);
  if (!c) tallies.set(machine, c = new Coverage());
  return c;
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
