/**
 * The compressor's back end: collects literal and match symbols for one block, then writes
 * the block as stored, fixed-Huffman or dynamic-Huffman (RFC 1951 §3.2.4-3.2.7), whichever
 * is smallest, into a pending byte buffer the stream drains into its output space.
 *
 * @module
 */

import {
  codeLengthOrder,
  distanceCodes,
  fixedLiteralLengths,
  lengthCodes,
} from "../../spec/zip.ts";
import { buildCodeLengths, buildCodes } from "./huffman_encode.ts";

/** Symbols per block before the block is written. */
export const blockSymbols = 1 << 14;

/** Code index (0..28) of each match length minus 3. */
const lengthCodeOf = new Uint8Array(256);
/** Distance code of distance-1 for distances up to 256 ... */
const distCodeSmall = new Uint8Array(256);
/** ... and of (distance-1) >> 7 for longer ones. */
const distCodeLarge = new Uint8Array(256);
const lengthExtra = new Uint8Array(29);
const lengthBase = new Uint16Array(29);
const distExtra = new Uint8Array(30);
const distBase = new Uint16Array(30);
lengthCodes.forEach((c, i) => {
  lengthExtra[i] = c.extra;
  lengthBase[i] = c.base - 3;
  for (let l = c.base; l < c.base + (1 << c.extra) && l <= 258; l++) lengthCodeOf[l - 3] = i;
});
distanceCodes.forEach((c, i) => {
  distExtra[i] = c.extra;
  distBase[i] = c.base - 1;
  for (let d = c.base - 1; d < c.base - 1 + (1 << c.extra); d++) {
    if (d < 256) distCodeSmall[d] = i;
    else distCodeLarge[d >> 7] = i;
  }
});

/** Marks a match entry in {@link BlockWriter.syms} (literals and end-of-block are below). */
const matchFlag = 1 << 28;

/**
 * Counts a match of `len` (3..258) bytes at distance `dist` (1..32768) in a block's
 * frequencies and returns its entry for {@link BlockWriter.syms}. The parsers record
 * symbols into the writer's arrays themselves, with the count in a local.
 */
export function matchSymbol(
  litFreq: Int32Array,
  distFreq: Int32Array,
  len: number,
  dist: number,
): number {
  const v = len - 3, lc = lengthCodeOf[v];
  litFreq[257 + lc]++;
  const d = dist - 1, dc = d < 256 ? distCodeSmall[d] : distCodeLarge[d >> 7];
  distFreq[dc]++;
  return matchFlag | ((d - distBase[dc]) << 15) | (dc << 10) | (lc << 5) | (v - lengthBase[lc]);
}

const fixedLitLengths = Uint8Array.from(fixedLiteralLengths());
const fixedLitCodes = new Int32Array(288);
const fixedDistLengths = new Uint8Array(30).fill(5);
const fixedDistCodes = new Int32Array(30);
buildCodes(fixedLitLengths, 288, fixedLitCodes);
buildCodes(fixedDistLengths, 30, fixedDistCodes);

/** Block collector and writer; owns the pending output bytes and the bit buffer. */
export class BlockWriter {
  /**
   * Per symbol: a literal byte, or a match with its codes worked out (as the writer emits
   * it): a flag bit (28), the distance's extra bits (15-27), distance code (10-14), length
   * code (5-9) and the length's extra bits (0-4); the writer appends end-of-block (256)
   * after the last one.
   */
  readonly syms = new Int32Array(blockSymbols + 1);
  /** Number of symbols collected for the current block. */
  symCount = 0;
  /** Literal/length frequencies of the current block. */
  readonly litFreq = new Int32Array(286);
  /** Distance frequencies of the current block. */
  readonly distFreq = new Int32Array(30);

  /** Pending output: `pend[pendRead, pendLen)` waits to be drained. */
  pend = new Uint8Array(1 << 17);
  pendLen = 0;
  pendRead = 0;
  private bitBuf = 0;
  private bitCnt = 0;

  private readonly litLengths = new Uint8Array(286);
  private readonly litCodes = new Int32Array(286);
  private readonly distLengths = new Uint8Array(30);
  private readonly distCodes = new Int32Array(30);
  private readonly allLengths = new Uint8Array(316);
  private readonly clFreq = new Int32Array(19);
  private readonly clLengths = new Uint8Array(19);
  private readonly clCodes = new Int32Array(19);
  /** Run-length coded code lengths: symbol (0..18) | repeat bits << 8. */
  private readonly clSymbols = new Int32Array(316);
  private clCount = 0;

  /** Records a literal byte. */
  literal(b: number): void {
    this.syms[this.symCount++] = b;
    this.litFreq[b]++;
  }

  /** Number of bytes waiting to be drained. */
  get pending(): number {
    return this.pendLen - this.pendRead;
  }

