/**
 * How `check` cuts its work into pieces: a piece is one suite's run range `[from, from + runs)`
 * of the seed's run sequence. Any suite can be cut anywhere: fast-check starts at any run index
 * and the fuzzers at any case (see `SuiteOptions.from`). `--shard I/N` cuts every suite into N
 * ranges and keeps range I; the workers then cut further only when there are fewer pieces than
 * workers. The pieces of a suite, merged (see {@link mergePieces}), report what the unsplit suite
 * reports under a `--runs` budget, so the table does not depend on `--workers`.
 *
 * @module
 */
import type { Suite } from "../machines.ts";
import type { SuiteReport } from "../suites.ts";
import type { CoverageEntries } from "./worker.ts";

/** One unit of work: runs `from` to `from + runs - 1` of one suite. */
export interface Piece {
  /** Position in the plan (pieces of a suite are consecutive, by `from`). */
  readonly id: number;
  /** The suite. */
  readonly suite: Suite;
  /** First run index. */
  readonly from: number;
  /** Number of runs. */
  readonly runs: number;
}

/** `--shard I/N`: this machine is shard `index` (1-based) of `count`. */
export interface Shard {
  /** 1 to `count`. */
  readonly index: number;
  /** Number of shards. */
  readonly count: number;
}

/** Part `i` (0-based) of `[from, from + runs)` cut into `parts` contiguous near-equal ranges. */
function part(
  from: number,
  runs: number,
  i: number,
  parts: number,
): { from: number; runs: number } {
  const start = Math.floor((runs * i) / parts);
  return { from: from + start, runs: Math.floor((runs * (i + 1)) / parts) - start };
}

/** `[from, from + runs)` cut into `parts` ranges, empty ones left out. */
function cut(from: number, runs: number, parts: number): { from: number; runs: number }[] {
  return Array.from({ length: parts }, (_, i) => part(from, runs, i, parts)).filter((r) => r.runs);
}

/**
 * The pieces this machine runs: `suites` with `runsOf(suite)` runs each, the part of `shard`
 * (default: everything), cut further until there are at least `workers` pieces (as far as the
 * runs go).
 */
export function planPieces(
  suites: readonly Suite[],
  runsOf: (suite: Suite) => number,
  workers: number,
  shard: Shard = { index: 1, count: 1 },
): Piece[] {
  let ranges = suites.flatMap((suite) => {
    const mine = part(0, runsOf(suite), shard.index - 1, shard.count);
    return mine.runs ? [{ suite, ...mine }] : [];
  });
  if (ranges.length > 0 && ranges.length < workers) {
    const parts = Math.ceil(workers / ranges.length);
    ranges = ranges.flatMap((r) => cut(r.from, r.runs, parts).map((c) => ({ ...r, ...c })));
  }
  return ranges.map((r, id) => ({ id, ...r }));
}

/** What a finished piece found. */
export interface PieceResult {
  /** The piece. */
  readonly piece: Piece;
  /** Its report (`runs` counts the piece's runs only). */
  readonly report: SuiteReport;
  /** Its coverage tally, when asked for. */
  readonly coverage?: CoverageEntries;
}

/**
 * One suite's report from its pieces' results, or undefined while that is not yet decided.
 * The suite has failed once a piece failed and every piece before it passed: its failure is
 * that piece's (the first failing run of the sequence, shrunk as the unsplit suite shrinks it),
 * `runs` and `commands` add up the pieces up to it, and the pieces after it do not count. Otherwise it is
 * decided when every piece is done. `ms` sums the pieces' times (the run reports wall time).
 */
export function mergePieces(
  pieces: readonly Piece[],
  results: ReadonlyMap<number, PieceResult>,
): { report: SuiteReport; counted: readonly PieceResult[] } | undefined {
  const counted: PieceResult[] = [];
  for (const piece of pieces) {
    const r = results.get(piece.id);
    if (!r) return undefined;
    counted.push(r);
    if (r.report.failure) break;
  }
  const last = counted.at(-1)!.report;
  const report: SuiteReport = {
    suite: last.suite,
    runs: counted.reduce((n, r) => n + r.report.runs, 0),
    commands: counted.reduce((n, r) => n + r.report.commands, 0),
    ms: counted.reduce((n, r) => n + r.report.ms, 0),
    seed: last.seed,
    failure: last.failure,
  };
  return { report, counted };
}
