/**
 * The two structures of the IOASID store: {@link IdTree}, an IDA-style occupancy tree over a
 * fixed id space (a bitmap of used ids and, above it, one bitmap per level whose bit says "the
 * 32-bit word below is full", so the lowest free id at or after a bound is found by skipping
 * full words a level up instead of scanning them, the role the XArray's free mark plays for the
 * IDR; four levels of 32-bit words cover 2^20 ids), and {@link SparseArray}, the id-to-record
 * store.
 *
 * @module
 */

/** Bits per bitmap word. */
const WORD = 32;

/** Index of the lowest set bit of a nonzero word. */
function lowestBit(bits: number): number {
  return 31 - Math.clz32(bits & -bits);
}

/** Used/free ids in `[0, size)`. */
export class IdTree {
  /** `levels[0]`: a bit per id; `levels[k]`: a bit per word of `levels[k - 1]`, set when full. */
  readonly #levels: Uint32Array[] = [];
  /** Ids covered. */
  readonly size: number;

  /** An empty tree of `size` ids (rounded up to a multiple of 32). */
  constructor(size: number) {
    this.size = size;
    let bits = size;
    do {
      const words = Math.ceil(bits / WORD);
      this.#levels.push(new Uint32Array(words));
      bits = words;
    } while (bits > 1);
  }

  /** Whether `id` is used. */
  has(id: number): boolean {
    return (this.#levels[0][id >>> 5] & (1 << (id & 31))) !== 0;
  }

  /** Marks `id` used, and each word above that it fills. */
  set(id: number): void {
    let i = id;
    for (const level of this.#levels) {
      const w = i >>> 5;
      level[w] |= 1 << (i & 31);
      if (level[w] !== 0xffffffff) return;
      i = w;
    }
  }

  /** Marks `id` free, and each word above it not full. */
  clear(id: number): void {
    let i = id;
    for (const level of this.#levels) {
      const w = i >>> 5;
      const wasFull = level[w] === 0xffffffff;
      level[w] &= ~(1 << (i & 31));
      if (!wasFull) return;
      i = w;
    }
  }

  /** The lowest free id in `[from, end)`, if any. */
  findFree(from: number, end: number): number | undefined {
    const id = this.#nextClear(0, from);
    return id !== undefined && id < end ? id : undefined;
  }

  /** The lowest index `>= from` whose bit is clear in level `k`. */
  #nextClear(k: number, from: number): number | undefined {
    const level = this.#levels[k];
    let i = from;
    while ((i >>> 5) < level.length) {
      const w = i >>> 5;
      const bits = ~level[w] & (0xffffffff << (i & 31));
      if (bits !== 0) return (w << 5) + lowestBit(bits);
      if (k + 1 === this.#levels.length) return undefined;
      const next = this.#nextClear(k + 1, w + 1);
      if (next === undefined) return undefined;
      i = next << 5;
    }
    return undefined;
  }
}

/** Ids per leaf chunk of a {@link SparseArray}. */
const CHUNK = 1024;

/**
 * A sparse array over `[0, size)`, XArray-style: a top array of leaf chunks of 1024 slots,
 * each allocated when its first value arrives (and kept). Lookups are two indexings; unlike a
 * JavaScript Map, whose insert+delete of one key costs time in proportion to the entries live
 * (V8 rehashes its ordered table), a store and a removal cost the same however many are held.
 */
export class SparseArray<T> {
  readonly #chunks: ((T | undefined)[] | undefined)[];
  #size = 0;

  /** An empty array of `size` slots. */
  constructor(size: number) {
    this.#chunks = new Array(Math.ceil(size / CHUNK)).fill(undefined);
  }

  /** Values held. */
  get size(): number {
    return this.#size;
  }

  /** The value at `index`, if any. */
  get(index: number): T | undefined {
    return this.#chunks[Math.floor(index / CHUNK)]?.[index % CHUNK];
  }

  /** Stores `value` at `index`. */
  set(index: number, value: T): void {
    const c = Math.floor(index / CHUNK);
    const chunk = this.#chunks[c] ??= new Array(CHUNK).fill(undefined);
    if (chunk[index % CHUNK] === undefined) this.#size++;
    chunk[index % CHUNK] = value;
  }

  /** Removes the value at `index`, if any. */
  delete(index: number): void {
    const chunk = this.#chunks[Math.floor(index / CHUNK)];
    if (chunk?.[index % CHUNK] === undefined) return;
    chunk[index % CHUNK] = undefined;
    this.#size--;
  }

  /** Every index and value, in ascending index order. */
  *entries(): IterableIterator<[number, T]> {
    for (let c = 0; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c];
      if (!chunk) continue;
      for (let i = 0; i < CHUNK; i++) {
        const v = chunk[i];
        if (v !== undefined) yield [c * CHUNK + i, v];
      }
    }
  }
}
