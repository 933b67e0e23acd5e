/**
 * Counts per page of a page-aligned address space (pin counts by IOVA), kept as a two-level
 * table: chunks of 512 pages' counts, found by a Map on the chunk number. A run of neighbouring
 * pages touches one chunk per 512 pages, so pinning a batch costs array updates, not a Map
 * operation per page.
 *
 * @module
 */
import { PAGE_SIZE } from "../../spec/types.ts";

const CHUNK_PAGES = 512;
const CHUNK_BYTES = CHUNK_PAGES * PAGE_SIZE;

/** Nonnegative counts per page-aligned address; a page absent counts 0. */
export class PageCounts {
  readonly #chunks = new Map<number, Uint32Array>();
  #size = 0;

  /** How many pages have a count above 0. */
  get size(): number {
    return this.#size;
  }

  /** The count of the page at `addr`. */
  get(addr: number): number {
    const chunk = this.#chunks.get(Math.floor(addr / CHUNK_BYTES));
    return chunk ? chunk[(addr % CHUNK_BYTES) / PAGE_SIZE] : 0;
  }

  /** Whether every page of the `pages` pages from `addr` has a count above 0. */
  allCounted(addr: number, pages: number): boolean {
    let n = Math.floor(addr / CHUNK_BYTES);
    let i = (addr - n * CHUNK_BYTES) / PAGE_SIZE;
    let chunk = this.#chunks.get(n);
    for (let p = 0; p < pages; p++) {
      if (!chunk || chunk[i] === 0) return false;
      if (++i === CHUNK_PAGES && p + 1 < pages) {
        i = 0;
        chunk = this.#chunks.get(++n);
      }
    }
    return true;
  }

  /**
   * Adds `delta` to the count of each of the `pages` pages from `addr`; a count at 0 stays
   * there (callers check {@link allCounted} before taking away).
   */
  addRun(addr: number, pages: number, delta: 1 | -1): void {
    let n = Math.floor(addr / CHUNK_BYTES);
    let i = (addr - n * CHUNK_BYTES) / PAGE_SIZE;
    let chunk = this.#chunk(n);
    for (let p = 0; p < pages; p++) {
      const before = chunk[i];
      if (before > 0 || delta > 0) {
        chunk[i] = before + delta;
        if (before === 0) this.#size++;
        else if (before + delta === 0) this.#size--;
      }
      if (++i === CHUNK_PAGES && p + 1 < pages) {
        i = 0;
        chunk = this.#chunk(++n);
      }
    }
  }

  /** Sets the count of the page at `addr` to 0. */
  reset(addr: number): void {
    const chunk = this.#chunks.get(Math.floor(addr / CHUNK_BYTES));
    const i = (addr % CHUNK_BYTES) / PAGE_SIZE;
    if (chunk && chunk[i] > 0) {
      chunk[i] = 0;
      this.#size--;
    }
  }

  /** The pages with a count above 0, by address, and their counts. */
  *entries(): IterableIterator<[number, number]> {
    const numbers = [...this.#chunks.keys()].sort((a, b) => a - b);
    for (const n of numbers) {
      const chunk = this.#chunks.get(n)!;
      for (let i = 0; i < CHUNK_PAGES; i++) {
        if (chunk[i] > 0) yield [n * CHUNK_BYTES + i * PAGE_SIZE, chunk[i]];
      }
    }
  }

  /** Forgets every count. */
  clear(): void {
    this.#chunks.clear();
    this.#size = 0;
  }

  #chunk(n: number): Uint32Array {
    let chunk = this.#chunks.get(n);
    if (!chunk) {
      chunk = new Uint32Array(CHUNK_PAGES);
      this.#chunks.set(n, chunk);
    }
    return chunk;
  }
}
