/**
 * The compression stream context: LZ77 over a 32 KiB window with hash chains (greedy at
 * levels 1-3, lazy at 4-9, stored at 0), blocks written by block_writer.ts, and zlib or
 * gzip framing. Input is fed in chunks with a bounded output space per call.
 *
 * Positions are chained by their next 4 bytes, which keeps chains free of candidates that
 * cannot beat a 3-byte match; a small table of the latest position of each 3-byte string
 * supplies short matches nearby.
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
import { blockSymbols, BlockWriter } from "./block_writer.ts";
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
const hash3Bits = 12;
/** Lazy matching drops a 3-byte match this far back: it costs more than its literals. */
const tooFar = 4096;

/** A resumable compression context producing one deflate, zlib or gzip stream. */
export class CompressStream {
  private readonly cfg: LevelConfig;
  private readonly bw = new BlockWriter();
  private readonly win = new Uint8Array(bufferSize);
  private readonly head = new Int32Array(1 << hashBits).fill(-1);
  private readonly prev = new Int32Array(windowSize).fill(-1);
  /** The latest position of each 3-byte string (4-byte strings use the chains). */
  private readonly head3 = new Int32Array(1 << hash3Bits).fill(-1);
  /** Next position to process, end of buffered input, first byte of the open block. */
  private pos = 0;
  private end = 0;
  private blockStart = 0;
  /** Lowest position matches may reach (moves on a full flush). */
  private historyStart = 0;
  private matchLen = 2;
  private matchDist = 0;
  private matchAvailable = false;

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
    this.check = format === "zlib" ? 1 : 0;
  }

  /**
   * Compresses `input`, producing at most `destAvailOut` bytes. The caller re-offers the
   * unconsumed rest of `input` on the next call.
   */
  push(input: Uint8Array, destAvailOut: number, flush: FlushMode = "none"): StreamResult {
    const sink = new OutputSink(destAvailOut, Math.max(1 << 16, (input.length >> 1) + 1024));
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
    // A multiple of the window size, so chain slots (indexed by position mod 32 KiB) stay put.
    const delta = this.level === 0 ? this.blockStart : (this.pos - windowSize) & ~windowMask;
    this.win.copyWithin(0, delta, this.end);
    this.pos -= delta;
    this.end -= delta;
    this.blockStart = this.blockStart >= delta ? this.blockStart - delta : -1;
    this.historyStart = Math.max(0, this.historyStart - delta);
    for (const table of [this.head, this.prev, this.head3]) {
      for (let i = 0; i < table.length; i++) {
        const v = table[i] - delta;
        table[i] = v < 0 ? -1 : v;
      }
    }
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
    if (this.totalIn === this.lastFlushIn) return;
    this.lastFlushIn = this.totalIn;
    if (bw.symCount > 0 || this.pos > this.blockStart) this.writeBlock(this.pos, false);
    bw.writeStored(this.win, this.pos, 0, false);
    if (mode === "full") {
      this.head.fill(-1);
      this.head3.fill(-1);
      this.historyStart = this.pos;
    }
  }

  /**
   * The match finder, the compressor's hot loop (hash insertion and chain search inlined).
   * Greedy levels take a match as soon as it is found; lazy levels take it only if the next
   * position has no longer one.
   */
  private processMatches(flushing: boolean): boolean {
    const bw = this.bw;
    const win = this.win;
    const head = this.head;
    const prev = this.prev;
    const end = this.end;
    const stopAt = flushing ? end : end - minLookahead;
    const { lazy, limit, good, nice: niceLen, chain: chainLen } = this.cfg;
    const hashShift = 32 - hashBits;
    const hash3Shift = 32 - hash3Bits;
    const head3 = this.head3;
    const historyStart = this.historyStart;
    let pos = this.pos;
    let matchLen = this.matchLen;
    let matchDist = this.matchDist;
    let available = this.matchAvailable;
    let wrote = false;
    while (pos < stopAt) {
      let cand = -1, cand3 = -1;
      if (pos + 3 < end) {
        const key3 = win[pos] | (win[pos + 1] << 8) | (win[pos + 2] << 16);
        const h = Math.imul(key3 | (win[pos + 3] << 24), 0x9e3779b1) >>> hashShift;
        cand = head[h];
        prev[pos & windowMask] = cand;
        head[h] = pos;
        const h3 = Math.imul(key3, 0x9e3779b1) >>> hash3Shift;
        cand3 = head3[h3];
        head3[h3] = pos;
      }
      const prevLen = matchLen, prevDist = matchDist;
      matchLen = 2;
      if (cand >= 0 && prevLen < limit) {
        // Longest match along the chain, only accepting matches longer than prevLen.
        const maxLen = end - pos < maxMatch ? end - pos : maxMatch;
        const nice = niceLen < maxLen ? niceLen : maxLen;
        const low = pos - maxDistance > historyStart ? pos - maxDistance : historyStart;
        let chain = prevLen >= good ? chainLen >> 2 : chainLen;
        let best = prevLen > 2 ? prevLen : 2;
        let bestDist = 0;
        if (best < maxLen) {
          const first = win[pos], second = win[pos + 1];
          let tail = win[pos + best];
          let c = cand;
          while (c >= low) {
            if (win[c + best] === tail && win[c] === first && win[c + 1] === second) {
              let len = 2;
              while (len < maxLen && win[c + len] === win[pos + len]) len++;
              if (len > best) {
                best = len;
                bestDist = pos - c;
                if (len >= nice) break;
                tail = win[pos + best];
              }
            }
            if (--chain === 0) break;
            c = prev[c & windowMask];
          }
        }
        if (
          bestDist === 0 && best === 2 && cand3 >= low && pos - cand3 <= tooFar &&
          win[cand3] === win[pos] && win[cand3 + 1] === win[pos + 1] &&
          win[cand3 + 2] === win[pos + 2]
        ) {
          // The 4-byte chains cannot see 3-byte matches; the 3-byte table offers one nearby.
          best = 3;
          bestDist = pos - cand3;
        }
        if (bestDist !== 0 && !(best === 3 && bestDist > tooFar)) {
          matchLen = best;
          matchDist = bestDist;
        }
      }
      // A match taken at this step ends at `stop`; greedy levels skip indexing long ones.
      let stop = -1, indexInside = true;
      if (!lazy) {
        if (matchLen >= 3) {
          bw.match(matchLen, matchDist);
          stop = pos + matchLen;
          indexInside = matchLen <= limit;
        } else {
          bw.literal(win[pos++]);
        }
      } else if (prevLen >= 3 && matchLen <= prevLen) {
        bw.match(prevLen, prevDist);
        stop = pos - 1 + prevLen;
        available = false;
      } else if (available) {
        bw.literal(win[pos - 1]);
        pos++;
      } else {
        available = true;
        pos++;
      }
      if (stop >= 0) {
        const insertEnd = !indexInside ? pos : stop < end - 3 ? stop : end - 3;
        for (let p = pos + 1; p < insertEnd; p++) {
          const h = Math.imul(
            win[p] | (win[p + 1] << 8) | (win[p + 2] << 16) | (win[p + 3] << 24),
            0x9e3779b1,
          ) >>> hashShift;
          prev[p & windowMask] = head[h];
          head[h] = p;
        }
        pos = stop;
        matchLen = 2;
      }
      if (bw.symCount === blockSymbols) {
        this.pos = pos;
        this.writeBlock(available ? pos - 1 : pos, false);
        wrote = true;
        break;
      }
    }
    if (!wrote && flushing && available) {
      bw.literal(win[pos - 1]);
      available = false;
    }
    this.pos = pos;
    this.matchLen = matchLen;
    this.matchDist = matchDist;
    this.matchAvailable = available;
    return wrote;
  }
}
