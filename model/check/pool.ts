/**
 * `check --workers N`: N Deno Workers (worker.ts) take pieces from one queue, in order, each
 * one piece at a time. A worker that dies (an uncaught error, out of memory) fails its piece
 * with the reason and is replaced, so the other pieces still run; so is one whose piece is no
 * longer needed (cancelled: its suite was decided by an earlier piece).
 *
 * @module
 */
import type { SuiteReport } from "../suites.ts";
import type { CoverageEntries, PieceJob, WorkerMessage } from "./worker.ts";

/** What the pool tells its caller while it runs. */
export interface PoolEvents {
  /** A piece was handed to a worker. */
  onStart(id: number): void;
  /** A running piece has done `runs` runs so far. */
  onProgress(id: number, runs: number): void;
  /** A piece finished. */
  onDone(id: number, report: SuiteReport, coverage?: CoverageEntries): void;
}

/** A worker that has loaded its modules, or why it could not. */
function spawn(): Promise<Worker> {
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      if (e.data.type === "ready") resolve(worker);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(e.message));
    };
  });
}

/** Why a lane's piece ended without a report: {@link WorkerPool.cancel}. */
class Cancelled extends Error {}

/** The report of a piece whose worker died. */
function crashReport(job: PieceJob, why: string, ms: number): SuiteReport {
  const violation = `worker died: ${why}`;
  const trace = { suite: job.suite, seed: job.seed, from: job.from, violation };
  return {
    suite: job.suite,
    runs: 0,
    commands: 0,
    ms,
    seed: job.seed,
    failure: { violation, trace, length: 0 },
  };
}

/** A set of workers running pieces. */
export class WorkerPool {
  readonly #workers = new Set<Worker>();
  /** The running pieces, by id: how to abandon each. */
  readonly #running = new Map<number, () => void>();
  #stopped = false;

  /** A pool of at most `size` workers. */
  constructor(readonly size: number) {}

  /**
   * Runs `jobs` in order on up to `size` workers, leaving out those `skip` names when their
   * turn comes; resolves when every job is done, skipped or cancelled.
   */
  async run(jobs: readonly PieceJob[], skip: (id: number) => boolean, events: PoolEvents) {
    let next = 0;
    const take = () => {
      while (next < jobs.length && skip(jobs[next].id)) next++;
      return jobs[next++];
    };
    const lane = async () => {
      let worker: Worker | undefined;
      for (let job = take(); job && !this.#stopped; job = take()) {
        const start = performance.now();
        events.onStart(job.id);
        try {
          worker ??= await this.#add(spawn());
          if (this.#stopped) return;
          if (skip(job.id)) continue;
          const r = await this.#execute(worker, job, events);
          events.onDone(job.id, r.report, r.coverage);
        } catch (e) {
          if (this.#stopped) return;
          if (worker) this.#remove(worker);
          worker = undefined;
          if (e instanceof Cancelled) continue;
          events.onDone(job.id, crashReport(job, (e as Error).message, performance.now() - start));
        }
      }
      if (worker) this.#remove(worker);
    };
    await Promise.all(Array.from({ length: Math.min(this.size, jobs.length) }, lane));
  }

  /** Abandons the running piece `id` (its worker is terminated and replaced), if it runs. */
  cancel(id: number): void {
    this.#running.get(id)?.();
  }

  /** Terminates every worker; the pieces they were running are abandoned. */
  stop(): void {
    this.#stopped = true;
    for (const w of this.#workers) w.terminate();
    this.#workers.clear();
  }

  /** Runs `job` on `worker`: its report, or an Error when the worker died or it was cancelled. */
  #execute(
    worker: Worker,
    job: PieceJob,
    events: PoolEvents,
  ): Promise<{ report: SuiteReport; coverage?: CoverageEntries }> {
    return new Promise<{ report: SuiteReport; coverage?: CoverageEntries }>((resolve, reject) => {
      this.#running.set(job.id, () => reject(new Cancelled()));
      worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
        const m = e.data;
        if (m.type === "progress") events.onProgress(m.id, m.runs);
        if (m.type === "done") resolve(m);
      };
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
      worker.postMessage(job);
    }).finally(() => this.#running.delete(job.id));
  }

  async #add(started: Promise<Worker>): Promise<Worker> {
    const worker = await started;
    if (this.#stopped) worker.terminate();
    else this.#workers.add(worker);
    return worker;
  }

  #remove(worker: Worker): void {
    worker.terminate();
    this.#workers.delete(worker);
  }
}
