/**
 * The compression stream context: LZ77 over a 32 KiB window with hash chains (one
 * candidate per position at level 1, greedy at 2-3, lazy at 4-9, stored at 0), blocks
 * written by block_writer.ts, and zlib or gzip framing. Input is fed in chunks with a
 * bounded output space per call.
 *
 * Positions are chained by their next 4 bytes (read as one little-endian word), which keeps
 * chains free of candidates that cannot beat a 3-byte match; at levels 7-9 a table of the
 * latest position of each 3-byte string supplies short matches nearby. Levels 1-3 skip
 * indexing the inside of (long) matches, and all levels but 8-9 pass over positions faster
 * after a run of failed searches (incompressible stretches).
 *
 * Resumability: every decision depends only on the data and the flush points, never on how
 * the input or the output space was split. Input positions are only searched once at least
 * 262 bytes of lookahead are buffered (or the caller flushes), blocks end after a fixed
 * number of symbols, and output is produced into a pending buffer that is merely drained.
 *
 * Statuses (spec/zip.ts): 0 when all input was taken (or the stream finished with a
 * smaller output), 0x0d when the finished stream is not smaller than its input, 0x0e when
 * the output space ran out first (call again with more space and the rest of the input).
 *
 * @module
 */

import { compressStatusFor, type ZipFormat, ZipStatus } from "../../spec/zip.ts";
import { blockSymbols, BlockWriter, matchSymbol } from "./block_writer.ts";
import { adler32, crc32 } from "./checksum.ts";
import { gzipHeader, zlibHeader } from "./header.ts";
import { type LevelConfig, levels } from "./levels.ts";
import { OutputSink } from "./sink.ts";
import type { StreamResult } from "./stream_result.ts";

/** When a call should end the current block: none, sync, full (also forget history), finish. */
export type FlushMode = "none" | "sync" | "full" | "finish";

const windowSize = 32768;
const windowMask = windowSize - 1;
/** Largest distance we emit: the chain slot of position p - 32768 is reused by p itself. */
const maxDistance = windowSize - 1;
const maxMatch = 258;
/** Lookahead needed before a position is searched when not flushing. */
const minLookahead = maxMatch + 3 + 1;
/** Window buffer: 32 KiB of history plus room for new input. */
const bufferSize = windowSize + (1 << 18);
const hashBits = 15;
const hashShift = 32 - hashBits;
/** The fast parser's smaller table (no chains): it stays in cache. */
const fastHashBits = 14;
const fastHashShift = 32 - fastHashBits;
const hash3Bits = 15;
const hash3Shift = 32 - hash3Bits;
/** Multiplier of the multiplicative hashes (2^32 / golden ratio). */
const hashMul = 0x9e3779b1 | 0;
/** Multiplier of the fast parser's second hash (an odd constant unrelated to hashMul). */
const checkMul = 0x85ebca6b | 0;
/** Most positions greedy parsing passes over after one failed search. */
const maxPass = 8;

/** A resumable compression context producing one deflate, zlib or gzip stream. */
export class CompressStream {
  private readonly cfg: LevelConfig;
  private readonly bw = new BlockWriter();
  private readonly win = new Uint8Array(bufferSize);
  /** `win` for reading 4 bytes at a time (little-endian). */
  private readonly view = new DataView(this.win.buffer);
  private readonly head: Int32Array;
  /**
   * The fast parser's table instead of `head`: per hash, the latest position mod 64 KiB
   * (low 16 bits; no update needed when the window slides, by multiples of 64 KiB) and 16
   * bits of a second hash of its 4 bytes (high 16 bits). A candidate whose second hash
   * differs cannot match, so most misses cost no read of the window (on machine code about
   * half the lookups). A position may stand for an older one than it names; candidates are
   * checked against the data anyway.
   */
  private readonly fastHead: Int32Array;
  /** Chains (not used by the fast parser). */
  private readonly prev: Int32Array;
  /** Levels with `near` 3-byte matches: the latest position of each 3-byte string. */
  private readonly head3: Int32Array;
  /** Next position to process, end of buffered input, first byte of the open block. */
  private pos = 0;
  private end = 0;
  private blockStart = 0;
  /** Lowest position matches may reach (moves on a full flush). */
  private historyStart = 0;
  private matchLen = 2;
  private matchDist = 0;
  private matchAvailable = false;
  /** Greedy parsing: failed searches since the last match. */
  private misses = 0;
  /** Greedy parsing: positions still to pass over as literals without searching. */
  private passLeft = 0;

