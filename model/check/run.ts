/**
 * One `check` run: the plan's pieces on a {@link WorkerPool}, each suite decided from its
 * pieces as soon as it can be (plan.ts), its counterexample written and announced then, and
 * what was found so far available at any moment (a Ctrl-C prints it).
 *
 * @module
 */
import type { QuirkName } from "../../impl/quirks.ts";
import { Coverage } from "../coverage.ts";
import { RunError } from "../cli/common.ts";
import type { Machine } from "../machine.ts";
import type { Suite } from "../machines.ts";
import type { SuiteReport } from "../suites.ts";
import { mergePieces, type Piece, type PieceResult, planPieces, type Shard } from "./plan.ts";
import { WorkerPool } from "./pool.ts";
import type { CheckProgress } from "./progress.ts";
import type { FailureInfo, SuiteOutcome } from "./report.ts";
import type { CoverageEntries, PieceJob } from "./worker.ts";

/** What to run and how. */
export interface CheckConfig {
  /** The selected suites. */
  readonly suites: readonly Suite[];
  /** Runs of each suite (before sharding). */
  readonly runsOf: (suite: Suite) => number;
  /** fast-check seed. */
  readonly seed: number;
  /** `--seconds`: the time budget of every piece. */
  readonly seconds?: number;
  /** Quirks switched on. */
  readonly quirks: readonly QuirkName[];
  /** Race scheduler. */
  readonly sched: "random" | "pct";
  /** PCT depth. */
  readonly pctDepth?: number;
  /** Workers. */
  readonly workers: number;
  /** `--shard`. */
  readonly shard?: Shard;
  /** Counterexample directory. */
  readonly out: string;
  /** Whether to tally coverage. */
  readonly coverage: boolean;
}

