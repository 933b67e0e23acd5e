/**
 * A bounded output buffer: collects the bytes one stream call produces, never more than the
 * call's output budget (dest_avail_out), growing geometrically so memory follows the bytes
 * actually produced rather than the space claimed.
 *
 * @module
 */

/** Collects at most `budget` output bytes. */
export class OutputSink {
  /** The bytes written so far are `buf[0, length)`. */
  buf: Uint8Array;
  /** Number of bytes written. */
  length = 0;
  /** Whether `buf` is the caller's buffer (see {@link OutputSink.over}): never replaced. */
  readonly fixed: boolean;

  /** A sink that accepts at most `budget` bytes; `initial` sizes the first buffer. */
  constructor(readonly budget: number, readonly initial = 1 << 16, dest?: Uint8Array) {
    this.buf = dest ?? new Uint8Array(0);
    this.fixed = dest !== undefined;
  }

  /** A sink writing into the caller's `dest` (budget: its length), allocating nothing. */
  static over(dest: Uint8Array): OutputSink {
    return new OutputSink(dest.length, dest.length, dest);
  }

  /** How many more bytes may be written. */
  room(): number {
    return this.budget - this.length;
  }

  /** Makes room for `n` more bytes (the caller checks `room()` first). */
  reserve(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    const size = Math.min(this.budget, Math.max(need, this.buf.length * 2, this.initial));
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
  }

  /** Appends `src[from, to)`; the caller guarantees it fits in `room()`. */
  write(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    this.reserve(n);
    this.buf.set(src.subarray(from, to), this.length);
    this.length += n;
  }

  /** Takes `buf[0, length)` as the output so far, without copying (empty, not fixed sinks). */
  adopt(buf: Uint8Array, length: number): void {
    this.buf = buf;
    this.length = length;
  }

  /** The bytes written, as a view. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