  private started = false;
  private finished = false;
  private check: number;
  private totalIn = 0;
  private totalOut = 0;
  private lastFlushIn = -1;

  /** A context for `format` at `level` (0-9, default 6). */
  constructor(readonly format: ZipFormat, readonly level = 6) {
    if (!Number.isInteger(level) || level < 0 || level > 9) {
      throw new RangeError(`compression level ${level} is not an integer in 0..9`);
    }
    this.cfg = levels[level];
    const fast = this.cfg.parser === "fast";
    this.head = new Int32Array(fast ? 0 : 1 << hashBits).fill(-1);
    this.fastHead = new Int32Array(fast ? 1 << fastHashBits : 0);
    this.prev = new Int32Array(fast ? 0 : windowSize).fill(-1);
    this.head3 = new Int32Array(this.cfg.near > 0 ? 1 << hash3Bits : 0).fill(-1);
    this.check = format === "zlib" ? 1 : 0;
  }

  /**
   * Compresses `input`, producing at most `destAvailOut` bytes. The caller re-offers the
   * unconsumed rest of `input` on the next call.
   */
  push(input: Uint8Array, destAvailOut: number, flush: FlushMode = "none"): StreamResult {
    const initial = Math.max(1 << 16, (input.length >> 1) + 1024);
    return this.run(input, new OutputSink(destAvailOut, initial), flush);
  }

  /**
   * Like {@link push} with `dest.length` as the output space, but writes into `dest` itself
   * (the result's `output` is a view of it), so a caller that reuses one buffer allocates
   * nothing per call.
   */
  pushInto(input: Uint8Array, dest: Uint8Array, flush: FlushMode = "none"): StreamResult {
    return this.run(input, OutputSink.over(dest), flush);
  }

  private run(input: Uint8Array, sink: OutputSink, flush: FlushMode): StreamResult {
    const bw = this.bw;
    if (!this.started) {
      this.started = true;
      if (this.format === "zlib") bw.writeBytes(zlibHeader(this.level));
      else if (this.format === "gzip") bw.writeBytes(gzipHeader(this.level));
    }
    let consumed = 0;
    let flushedThisCall = false;
    let status: number = ZipStatus.ok;
    for (;;) {
      this.drain(sink);
      if (bw.pending > 0) {
        status = ZipStatus.destInsufficient;
        break;
      }
      if (this.finished) {
        status = compressStatusFor(this.totalIn, this.totalOut);
        break;
      }
      if (consumed < input.length) consumed += this.fill(input, consumed);
      const flushing = flush !== "none" && consumed === input.length;
      if (this.process(flushing)) continue;
      if (consumed < input.length) continue;
      if (!flushing || flushedThisCall) break;
      flushedThisCall = true;
      this.flush(flush);
    }
    const output = sink.bytes();
    return { consumed, produced: output.length, status, output };
  }

  private drain(sink: OutputSink): void {
    const bw = this.bw;
    const n = Math.min(bw.pending, sink.room());
    sink.write(bw.pend, bw.pendRead, bw.pendRead + n);
    bw.pendRead += n;
    this.totalOut += n;
  }

  /** Copies input into the window (sliding it first when full); returns the bytes taken. */
  private fill(input: Uint8Array, from: number): number {
    if (this.end === bufferSize) {
      // Slide only once the match finder has used the buffered lookahead.
      if (this.level !== 0 && this.pos < bufferSize - minLookahead) return 0;
      this.slide();
    }
    const n = Math.min(input.length - from, bufferSize - this.end);
    this.win.set(input.subarray(from, from + n), this.end);
    if (this.format === "zlib") this.check = adler32(input, this.check, from, from + n);
    else if (this.format === "gzip") this.check = crc32(input, this.check, from, from + n);
    this.end += n;
    this.totalIn += n;
    return n;
  }

  /** Drops the oldest buffered bytes, keeping at least 32 KiB of history (level 0: the open block). */
  private slide(): void {
    // A multiple of 64 KiB, so chain slots (indexed by position mod 32 KiB) stay put and
    // fastHead's positions mod 64 KiB stay right.
    const delta = this.level === 0 ? this.blockStart : (this.pos - windowSize) & ~0xffff;
    this.win.copyWithin(0, delta, this.end);
    this.pos -= delta;
    this.end -= delta;
    this.blockStart = this.blockStart >= delta ? this.blockStart - delta : -1;
    this.historyStart = Math.max(0, this.historyStart - delta);
    slideTable(this.head, delta);
    slideTable(this.prev, delta);
    slideTable(this.head3, delta);
  }