/** A value as one shell word. */
function shellWord(s: string): string {
  return /^[\w.,:/+=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A suite's pieces and what has been found. */
interface SuiteState {
  readonly suite: Suite;
  readonly pieces: readonly Piece[];
  started?: number;
  outcome?: SuiteOutcome;
}

/** A running (or finished) check. */
export class CheckRun {
  /** The pieces of this run. */
  readonly pieces: readonly Piece[];
  /** Coverage tallies per machine (with `coverage`), from the pieces that count. */
  readonly tallies: Map<Machine, Coverage> = new Map();
  /** Counterexample files written. */
  readonly files: string[] = [];
  readonly #suites: SuiteState[];
  readonly #results = new Map<number, PieceResult>();
  readonly #progress = new Map<number, number>();
  readonly #pool: WorkerPool;
  readonly #start = performance.now();
  #error: RunError | undefined;

  /** Plans the run; `announce` gets the lines that stay (a suite passed, failed, where to). */
  constructor(readonly config: CheckConfig, readonly announce: (line: string) => void) {
    this.pieces = planPieces(config.suites, config.runsOf, config.workers, config.shard);
    this.#suites = config.suites
      .map((suite) => ({ suite, pieces: this.pieces.filter((p) => p.suite === suite) }))
      .filter((s) => s.pieces.length > 0);
    this.#pool = new WorkerPool(config.workers);
  }

  /**
   * Runs every piece, the fuzzers first (under the default budgets theirs are the longest
   * pieces), then the rest in plan order; a counterexample that cannot be written fails the
   * run after the rest ran.
   */
  async run(): Promise<void> {
    const c = this.config;
    const order = [
      ...this.pieces.filter((p) => p.suite.mode === "fuzz"),
      ...this.pieces.filter((p) => p.suite.mode !== "fuzz"),
    ];
    const jobs: PieceJob[] = order.map((p) => ({
      id: p.id,
      suite: p.suite.name,
      seed: c.seed,
      from: p.from,
      runs: p.runs,
      seconds: c.seconds,
      quirks: c.quirks,
      sched: c.sched,
      pctDepth: c.pctDepth,
      coverage: c.coverage && p.suite.machine !== undefined,
    }));
    const owner = new Map(this.#suites.flatMap((s) => s.pieces.map((p) => [p.id, s])));
    await this.#pool.run(jobs, (id) => owner.get(id)!.outcome !== undefined, {
      onStart: (id) => {
        owner.get(id)!.started ??= performance.now();
      },
      onProgress: (id, runs) => this.#progress.set(id, runs),
      onDone: (id, report, coverage) => {
        this.#results.set(id, { piece: this.pieces[id], report, coverage });
        const s = owner.get(id)!;
        if (!s.outcome) this.#decide(s);
      },
    });
    if (this.#error) throw this.#error;
  }

  /**
   * Stops every worker (Ctrl-C). An undecided suite one of whose finished pieces failed is
   * failed with that counterexample (the first of them; an unfinished earlier piece might have
   * found an earlier one).
   */
  stop(): void {
    this.#pool.stop();
    for (const s of this.#suites) {
      if (s.outcome) continue;
      const done = s.pieces.flatMap((p) => this.#results.get(p.id)?.report ?? []);
      const failed = done.find((r) => r.failure);
      if (!failed) continue;
      this.#conclude(s, {
        ...failed,
        runs: this.#runsSoFar(s),
        commands: done.reduce((n, r) => n + r.commands, 0),
        ms: done.reduce((n, r) => n + r.ms, 0),
      });
    }
  }

  /** Milliseconds since the run started. */
  elapsedMs(): number {
    return performance.now() - this.#start;
  }

  /** Every suite's outcome so far: decided ones, and the others as interrupted. */
  outcomes(): SuiteOutcome[] {
    return this.#suites.map((s) =>
      s.outcome ?? {
        suite: s.suite.name,
        status: "interrupted",
        runs: this.#runsSoFar(s),
        ms: s.started === undefined ? 0 : performance.now() - s.started,
      }
    );
  }

  /** Where the run is, for the status line. */
  progress(): CheckProgress {
    const outcomes = this.outcomes();
    const now = performance.now();
    return {
      done: outcomes.filter((o) => o.status !== "interrupted").length,
      total: outcomes.length,
      failed: outcomes.filter((o) => o.status === "failed").length,
      elapsedMs: now - this.#start,
      seconds: this.config.seconds,
      running: this.#suites.filter((s) => !s.outcome && s.started !== undefined).map((s) => ({
        suite: s.suite.name,
        runs: this.#runsSoFar(s),
        budget: s.pieces.reduce((n, p) => n + p.runs, 0),
        elapsedMs: now - s.started!,
      })),
    };
  }

  /** Runs of suite `s` so far: of its finished pieces, and as last reported of the others. */
  #runsSoFar(s: SuiteState): number {
    return s.pieces.reduce(
      (n, p) => n + (this.#results.get(p.id)?.report.runs ?? this.#progress.get(p.id) ?? 0),
      0,
    );
  }

  /**
   * Decides suite `s` if its pieces allow: tallies its coverage, concludes it, and cancels its
   * pieces still running (they no longer count).
   */
  #decide(s: SuiteState): void {
    const merged = mergePieces(s.pieces, this.#results);
    if (!merged) return;
    const machine = s.suite.machine;
    if (this.config.coverage && machine) {
      for (const r of merged.counted) this.#tally(machine, r.coverage);
    }
    this.#conclude(s, merged.report);
    for (const p of s.pieces) if (!this.#results.has(p.id)) this.#pool.cancel(p.id);
  }

  /** Sets the outcome of suite `s` from `report`, writes its counterexample, announces it. */
  #conclude(s: SuiteState, merged: SuiteReport): void {
    // wall time from the suite's first piece's start to its verdict, not its pieces' sum
    const ms = s.started === undefined ? merged.ms : performance.now() - s.started;
    const report = { ...merged, ms };
    const seconds = (ms / 1000).toFixed(1);
    if (!report.failure) {
      s.outcome = { suite: s.suite.name, status: "passed", ...this.#counts(report) };
      this.announce(`check: ${s.suite.name} passed ${report.runs} runs in ${seconds} s`);
      return;
    }
    const failure = this.#write(s.suite, report);
    s.outcome = { suite: s.suite.name, status: "failed", ...this.#counts(report), failure };
    this.announce(
      `check: ${s.suite.name} FAILED after ${report.runs} runs: ${report.failure.violation}`,
    );
    const path = failure.path === undefined ? "" : `, path ${failure.path}`;
    const cx = `counterexample (${failure.length} steps)`;
    if (this.files.includes(failure.counterexample)) {
      this.announce(
        `check: seed ${failure.seed}${path}; ${cx} written to ${failure.counterexample}`,
      );
      this.announce(`check: replay it with: npm run replay -- ${failure.counterexample}`);
    } else {
      this.announce(`check: seed ${failure.seed}${path}; ${cx} NOT written`);
    }
    if (failure.replay) this.announce(`check: or from the seed: ${failure.replay}`);
  }

  #counts(r: SuiteReport): { runs: number; commands: number; ms: number } {
    return { runs: r.runs, commands: r.commands, ms: r.ms };
  }

  /** Adds a piece's coverage to its machine's tally. */
  #tally(machine: Machine, entries: CoverageEntries | undefined): void {
    let c = this.tallies.get(machine);
    if (!c) this.tallies.set(machine, c = new Coverage());
    for (const [op, results] of entries ?? []) {
      let row = c.counts.get(op);
      if (!row) c.counts.set(op, row = new Map());
      for (const [result, n] of results) row.set(result, (row.get(result) ?? 0) + n);
    }
  }

  /** Writes the counterexample of a failed suite; what the report says about it. */
  #write(suite: Suite, report: SuiteReport): FailureInfo {
    const { seed, quirks, sched, out } = this.config;
    const f = report.failure!;
    const tag = suite.mode === "race" && sched === "pct" ? "-pct" : "";
    const file = `${out}/${suite.name}-${quirks.join("+") || "correct"}${tag}-${seed}.itf.json`;
    try {
      Deno.mkdirSync(out, { recursive: true });
      Deno.writeTextFileSync(file, JSON.stringify(f.trace, null, 1) + "\n");
      this.files.push(file);
    } catch (e) {
      this.#error ??= new RunError(`cannot write counterexample ${file}: ${(e as Error).message}`);
    }
    const meta = (f.trace as { "#meta"?: { path?: string; replayPath?: string } })["#meta"];
    const path = meta?.path;
    const replayPath = meta?.replayPath;
    const replay = path === undefined || tag ? undefined : [
      "npm run replay --",
      `--seed ${seed} --path ${shellWord(path)}`,
      ...(replayPath === undefined ? [] : [`--replay-path ${shellWord(replayPath)}`]),
      `--suite ${suite.name}`,
      ...quirks.map((q) => `--quirk ${q}`),
    ].join(" ");
    return {
      violation: f.violation,
      seed,
      path,
      replayPath,
      counterexample: file,
      length: f.length,
      replay,
    };
  }
}
