/**
 * A `check` worker (a Deno Worker, started by {@link WorkerPool} in pool.ts): runs the pieces
 * it is sent, one at a time, and answers each with progress messages and its report. It posts
 * `ready` once its modules are loaded.
 *
 * @module
 */
import type { QuirkName } from "../../impl/quirks.ts";
import { Coverage } from "../coverage.ts";
import { type Suite, suiteNamed } from "../machines.ts";
import { runSuite, type SuiteOptions, type SuiteReport } from "../suites.ts";

/** A piece to run, as sent to a worker (plain data: the suite by name). */
export interface PieceJob {
  /** The piece's id in the plan. */
  readonly id: number;
  /** Suite name. */
  readonly suite: string;
  /** fast-check seed. */
  readonly seed: number;
  /** First run index. */
  readonly from: number;
  /** Number of runs. */
  readonly runs: number;
  /** Time budget of the piece. */
  readonly seconds?: number;
  /** Quirks switched on. */
  readonly quirks: readonly QuirkName[];
  /** Race scheduler. */
  readonly sched: "random" | "pct";
  /** PCT depth. */
  readonly pctDepth?: number;
  /** Whether to tally coverage. */
  readonly coverage: boolean;
}

/** A coverage tally as plain data: op → result → count. */
export type CoverageEntries = [string, [string, number][]][];

/** What a worker posts. */
export type WorkerMessage =
  | { readonly type: "ready" }
  | { readonly type: "progress"; readonly id: number; readonly runs: number }
  | {
    readonly type: "done";
    readonly id: number;
    readonly report: SuiteReport;
    readonly coverage?: CoverageEntries;
  };

/** How often a running piece reports its run count. */
const PROGRESS_MS = 200;

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

/** Runs one job, posting progress (runs before the first failure) as it goes. */
async function runJob(job: PieceJob, post: (m: WorkerMessage) => void): Promise<void> {
  const coverage = job.coverage ? new Coverage() : undefined;
  let runs = 0;
  let failed = false;
  let last = performance.now();
  const { seed, from, runs: budget, seconds, quirks, sched, pctDepth } = job;
  const report = await runGuarded(suiteNamed(job.suite)!, {
    seed,
    from,
    runs: budget,
    seconds,
    quirks,
    sched,
    pctDepth,
    coverage,
    onRun: (f) => {
      if (failed) return;
      failed = f;
      runs++;
      const now = performance.now();
      if (now - last >= PROGRESS_MS) {
        last = now;
        post({ type: "progress", id: job.id, runs });
      }
    },
  });
  const entries: CoverageEntries | undefined = coverage &&
    [...coverage.counts].map(([op, row]) => [op, [...row]]);
  post({ type: "done", id: job.id, report, coverage: entries });
}

/** The worker's global scope, as far as this module uses it. */
interface Scope {
  onmessage: ((e: MessageEvent<PieceJob>) => void) | null;
  postMessage(message: WorkerMessage): void;
}

if (import.meta.main) {
  const scope = globalThis as unknown as Scope;
  let queue = Promise.resolve();
  scope.onmessage = (e) => {
    queue = queue.then(() => runJob(e.data, (m) => scope.postMessage(m)));
  };
  scope.postMessage({ type: "ready" });
}