  /** Makes sure `n` more bytes fit in the pending buffer. */
  private reserve(n: number): void {
    if (this.pendRead === this.pendLen) this.pendRead = this.pendLen = 0;
    if (this.pendLen + n <= this.pend.length) return;
    const grown = new Uint8Array(Math.max(this.pend.length * 2, this.pendLen + n));
    grown.set(this.pend.subarray(0, this.pendLen));
    this.pend = grown;
  }

  /** Appends whole bytes (the bit buffer must be byte-aligned and empty). */
  writeBytes(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.pend.set(bytes, this.pendLen);
    this.pendLen += bytes.length;
  }

  private putBits(value: number, n: number): void {
    this.bitBuf |= value << this.bitCnt;
    this.bitCnt += n;
    while (this.bitCnt >= 8) {
      this.pend[this.pendLen++] = this.bitBuf & 0xff;
      this.bitBuf >>>= 8;
      this.bitCnt -= 8;
    }
  }

  /** Pads the bit stream with zero bits to a byte boundary (and writes out whole bytes). */
  alignToByte(): void {
    this.putBits(0, (8 - (this.bitCnt & 7)) & 7);
  }

  /**
   * Writes the collected symbols as one block and starts a new one. `data[start, start +
   * storedLen)` are the block's input bytes when still available (storedLen < 0 if not), so
   * a stored block can be chosen when it is smaller.
   */
  flushBlock(data: Uint8Array, start: number, storedLen: number, last: boolean): void {
    this.litFreq[256] = 1;
    buildCodeLengths(this.litFreq, 286, 15, this.litLengths);
    buildCodeLengths(this.distFreq, 30, 15, this.distLengths);
    let extraBits = 0;
    for (let i = 0; i < 29; i++) extraBits += this.litFreq[257 + i] * lengthExtra[i];
    for (let i = 0; i < 30; i++) extraBits += this.distFreq[i] * distExtra[i];
    const hlit = trimmed(this.litLengths, 286, 257);
    const hdist = trimmed(this.distLengths, 30, 1);
    const headerBits = this.codeLengthHeader(hlit, hdist);
    const dynamicBits = headerBits + extraBits +
      cost(this.litFreq, this.litLengths, 286) + cost(this.distFreq, this.distLengths, 30);
    const fixedBits = 3 + extraBits + cost(this.litFreq, fixedLitLengths, 286) +
      cost(this.distFreq, fixedDistLengths, 30);
    const storedBits = storedLen < 0
      ? Infinity
      : storedLen * 8 + 40 * Math.max(1, Math.ceil(storedLen / 65535));
    const huffmanBits = Math.min(dynamicBits, fixedBits);
    if (storedBits <= huffmanBits) {
      this.writeStored(data, start, storedLen, last);
    } else {
      // Room for the coded block only: the pending buffer need not hold its input as well.
      this.reserve(((huffmanBits + 7) >> 3) + 16);
      if (fixedBits <= dynamicBits) {
        this.putBits(last ? 3 : 2, 3);
        this.writeSymbols(fixedLitCodes, fixedDistCodes);
      } else {
        this.putBits(last ? 5 : 4, 3);
        this.writeDynamicHeader(hlit, hdist);
        this.writeSymbols(this.litCodes, this.distCodes);
      }
    }
    this.symCount = 0;
    this.litFreq.fill(0);
    this.distFreq.fill(0);
  }

  /** Writes `data[start, start+len)` as stored blocks of at most 65535 bytes each. */
  writeStored(data: Uint8Array, start: number, len: number, last: boolean): void {
    this.reserve(len + 5 * Math.ceil(len / 65535) + 8);
    let pos = start;
    const end = start + len;
    do {
      const n = Math.min(65535, end - pos);
      this.putBits(last && pos + n === end ? 1 : 0, 3);
      this.alignToByte();
      this.putBits(n & 0xff, 8);
      this.putBits(n >> 8, 8);
      this.putBits(~n & 0xff, 8);
      this.putBits((~n >> 8) & 0xff, 8);
      this.pend.set(data.subarray(pos, pos + n), this.pendLen);
      this.pendLen += n;
      pos += n;
    } while (pos < end);
  }

