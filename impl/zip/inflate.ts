/**
 * The raw deflate (RFC 1951) decoder: a resumable state machine that decodes from input
 * chunks into a sliding 32 KiB history window, stops exactly when its output budget is used
 * up, and picks up where it stopped on the next call. Framing (zlib, gzip) is layered on top
 * by decompress.ts, which reads its header and trailer bytes through this decoder's input.
 *
 * Invariant between calls: the bit buffer holds only bits of the stream itself. When a call
 * stops for lack of input, every buffered bit belongs to the item being read; when it stops
 * for any other reason, whole bytes read ahead during the call are handed back to the
 * caller's input (`returnReadAhead`), so the consumed count never covers bytes after the end
 * of the stream.
 *
 * @module
 */

import {
  buildDecodeTable,
  decodeTableSize,
  distanceEntries,
  distanceRootBits,
  kindEndOfBlock,
  kindInvalid,
  kindLength,
  kindLink,
  kindLiteral,
  literalEntries,
  literalRootBits,
} from "./decode_table.ts";
import { codeLengthOrder, fixedLiteralLengths } from "../../spec/zip.ts";
import { ZipError } from "./errors.ts";
import type { OutputSink } from "./sink.ts";

const windowSize = 32768;
/** Bytes decoded between window slides; larger means fewer 32 KiB moves. */
const windowSpan = 1 << 18;

/** States of the decoder between calls. */
const mode = {
  blockHeader: 0,
  storedHeader: 1,
  storedCopy: 2,
  dynamicHeader: 3,
  codeLengthLengths: 4,
  codeLengths: 5,
  literal: 6,
  lengthExtra: 7,
  distance: 8,
  distanceExtra: 9,
  copy: 10,
  end: 11,
} as const;

/** How a call to {@link Inflater.run} stopped. */
export type InflateStop = "end" | "input" | "output";

const fixedLiteralTable = new Int32Array(decodeTableSize(288, literalRootBits));
const fixedDistanceTable = new Int32Array(decodeTableSize(32, distanceRootBits));
buildDecodeTable(
  fixedLiteralTable,
  Uint8Array.from(fixedLiteralLengths()),
  288,
  literalEntries,
  literalRootBits,
  false,
);
buildDecodeTable(
  fixedDistanceTable,
  new Uint8Array(32).fill(5),
  32,
  distanceEntries,
  distanceRootBits,
  false,
);

/** A resumable raw deflate decoder with a bounded history window. */
export class Inflater {
  /** The history window (while decoding directly into the output: that buffer). */
  private win = new Uint8Array(windowSize + windowSpan);
  /** Write position in `win`; `win[flushed, wp)` is decoded but not yet emitted. */
  private wp = 0;
  private flushed = 0;
  /** Index in `win` where the current stream's history begins (distances may not cross it). */
  private historyStart = 0;

  private input: Uint8Array = new Uint8Array(0);
  /** Next unread input byte and end of the current input chunk. */
  inPos = 0;
  private inEnd = 0;
  private callStart = 0;
  private bitBuf = 0;
  private bitCnt = 0;

  private state: number = mode.blockHeader;
  private lastBlock = false;
  private storedLeft = 0;
  private copyLen = 0;
  private copyDist = 0;
  private extraBits = 0;
  private nlit = 0;
  private ndist = 0;
  private nclen = 0;
  private lensHave = 0;
  private readonly lens = new Uint8Array(320);
  private readonly dynLit = new Int32Array(decodeTableSize(288, literalRootBits));
  private readonly dynDist = new Int32Array(decodeTableSize(32, distanceRootBits));
  private readonly clTable = new Int32Array(decodeTableSize(19, 7));
  private litTable = fixedLiteralTable;
  private distTable = fixedDistanceTable;

  /**
   * Starts a new deflate stream. Distances may reach any byte it produced, up to 32 KiB (the
   * largest distance deflate encodes); like zlib, a zlib header's smaller CINFO window does
   * not lower that (zlib checks it only when built with INFLATE_STRICT).
   */
  startStream(): void {
    this.state = mode.blockHeader;
    this.lastBlock = false;
    this.historyStart = this.wp;
  }

  /** Supplies the input chunk for the following calls: `data[pos, end)`. */
  setInput(data: Uint8Array, pos: number, end: number): void {
    this.input = data;
    this.inPos = pos;
    this.callStart = pos;
    this.inEnd = end;
  }

