/**
 * The seed property tests use: fixed by default so CI is reproducible, overridable with the
 * WARPSPEC_SEED environment variable, and printed so a failure can be rerun.
 *
 * @module
 */

/** Default seed of every property test. */
export const DEFAULT_TEST_SEED = 20180903;

let announced = false;

/** The test seed (WARPSPEC_SEED or the default), printed once per process. */
export function testSeed(): number {
  const raw = Deno.env.get("WARPSPEC_SEED");
  const seed = raw === undefined ? DEFAULT_TEST_SEED : Number(raw);
  if (!Number.isSafeInteger(seed)) {
    throw new Error(`WARPSPEC_SEED must be an integer, got "${raw}"`);
  }
  if (!announced) {
    console.log(`property seed ${seed} (set WARPSPEC_SEED to change)`);
    announced = true;
  }
  return seed;
}