  /**
   * Run-length codes the literal/length and distance code lengths as one sequence with
   * symbols 16 (repeat previous), 17 and 18 (repeat zero), builds the code length code, and
   * returns the header size in bits.
   */
  private codeLengthHeader(hlit: number, hdist: number): number {
    const all = this.allLengths;
    all.set(this.litLengths.subarray(0, hlit), 0);
    all.set(this.distLengths.subarray(0, hdist), hlit);
    const total = hlit + hdist;
    const freq = this.clFreq;
    freq.fill(0);
    let k = 0;
    const emit = (sym: number, repeat: number) => {
      this.clSymbols[k++] = sym | (repeat << 8);
      freq[sym]++;
    };
    for (let i = 0; i < total;) {
      const v = all[i];
      let run = 1;
      while (i + run < total && all[i + run] === v) run++;
      i += run;
      if (v === 0) {
        while (run >= 11) {
          const r = Math.min(run, 138);
          emit(18, r - 11);
          run -= r;
        }
        if (run >= 3) {
          emit(17, run - 3);
          run = 0;
        }
      } else {
        emit(v, 0);
        run--;
        while (run >= 3) {
          const r = Math.min(run, 6);
          emit(16, r - 3);
          run -= r;
        }
      }
      for (; run > 0; run--) emit(v, 0);
    }
    this.clCount = k;
    buildCodeLengths(freq, 19, 7, this.clLengths);
    let hclen = 19;
    while (hclen > 4 && this.clLengths[codeLengthOrder[hclen - 1]] === 0) hclen--;
    let bits = 3 + 14 + 3 * hclen + 2 * freq[16] + 3 * freq[17] + 7 * freq[18];
    for (let s = 0; s < 19; s++) bits += freq[s] * this.clLengths[s];
    return bits;
  }

  private writeDynamicHeader(hlit: number, hdist: number): void {
    buildCodes(this.litLengths, 286, this.litCodes);
    buildCodes(this.distLengths, 30, this.distCodes);
    buildCodes(this.clLengths, 19, this.clCodes);
    let hclen = 19;
    while (hclen > 4 && this.clLengths[codeLengthOrder[hclen - 1]] === 0) hclen--;
    this.putBits(hlit - 257, 5);
    this.putBits(hdist - 1, 5);
    this.putBits(hclen - 4, 4);
    for (let i = 0; i < hclen; i++) this.putBits(this.clLengths[codeLengthOrder[i]], 3);
    for (let i = 0; i < this.clCount; i++) {
      const e = this.clSymbols[i];
      const sym = e & 0xff;
      const code = this.clCodes[sym];
      this.putBits(code & 0xffff, code >>> 16);
      if (sym >= 16) this.putBits(e >>> 8, sym === 16 ? 2 : sym === 17 ? 3 : 7);
    }
  }

  /**
   * The hot loop: every symbol of the block, then end-of-block, with codes as
   * {@link buildCodes} packs them. Each put adds at most 15 bits and is followed by a
   * 16-bit flush when 16 bits are buffered, so the bit count stays below 32. End-of-block
   * goes through the loop as a symbol: V8 compiles this loop on stack replacement before
   * any code after it ran, and code there without type feedback would deoptimize it.
   */
  private writeSymbols(litCodes: Int32Array, distCodes: Int32Array): void {
    const out = this.pend;
    let p = this.pendLen;
    let bb = this.bitBuf;
    let bc = this.bitCnt;
    const syms = this.syms;
    const n = this.symCount;
    syms[n] = 256;
    for (let i = 0; i <= n; i++) {
      const s = syms[i];
      if (s <= 256) {
        const c = litCodes[s];
        bb |= (c & 0xffff) << bc;
        bc += c >>> 16;
      } else {
        const lc = (s >>> 5) & 31;
        let c = litCodes[257 + lc];
        bb |= (c & 0xffff) << bc;
        bc += c >>> 16;
        if (bc >= 16) {
          out[p++] = bb;
          out[p++] = bb >>> 8;
          bb >>>= 16;
          bc -= 16;
        }
        bb |= (s & 31) << bc;
        bc += lengthExtra[lc];
        if (bc >= 16) {
          out[p++] = bb;
          out[p++] = bb >>> 8;
          bb >>>= 16;
          bc -= 16;
        }
        const dc = (s >>> 10) & 31;
        c = distCodes[dc];
        bb |= (c & 0xffff) << bc;
        bc += c >>> 16;
        if (bc >= 16) {
          out[p++] = bb;
          out[p++] = bb >>> 8;
          bb >>>= 16;
          bc -= 16;
        }
        bb |= (s >>> 15 & 0x1fff) << bc;
        bc += distExtra[dc];
      }
      if (bc >= 16) {
        out[p++] = bb;
        out[p++] = bb >>> 8;
        bb >>>= 16;
        bc -= 16;
      }
    }
    this.pendLen = p;
    this.bitBuf = bb;
    this.bitCnt = bc;
  }
}

/** Σ freq·length over the first `n` symbols. */
function cost(freq: Int32Array, lengths: Uint8Array, n: number): number {
  let bits = 0;
  for (let s = 0; s < n; s++) bits += freq[s] * lengths[s];
  return bits;
}

/** Number of leading code lengths to send: trailing zeros dropped, at least `min`. */
function trimmed(lengths: Uint8Array, n: number, min: number): number {
  while (n > min && lengths[n - 1] === 0) n--;
  return n;
}