  /** Runs the match finder; true when it wrote a block (drain before continuing). */
  private process(flushing: boolean): boolean {
    if (this.level === 0) return this.processStored();
    return this.processMatches(flushing);
  }

  private processStored(): boolean {
    this.pos = this.end;
    // A full block is written once a byte beyond it exists, so the last block is never empty.
    if (this.pos - this.blockStart <= 65535) return false;
    this.bw.writeStored(this.win, this.blockStart, 65535, false);
    this.blockStart += 65535;
    return true;
  }

  /** Writes the open block; `covered` is the end of the input its symbols stand for. */
  private writeBlock(covered: number, last: boolean): void {
    const start = this.blockStart;
    if (this.level === 0) this.bw.writeStored(this.win, start, covered - start, last);
    else this.bw.flushBlock(this.win, start, start >= 0 ? covered - start : -1, last);
    this.blockStart = covered;
  }

  /** Ends the open block as the flush mode asks, adding the stream trailer on finish. */
  private flush(mode: FlushMode): void {
    const bw = this.bw;
    if (mode === "finish") {
      this.writeBlock(this.pos, true);
      bw.alignToByte();
      const c = this.check;
      if (this.format === "zlib") {
        bw.writeBytes(Uint8Array.of(c >>> 24, c >>> 16, c >>> 8, c));
      } else if (this.format === "gzip") {
        const n = this.totalIn;
        bw.writeBytes(
          Uint8Array.of(c, c >>> 8, c >>> 16, c >>> 24, n, n >>> 8, n >>> 16, n >>> 24),
        );
      }
      this.finished = true;
      return;
    }
    // A repeated flush without new input adds nothing, unless it is a full flush after a
    // sync flush: then the history must still be forgotten (zlib too writes a second marker).
    const forgotten = mode === "sync" || this.historyStart === this.pos;
    if (this.totalIn === this.lastFlushIn && forgotten) return;
    this.lastFlushIn = this.totalIn;
    if (bw.symCount > 0 || this.pos > this.blockStart) this.writeBlock(this.pos, false);
    bw.writeStored(this.win, this.pos, 0, false);
    if (mode === "full") {
      this.head.fill(-1);
      this.head3.fill(-1);
      this.historyStart = this.pos;
    }
  }

  /** Runs the level's parser; true when it wrote a block (drain before continuing). */
  private processMatches(flushing: boolean): boolean {
    const stopAt = flushing ? this.end : this.end - minLookahead;
    const parser = this.cfg.parser;
    // The parsers stop when the block is full; writing it here keeps their loops free of
    // rarely taken paths (which V8 would otherwise optimize away and deoptimize on).
    if (parser === "lazy") this.parseLazy(stopAt);
    else if (parser === "greedy") this.parseGreedy(stopAt);
    else this.parseFast(stopAt);
    if (this.bw.symCount === blockSymbols) {
      // A pending literal (lazy parsing) is not in the block yet.
      this.writeBlock(this.matchAvailable ? this.pos - 1 : this.pos, false);
      return true;
    }
    if (flushing && this.matchAvailable) {
      // The pending literal is written now, so nothing may still refer to it: a pass-over
      // run (which writes win[pos - 1] as the next pending literal) ends here too.
      this.bw.literal(this.win[this.pos - 1]);
      this.matchAvailable = false;
      this.passLeft = 0;
    }
    return false;
  }

  /** Inserts the positions `[from, to)` into the 4-byte hash chains. */
  private insertRange(from: number, to: number): void {
    const view = this.view, head = this.head, prev = this.prev;
    const last = to < this.end - 3 ? to : this.end - 3;
    for (let p = from; p < last; p++) {
      const h = Math.imul(view.getInt32(p, true), hashMul) >>> hashShift;
      prev[p & windowMask] = head[h];
      head[h] = p;
    }
  }

