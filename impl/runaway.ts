/**
 * Bounds on loops whose end depends on data another party wrote (ring entries the device
 * wrote, a stream the engine is fed): a defect that keeps such a loop going (a phase bit that
 * never flips, a cursor that never advances) would hang the checker or exhaust its memory.
 * Past a bound no correct run comes near, the loop throws {@link RunawayLoopError}, which the
 * checker treats like any other exception in the implementation: a finding, shrunk and saved.
 *
 * @module
 */

/** Iterations of one loop run no correct run reaches (rings hold at most 1024 entries). */
export const LOOP_LIMIT = 1_000_000;

/** A loop ran past {@link LOOP_LIMIT} iterations: the implementation hangs there. */
export class RunawayLoopError extends Error {
  /** Where the loop is (the kernel function it models). */
  readonly where: string;

  /** The error for the loop at `where` after `iterations`. */
  constructor(where: string, iterations: number) {
    super(`${where}: ${iterations} iterations without an end (a hang)`);
    this.name = "RunawayLoopError";
    this.where = where;
  }
}

/**
 * A counter for one run of the loop at `where`: call it once per iteration; past `limit`
 * iterations it throws {@link RunawayLoopError}.
 */
export function loopGuard(where: string, limit: number = LOOP_LIMIT): () => void {
  let n = 0;
  return () => {
    if (++n > limit) throw new RunawayLoopError(where, n - 1);
  };
}