  /**
   * Gives back whole bytes read ahead into the bit buffer during this call, so the caller's
   * consumed count is exact; see the module invariant. Not for calls that ran out of input.
   */
  returnReadAhead(): void {
    const back = Math.min(this.bitCnt >> 3, this.inPos - this.callStart);
    this.inPos -= back;
    this.bitCnt -= back * 8;
    this.bitBuf &= (1 << this.bitCnt) - 1;
  }

  /** Drops the bits up to the next byte boundary. */
  alignToByte(): void {
    const drop = this.bitCnt & 7;
    this.bitBuf >>>= drop;
    this.bitCnt -= drop;
  }

  /** Takes the next byte-aligned input byte, or returns -1 when the chunk is used up. */
  takeByte(): number {
    if (this.bitCnt >= 8) {
      const b = this.bitBuf & 0xff;
      this.bitBuf >>>= 8;
      this.bitCnt -= 8;
      return b;
    }
    return this.inPos < this.inEnd ? this.input[this.inPos++] : -1;
  }

  /** Returns the next byte-aligned input byte without taking it, or -1 when there is none. */
  peekByte(): number {
    if (this.bitCnt >= 8) return this.bitBuf & 0xff;
    return this.inPos < this.inEnd ? this.input[this.inPos] : -1;
  }

  /** Emits pending output to `sink` and slides the window when it is full. */
  private emit(sink: OutputSink): void {
    sink.write(this.win, this.flushed, this.wp);
    if (this.wp === this.win.length) {
      const delta = this.wp - windowSize;
      this.win.copyWithin(0, delta, this.wp);
      this.wp = windowSize;
      this.historyStart = Math.max(0, this.historyStart - delta);
    }
    this.flushed = this.wp;
  }

  /**
   * Decodes until the stream ends, the input chunk is used up, or `sink` has no room left.
   * Every decoded byte is in `sink` when this returns. Throws {@link ZipError} on bad data.
   */
  run(sink: OutputSink): InflateStop {
    const direct = this.wp === 0 && sink.length === 0 && !sink.fixed;
    if (direct && sink.room() > windowSpan) return this.runDirect(sink);
    for (;;) {
      const stop = this.decode(Math.min(this.win.length, this.wp + sink.room()));
      this.emit(sink);
      if (stop !== "output" || sink.room() === 0) return stop;
    }
  }

  /**
   * {@link run} for the first output of a decoder when the sink has room for more than a
   * window span: decodes straight into a buffer (grown as needed) that `sink` then takes
   * over, and keeps only its last 32 KiB as the history window.
   */
  private runDirect(sink: OutputSink): InflateStop {
    const window = this.win;
    let buf = new Uint8Array(Math.min(sink.room(), Math.max(sink.initial, windowSpan)));
    this.win = buf;
    try {
      for (;;) {
        const stop = this.decode(Math.min(buf.length, sink.room()));
        const n = this.wp;
        if (stop === "output" && n < sink.room()) {
          const grown = new Uint8Array(Math.min(sink.room(), this.grownSize(n)));
          grown.set(buf.subarray(0, n));
          this.win = buf = grown;
          continue;
        }
        sink.adopt(buf, n);
        const keep = Math.min(n, windowSize);
        window.set(buf.subarray(n - keep, n), 0);
        this.wp = this.flushed = keep;
        return stop;
      }
    } finally {
      this.win = window;
    }
  }