  /**
   * The longest match at `pos` (whose first 4 bytes are `key`) along the chain from `cand`,
   * if longer than `atLeast` (at least 3), packed as `length << 16 | distance`; 0 if none.
   */
  private longestMatch(pos: number, key: number, cand: number, atLeast: number, chain: number) {
    const win = this.win, view = this.view, prev = this.prev;
    const end = this.end;
    const maxLen = end - pos < maxMatch ? end - pos : maxMatch;
    if (atLeast >= maxLen) return 0;
    const nice = this.cfg.nice < maxLen ? this.cfg.nice : maxLen;
    const low = pos - maxDistance > this.historyStart ? pos - maxDistance : this.historyStart;
    let best = atLeast, bestDist = 0;
    // The 4 bytes ending at index `best` must match for a candidate to be longer.
    let tail = view.getInt32(pos + best - 3, true);
    for (let c = cand; c >= low; c = prev[c & windowMask]) {
      if (view.getInt32(c + best - 3, true) === tail && view.getInt32(c, true) === key) {
        const len = matchLength(win, view, c, pos, maxLen);
        if (len > best) {
          best = len;
          bestDist = pos - c;
          if (len >= nice) break;
          tail = view.getInt32(pos + best - 3, true);
        }
      }
      if (--chain === 0) break;
    }
    return bestDist === 0 ? 0 : (best << 16) | bestDist;
  }

  /**
   * Fast parsing (level 1): each position is searched against one candidate only, the
   * latest position with the same 4-byte hash, and positions inside matches are not
   * indexed. After a run of failed searches, positions are passed over as in greedy parsing.
   */
  private parseFast(stopAt: number): void {
    const bw = this.bw, win = this.win, view = this.view, head = this.fastHead;
    const syms = bw.syms, litFreq = bw.litFreq, distFreq = bw.distFreq;
    const end = this.end, skip = this.cfg.skip, low = this.historyStart;
    let n = bw.symCount;
    let pos = this.pos;
    let misses = this.misses;
    let passLeft = this.passLeft;
    while (pos < stopAt) {
      let dist = 0;
      if (passLeft > 0) passLeft--;
      else {
        if (pos + 3 < end) {
          const key = view.getInt32(pos, true);
          const h = Math.imul(key, hashMul) >>> fastHashShift;
          const check = Math.imul(key, checkMul) >>> 16;
          const e = head[h];
          head[h] = (pos & 0xffff) | (check << 16);
          if ((e >>> 16) === check) {
            const d = (pos - e) & 0xffff;
            if (
              d !== 0 && d <= maxDistance && pos - d >= low && view.getInt32(pos - d, true) === key
            ) dist = d;
          }
        }
        if (dist === 0) {
          misses++;
          passLeft = Math.min(maxPass, misses >> skip);
        }
      }
      if (dist !== 0) {
        const len = matchLength(
          win,
          view,
          pos - dist,
          pos,
          end - pos < maxMatch ? end - pos : maxMatch,
        );
        syms[n++] = matchSymbol(litFreq, distFreq, len, dist);
        pos += len;
        misses = 0;
      } else {
        const b = win[pos++];
        syms[n++] = b;
        litFreq[b]++;
      }
      if (n === blockSymbols) break;
    }
    bw.symCount = n;
    this.pos = pos;
    this.misses = misses;
    this.passLeft = passLeft;
  }

  /**
   * Greedy parsing (levels 2-3): a match is taken as soon as it is found, and positions
   * inside matches longer than the level's limit are not indexed. After a run of failed
   * searches, positions are passed over as literals without searching or indexing them
   * (faster on incompressible data).
   */
  private parseGreedy(stopAt: number): void {
    const bw = this.bw, win = this.win, view = this.view, head = this.head, prev = this.prev;
    const syms = bw.syms, litFreq = bw.litFreq, distFreq = bw.distFreq;
    const { limit, chain, skip } = this.cfg;
    const end = this.end;
    let n = bw.symCount;
    let pos = this.pos;
    let misses = this.misses;
    let passLeft = this.passLeft;
    while (pos < stopAt) {
      let found = 0;
      if (passLeft > 0) passLeft--;
      else {
        if (pos + 3 < end) {
          const key = view.getInt32(pos, true);
          const h = Math.imul(key, hashMul) >>> hashShift;
          const cand = head[h];
          prev[pos & windowMask] = cand;
          head[h] = pos;
          if (cand >= 0) found = this.longestMatch(pos, key, cand, 3, chain);
        }
        if (found === 0) {
          misses++;
          if (skip !== 0) passLeft = Math.min(maxPass, misses >> skip);
        }
      }
      if (found !== 0) {
        const len = found >>> 16;
        syms[n++] = matchSymbol(litFreq, distFreq, len, found & 0xffff);
        if (len <= limit) this.insertRange(pos + 1, pos + len);
        pos += len;
        misses = 0;
      } else {
        const b = win[pos++];
        syms[n++] = b;
        litFreq[b]++;
      }
      if (n === blockSymbols) break;
    }
    bw.symCount = n;
    this.pos = pos;
    this.misses = misses;
    this.passLeft = passLeft;
  }

