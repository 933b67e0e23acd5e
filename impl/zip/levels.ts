/**
 * Compression levels 0-9: how hard the LZ77 match finder works at each level.
 *
 * @module
 */

/** Match finder parameters of one level. */
export interface LevelConfig {
  /** How matches are chosen: the first found against one candidate ("fast"), the first
   * found along the hash chain ("greedy"), or only when the next position has no longer
   * one ("lazy": look one byte ahead). */
  readonly parser: "fast" | "greedy" | "lazy";
  /** Greedy: insert the positions inside matches up to this length; lazy: only try for a
   * longer match while the current one is shorter than this. */
  readonly limit: number;
  /** Lazy: once the current match is at least this long, the search for a longer one at
   * the next position walks only `lazyChain` entries. (After a search that found nothing,
   * until a match is found again, searches walk a quarter of `chain`.) */
  readonly good: number;
  /** Lazy: chain entries examined by a search for a match longer than one at least
   * `good` long. */
  readonly lazyChain: number;
  /** Stop searching as soon as a match is at least this long. */
  readonly nice: number;
  /** Hash chain entries examined per search. */
  readonly chain: number;
  /** After k searches in a row found nothing, pass over k >> skip positions (at most 8)
   * as literals without searching or indexing them; 0 never passes over. */
  readonly skip: number;
  /** Lazy: take a 3-byte match (the 4-byte chains cannot hold one) up to this far back
   * from a table of the latest position of each 3-byte string; 0 never. Beyond about 512
   * bytes one costs more than its literals. */
  readonly near: number;
}

/**
 * Level table. Level 0 stores; 1 is fast (compress.ts), 2-3 greedy with short chains, 4-9 lazy with longer
 * chains (compress.ts). Level 6, the default, was tuned on the benchmark corpora (bench/)
 * to stay within about 0.5% of zlib level 6 output size while searching as little as
 * possible: without 3-byte matches (they pay on machine code only, which has room to
 * spare, and cost a table update per position), with 128-deep chains for text, but only
 * 8 entries for the lazy search at the next position: it finds a longer match only about
 * one time in eight, and a sixteenth of the chain costs little more than 0.1% in size
 * (text +0.18%, JSON +0.08% against zlib) while level 6 then runs 1.05-1.15 times faster.
 */
export const levels: ReadonlyArray<LevelConfig> = [
  { parser: "greedy", limit: 0, good: 0, lazyChain: 0, nice: 0, chain: 0, skip: 0, near: 0 },
  { parser: "fast", limit: 0, good: 0, lazyChain: 0, nice: 0, chain: 1, skip: 5, near: 0 },
  { parser: "greedy", limit: 5, good: 4, lazyChain: 0, nice: 16, chain: 8, skip: 6, near: 0 },
  { parser: "greedy", limit: 6, good: 4, lazyChain: 0, nice: 32, chain: 32, skip: 7, near: 0 },
  { parser: "lazy", limit: 4, good: 4, lazyChain: 4, nice: 16, chain: 16, skip: 6, near: 0 },
  { parser: "lazy", limit: 16, good: 4, lazyChain: 8, nice: 32, chain: 32, skip: 6, near: 0 },
  { parser: "lazy", limit: 16, good: 4, lazyChain: 8, nice: 128, chain: 128, skip: 6, near: 0 },
  { parser: "lazy", limit: 32, good: 8, lazyChain: 32, nice: 128, chain: 128, skip: 7, near: 512 },
  {
    parser: "lazy",
    limit: 128,
    good: 32,
    lazyChain: 256,
    nice: 258,
    chain: 1024,
    skip: 0,
    near: 512,
  },
  {
    parser: "lazy",
    limit: 258,
    good: 32,
    lazyChain: 1024,
    nice: 258,
    chain: 4096,
    skip: 0,
    near: 512,
  },
];