  /**
   * The hot loop of {@link decode} for a Huffman block: decodes while a whole symbol
   * sequence is buffered in the input and a whole match (plus 7 bytes of overrun) fits below
   * `limit`. Refills take a 4-byte word, so bits above `bc` may hold the next input bits
   * (a refill ORs in the same bits again); they are cleared on the way out. Leaves the state
   * in the fields; true when the block ended.
   */
  private decodeFast(limit: number, ip: number, bb: number, bc: number, wp: number): boolean {
    const win = this.win, lt = this.litTable, dt = this.distTable, hs = this.historyStart;
    const inp = this.input;
    const iv = new DataView(inp.buffer, inp.byteOffset, inp.byteLength);
    const ov = new DataView(win.buffer, win.byteOffset, win.byteLength);
    const fastIn = this.inEnd - 16, fastOut = limit - 272;
    const lbits = literalRootBits, dbits = distanceRootBits;
    const lmask = (1 << lbits) - 1, dmask = (1 << dbits) - 1;
    const isLiteral = kindLiteral, isLength = kindLength, isEnd = kindEndOfBlock;
    const isLink = kindLink;
    let ended = false;
    while (ip < fastIn && wp < fastOut) {
      bb |= iv.getInt32(ip, true) << bc;
      ip += (31 - bc) >> 3;
      bc |= 24;
      let e = lt[bb & lmask];
      if ((e & 0xf0) === isLiteral) {
        // A second literal when its (root-level) code is already buffered.
        let n = e & 15;
        bb >>>= n;
        bc -= n;
        win[wp++] = e >>> 16;
        e = lt[bb & lmask];
        n = e & 15;
        if ((e & 0xf0) !== isLiteral || n > bc) continue;
        bb >>>= n;
        bc -= n;
        win[wp++] = e >>> 16;
        continue;
      }
      if ((e & 0xf0) === isLink) e = lt[(e >>> 16) + ((bb >>> lbits) & ((1 << (e & 15)) - 1))];
      const kind = e & 0xf0;
      let n = e & 15;
      bb >>>= n;
      bc -= n;
      if (kind === isLiteral) {
        win[wp++] = e >>> 16;
        continue;
      }
      if (kind !== isLength) {
        if (kind !== isEnd) throw new ZipError("invalid-symbol");
        ended = true;
        break;
      }
      // Length code and extra bits take at most 20 of the 24 buffered bits.
      let x = (e >>> 8) & 15;
      const len = (e >>> 16) + (bb & ((1 << x) - 1));
      bb >>>= x;
      bc -= x;
      bb |= iv.getInt32(ip, true) << bc;
      ip += (31 - bc) >> 3;
      bc |= 24;
      let d = dt[bb & dmask];
      if ((d & 0xf0) === isLink) d = dt[(d >>> 16) + ((bb >>> dbits) & ((1 << (d & 15)) - 1))];
      n = d & 15;
      bb >>>= n;
      bc -= n;
      if ((d & 0xf0) !== isLiteral) throw new ZipError("invalid-symbol");
      x = (d >>> 8) & 15;
      if (bc < x) {
        bb |= iv.getInt32(ip, true) << bc;
        ip += (31 - bc) >> 3;
        bc |= 24;
      }
      const dist = (d >>> 16) + (bb & ((1 << x) - 1));
      bb >>>= x;
      bc -= x;
      if (dist > wp - hs) throw new ZipError("distance-too-far");
      let from = wp - dist;
      const stop = wp + len;
      if (dist >= 8) {
        // Whole words: each reads bytes already final; the last may overrun by 7 bytes.
        for (; wp < stop; wp += 8, from += 8) {
          ov.setInt32(wp, ov.getInt32(from, true), true);
          ov.setInt32(wp + 4, ov.getInt32(from + 4, true), true);
        }
        wp = stop;
      } else if (dist >= 4) {
        for (; wp < stop; wp += 4, from += 4) ov.setInt32(wp, ov.getInt32(from, true), true);
        wp = stop;
      } else {
        while (wp < stop) win[wp++] = win[from++];
      }
    }
    this.inPos = ip;
    this.bitBuf = bb & ~(-1 << bc);
    this.bitCnt = bc;
    this.wp = wp;
    return ended;
  }

  /**
   * The next buffer size for {@link runDirect} after `n` output bytes: the whole output
   * projected from the input used so far (plus 1/16), at least 1.25 times `n`.
   */
  private grownSize(n: number): number {
    const used = this.inPos - this.callStart, all = this.inEnd - this.callStart;
    const projected = used > 0 ? Math.ceil((n / used) * all * 1.0625) : 0;
    return Math.max(projected, n + (n >> 2));
  }