  /**
   * Lazy parsing (levels 4-9): a match found at one position is taken only if the next
   * position has no longer one; the search there is skipped once the match reaches the
   * level's limit.
   */
  private parseLazy(stopAt: number): void {
    const bw = this.bw, win = this.win, view = this.view;
    const head = this.head, prev = this.prev, head3 = this.head3;
    const syms = bw.syms, litFreq = bw.litFreq, distFreq = bw.distFreq;
    const { limit, good, lazyChain, chain, skip, near } = this.cfg;
    const missChain = chain >> 2 || 1;
    const end = this.end, low = this.historyStart;
    let n = bw.symCount;
    let pos = this.pos;
    let matchLen = this.matchLen;
    let matchDist = this.matchDist;
    let available = this.matchAvailable;
    let misses = this.misses;
    let passLeft = this.passLeft;
    while (pos < stopAt) {
      const prevLen = matchLen, prevDist = matchDist;
      matchLen = 2;
      // Passing over is only set after a failed search with no match pending, so the
      // position is then a pending literal like any other.
      const passing = passLeft > 0;
      if (passing) passLeft--;
      else if (pos + 3 < end) {
        const key = view.getInt32(pos, true);
        const h = Math.imul(key, hashMul) >>> hashShift;
        const cand = head[h];
        prev[pos & windowMask] = cand;
        head[h] = pos;
        let cand3 = -1;
        if (near !== 0) {
          const h3 = Math.imul(key << 8, hashMul) >>> hash3Shift;
          cand3 = head3[h3];
          head3[h3] = pos;
        }
        if (prevLen < limit) {
          const found = cand >= 0
            ? this.longestMatch(
              pos,
              key,
              cand,
              prevLen > 3 ? prevLen : 3,
              prevLen >= good ? lazyChain : misses > 0 ? missChain : chain,
            )
            : 0;
          if (found !== 0) {
            matchLen = found >>> 16;
            matchDist = found & 0xffff;
          } else if (
            prevLen < 3 && cand3 >= low && pos - cand3 <= near &&
            (view.getInt32(cand3, true) << 8) === key << 8
          ) {
            // The 4-byte chains cannot see 3-byte matches; the 3-byte table offers one nearby.
            matchLen = 3;
            matchDist = pos - cand3;
          }
        }
      }
      if (prevLen >= 3 && matchLen <= prevLen) {
        syms[n++] = matchSymbol(litFreq, distFreq, prevLen, prevDist);
        const stop = pos - 1 + prevLen;
        this.insertRange(pos + 1, stop);
        pos = stop;
        matchLen = 2;
        available = false;
      } else {
        if (available) {
          const b = win[pos - 1];
          syms[n++] = b;
          litFreq[b]++;
        }
        available = true;
        pos++;
        if (matchLen >= 3) misses = 0;
        else if (prevLen < 3 && skip !== 0 && !passing) {
          misses++;
          passLeft = Math.min(maxPass, misses >> skip);
        }
      }
      if (n === blockSymbols) break;
    }
    bw.symCount = n;
    this.pos = pos;
    this.matchLen = matchLen;
    this.matchDist = matchDist;
    this.matchAvailable = available;
    this.misses = misses;
    this.passLeft = passLeft;
  }
}

/** Moves the positions in `table` down by `delta`; those that fall below 0 become -1. */
function slideTable(table: Int32Array, delta: number): void {
  for (let i = 0; i < table.length; i++) {
    const v = table[i] - delta;
    table[i] = v | (v >> 31);
  }
}

/**
 * The length (4..maxLen) of the common prefix of `win` at `a` and at `b`, whose first 4
 * bytes are known to be equal; compares 4 bytes at a time.
 */
function matchLength(win: Uint8Array, view: DataView, a: number, b: number, maxLen: number) {
  let len = 4;
  while (len + 4 <= maxLen) {
    const x = view.getInt32(a + len, true) ^ view.getInt32(b + len, true);
    if (x !== 0) return len + ((31 - Math.clz32(x & -x)) >> 3);
    len += 4;
  }
  while (len < maxLen && win[a + len] === win[b + len]) len++;
  return len;
}
