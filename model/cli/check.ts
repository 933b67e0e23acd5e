/**
 * `deno task check` — the main job: runs every suite with a budget, prints progress on stderr
 * and a summary table on stdout, writes each counterexample found as an ITF trace, and exits 1
 * if any suite failed (with `--quirk`, a failure is the defect being detected).
 *
 * @module
 */
import { type Suite, SUITES } from "../machines.ts";
import { PCT_DEPTH, runSuite, type SuiteOptions, type SuiteReport } from "../suites.ts";
import { parseArgs, printLines, quirkNames, runCli, UsageError } from "./common.ts";
import { suitesNamed } from "./model_args.ts";

const USAGE = `usage: deno task check [--runs N] [--seconds S] [--seed N] [--suite NAME]...
                       [--quirk NAME]... [--out DIR] [--sched random|pct] [--pct-depth D]
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
  --pct-depth D the bug depth d PCT aims at, 1 or more (default: ${PCT_DEPTH})`;

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

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, {
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
  for (const suite of suites) {
    console.error(`check: ${suite.name} ...`);
    const r = await runGuarded(suite, {
      seed,
      runs: runs ?? suite.defaultRuns,
      seconds,
      quirks,
      sched,
      pctDepth,
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
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) await runCli("check", main);