  /** The decoding state machine, writing into `win` up to `limit`. */
  private decode(limit: number): InflateStop {
    const win = this.win;
    const inp = this.input;
    const ie = this.inEnd;
    let ip = this.inPos;
    let bb = this.bitBuf;
    let bc = this.bitCnt;
    let wp = this.wp;
    let state = this.state;
    let stop: InflateStop = "input";
    const hs = this.historyStart;
    let lt = this.litTable;
    let dt = this.distTable;
    // Imported bindings are copied to locals: V8 re-checks module bindings on every use.
    const lbits = literalRootBits, dbits = distanceRootBits;
    const lmask = (1 << lbits) - 1;
    const dmask = (1 << dbits) - 1;
    const isLiteral = kindLiteral, isLength = kindLength, isEnd = kindEndOfBlock;
    const isLink = kindLink, isInvalid = kindInvalid;

    outer: for (;;) {
      switch (state) {
        case mode.blockHeader: {
          if (this.lastBlock) {
            state = mode.end;
            stop = "end";
            break outer;
          }
          while (bc < 3) {
            if (ip === ie) break outer;
            bb |= inp[ip++] << bc;
            bc += 8;
          }
          this.lastBlock = (bb & 1) === 1;
          const type = (bb >>> 1) & 3;
          bb >>>= 3;
          bc -= 3;
          if (type === 0) state = mode.storedHeader;
          else if (type === 1) {
            lt = this.litTable = fixedLiteralTable;
            dt = this.distTable = fixedDistanceTable;
            state = mode.literal;
          } else if (type === 2) state = mode.dynamicHeader;
          else throw new ZipError("bad-block-type");
          break;
        }
        case mode.storedHeader: {
          const drop = bc & 7;
          bb >>>= drop;
          bc -= drop;
          while (bc < 32) {
            if (ip === ie) break outer;
            bb |= inp[ip++] << bc;
            bc += 8;
          }
          const len = bb & 0xffff;
          if (((bb >>> 16) ^ 0xffff) !== len) throw new ZipError("stored-length-mismatch");
          bb = 0;
          bc = 0;
          this.storedLeft = len;
          state = mode.storedCopy;
          break;
        }
        case mode.storedCopy: {
          let left = this.storedLeft;
          if (left === 0) {
            state = mode.blockHeader;
            break;
          }
          if (wp === limit) {
            stop = "output";
            break outer;
          }
          if (ip === ie) break outer;
          const n = Math.min(left, ie - ip, limit - wp);
          win.set(inp.subarray(ip, ip + n), wp);
          wp += n;
          ip += n;
          left -= n;
          this.storedLeft = left;
          break;
        }
        case mode.dynamicHeader: {
          while (bc < 14) {
            if (ip === ie) break outer;
            bb |= inp[ip++] << bc;
            bc += 8;
          }
          this.nlit = (bb & 31) + 257;
          this.ndist = ((bb >>> 5) & 31) + 1;
          this.nclen = ((bb >>> 10) & 15) + 4;
          bb >>>= 14;
          bc -= 14;
          if (this.nlit > 286 || this.ndist > 30) throw new ZipError("too-many-codes");
          this.lensHave = 0;
          this.lens.fill(0, 0, 19);
          state = mode.codeLengthLengths;
          break;
        }
        case mode.codeLengthLengths: {
          while (this.lensHave < this.nclen) {
            while (bc < 3) {
              if (ip === ie) break outer;
              bb |= inp[ip++] << bc;
              bc += 8;
            }
            this.lens[codeLengthOrder[this.lensHave++]] = bb & 7;
            bb >>>= 3;
            bc -= 3;
          }
          buildDecodeTable(this.clTable, this.lens, 19, literalEntries, 7, false);
          this.lensHave = 0;
          state = mode.codeLengths;
          break;
        }
        case mode.codeLengths: {
          const total = this.nlit + this.ndist;
          const lens = this.lens;
          const cl = this.clTable;
          while (this.lensHave < total) {
            // A code length symbol plus its repeat bits needs at most 7 + 7 bits.
            while (bc < 14 && ip < ie) {
              bb |= inp[ip++] << bc;
              bc += 8;
            }
            const e = cl[bb & 127];
            const n = e & 15;
            if (n > bc) break outer;
            const sym = e >>> 16;
            if (sym < 16) {
              lens[this.lensHave++] = sym;
              bb >>>= n;
              bc -= n;
              continue;
            }
            const extra = sym === 16 ? 2 : sym === 17 ? 3 : 7;
            if (n + extra > bc) break outer;
            const r = (bb >>> n) & ((1 << extra) - 1);
            bb >>>= n + extra;
            bc -= n + extra;
            let value = 0, repeat: number;
            if (sym === 16) {
              if (this.lensHave === 0) throw new ZipError("bad-code-lengths");
              value = lens[this.lensHave - 1];
              repeat = 3 + r;
            } else repeat = sym === 17 ? 3 + r : 11 + r;
            if (this.lensHave + repeat > total) throw new ZipError("bad-code-lengths");
            lens.fill(value, this.lensHave, this.lensHave + repeat);
            this.lensHave += repeat;
          }
          if (lens[256] === 0) throw new ZipError("missing-end-of-block");
          buildDecodeTable(this.dynLit, lens, this.nlit, literalEntries, lbits, true);
          buildDecodeTable(
            this.dynDist,
            lens.subarray(this.nlit),
            this.ndist,
            distanceEntries,
            dbits,
            true,
          );
          lt = this.litTable = this.dynLit;
          dt = this.distTable = this.dynDist;
          state = mode.literal;
          break;
        }
        case mode.literal: {
          if (ip < ie - 16 && wp < limit - 272) {
            const r = this.decodeFast(limit, ip, bb, bc, wp);
            ip = this.inPos;
            bb = this.bitBuf;
            bc = this.bitCnt;
            wp = this.wp;
            if (r) {
              state = mode.blockHeader;
              continue outer;
            }
          }
          // Careful path: one symbol at a time, suspending when input or output runs out.
          while (bc < 15 && ip < ie) {
            bb |= inp[ip++] << bc;
            bc += 8;
          }
          let e = lt[bb & lmask];
          if ((e & 0xf0) === isLink) {
            e = lt[(e >>> 16) + ((bb >>> lbits) & ((1 << (e & 15)) - 1))];
          }
          const n = e & 15;
          if (n > bc) break outer;
          const kind = e & 0xf0;
          if (kind === isLiteral) {
            if (wp === limit) {
              stop = "output";
              break outer;
            }
            bb >>>= n;
            bc -= n;
            win[wp++] = e >>> 16;
            break;
          }
          bb >>>= n;
          bc -= n;
          if (kind === isEnd) {
            state = mode.blockHeader;
          } else if (kind === isLength) {
            this.copyLen = e >>> 16;
            this.extraBits = (e >>> 8) & 15;
            state = mode.lengthExtra;
          } else throw new ZipError("invalid-symbol");
          break;
        }
        case mode.lengthExtra: {
          const x = this.extraBits;
          while (bc < x) {
            if (ip === ie) break outer;
            bb |= inp[ip++] << bc;
            bc += 8;
          }
          this.copyLen += bb & ((1 << x) - 1);
          bb >>>= x;
          bc -= x;
          state = mode.distance;
          break;
        }
        case mode.distance: {
          while (bc < 15 && ip < ie) {
            bb |= inp[ip++] << bc;
            bc += 8;
          }
          let d = dt[bb & dmask];
          if ((d & 0xf0) === isLink) {
            d = dt[(d >>> 16) + ((bb >>> dbits) & ((1 << (d & 15)) - 1))];
          }
          const n = d & 15;
          if (n > bc) break outer;
          bb >>>= n;
          bc -= n;
          if ((d & 0xf0) === isInvalid) throw new ZipError("invalid-symbol");
          this.copyDist = d >>> 16;
          this.extraBits = (d >>> 8) & 15;
          state = mode.distanceExtra;
          break;
        }
        case mode.distanceExtra: {
          const x = this.extraBits;
          while (bc < x) {
            if (ip === ie) break outer;
            bb |= inp[ip++] << bc;
            bc += 8;
          }
          const dist = this.copyDist + (bb & ((1 << x) - 1));
          bb >>>= x;
          bc -= x;
          if (dist > wp - hs) throw new ZipError("distance-too-far");
          this.copyDist = dist;
          state = mode.copy;
          break;
        }
        case mode.copy: {
          if (wp === limit) {
            stop = "output";
            break outer;
          }
          const n = Math.min(this.copyLen, limit - wp);
          let from = wp - this.copyDist;
          for (let i = 0; i < n; i++) win[wp++] = win[from++];
          this.copyLen -= n;
          if (this.copyLen === 0) state = mode.literal;
          break;
        }
        case mode.end:
          stop = "end";
          break outer;
      }
    }
    this.inPos = ip;
    this.bitBuf = bb;
    this.bitCnt = bc;
    this.wp = wp;
    this.state = state;
    return stop;
  }
}
