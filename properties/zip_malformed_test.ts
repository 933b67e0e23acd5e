/**
 * Malformed dynamic-Huffman headers written bit by bit (RFC 1951 3.2.7): each is rejected by
 * our inflater with the expected error and by node:zlib, and a legal sibling built the same
 * way decodes to node:zlib's bytes, so each verdict is anchored on the reference.
 */

import assert from "node:assert/strict";
import zlib from "node:zlib";
import { referenceDecode } from "../spec/zip.ts";
import { tryDecompress, type ZipErrorCode } from "../impl/zip/mod.ts";
import { equalBytes } from "../model/zip_fuzz.ts";

/** Packs bit fields LSB first, as deflate reads them. */
class BitWriter {
  private readonly bytes: number[] = [];
  private acc = 0;
  private count = 0;

  /** Appends the low `n` bits of `value`, least significant first (header fields, extras). */
  bits(value: number, n: number): void {
    for (let i = 0; i < n; i++) {
      this.acc |= ((value >>> i) & 1) << this.count;
      if (++this.count === 8) {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.count = 0;
      }
    }
  }

  /** Appends an `n`-bit Huffman code, most significant bit first (RFC 1951 3.1.1). */
  code(value: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) this.bits((value >>> i) & 1, 1);
  }

  /** The bytes written, the last one padded with zero bits. */
  finish(): Uint8Array {
    return Uint8Array.from(this.count > 0 ? [...this.bytes, this.acc] : this.bytes);
  }
}

/** The canonical code of each symbol for `lengths` (RFC 1951 3.2.2); -1 where unused. */
function canonicalCodes(lengths: readonly number[]): number[] {
  const count = new Array(16).fill(0);
  for (const l of lengths) if (l > 0) count[l]++;
  const next = new Array(16).fill(0);
  for (let len = 1, code = 0; len < 16; len++) {
    code = (code + count[len - 1]) << 1;
    next[len] = code;
  }
  return lengths.map((l) => (l > 0 ? next[l]++ : -1));
}

/** Order in which the code length code's lengths are sent (RFC 1951 3.2.7). */
const clOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** A complete code length code over all 19 symbols: 0-12 of length 4, 13-18 of length 5. */
const clLengths: number[] = Array.from({ length: 19 }, (_, s) => (s < 13 ? 4 : 5));

/** A code length symbol and the value of its extra bits. */
type ClItem = readonly [symbol: number, extra: number];

/** `lengths` as code length symbols: runs of zeros with 17 and 18, anything else literally. */
function runLengths(lengths: readonly number[]): ClItem[] {
  const out: ClItem[] = [];
  for (let i = 0; i < lengths.length;) {
    let run = 0;
    while (lengths[i + run] === 0 && run < 138 && i + run < lengths.length) run++;
    if (run >= 11) out.push([18, run - 11]);
    else if (run >= 3) out.push([17, run - 3]);
    else {
      out.push([lengths[i], 0]);
      run = 1;
    }
    i += run;
  }
  return out;
}

/** A data symbol: a literal/length symbol, or a distance symbol (no extra bits used here). */
type DataItem = { readonly lit: number } | { readonly dist: number };

/** How a test describes its single final dynamic block. */
interface DynamicBlock {
  /** Literal/length code lengths; the length of the array is HLIT + 257. */
  readonly lit: readonly number[];
  /** Distance code lengths; the length of the array is HDIST + 1. */
  readonly dist: readonly number[];
  /** The code length symbols that send lit and dist (default: {@link runLengths}). */
  readonly cl?: readonly ClItem[];
  /** The symbols of the block, without its end-of-block. */
  readonly data: readonly DataItem[];
}

/** A raw deflate stream of one final dynamic-Huffman block (BTYPE 10). */
function dynamicStream(block: DynamicBlock): Uint8Array {
  const w = new BitWriter();
  w.bits(1, 1); // BFINAL
  w.bits(2, 2); // BTYPE: dynamic Huffman codes
  w.bits(block.lit.length - 257, 5);
  w.bits(block.dist.length - 1, 5);
  w.bits(19 - 4, 4); // HCLEN: all 19 code length code lengths follow
  for (const sym of clOrder) w.bits(clLengths[sym], 3);
  const clCodes = canonicalCodes(clLengths);
  const extraBits = (sym: number) => (sym === 16 ? 2 : sym === 17 ? 3 : sym === 18 ? 7 : 0);
  for (const [sym, extra] of block.cl ?? runLengths([...block.lit, ...block.dist])) {
    w.code(clCodes[sym], clLengths[sym]);
    w.bits(extra, extraBits(sym));
  }
  const litCodes = canonicalCodes(block.lit);
  const distCodes = canonicalCodes(block.dist);
  for (const item of [...block.data, { lit: 256 }]) {
    if ("lit" in item) w.code(litCodes[item.lit], block.lit[item.lit]);
    else w.code(distCodes[item.dist], block.dist[item.dist]);
  }
  return w.finish();
}

/** Code lengths of an alphabet of `n` symbols: `used[s]` for the symbols s in `used`, else 0. */
function lengthsOf(n: number, used: Record<number, number>): number[] {
  return Array.from({ length: n }, (_, s) => used[s] ?? 0);
}

/** Asserts node:zlib, our inflater and the reference decoder all reject `stream`. */
function assertRejected(stream: Uint8Array, code: ZipErrorCode, zlibMessage: RegExp): void {
  assert.throws(() => zlib.inflateRawSync(stream), zlibMessage, "node:zlib rejects it");
  const ours = tryDecompress(stream, "deflate");
  const text = "ok" in ours ? JSON.stringify(new TextDecoder().decode(ours.ok)) : "";
  assert.ok("err" in ours, `we reject it (we decoded ${text})`);
  assert.equal(ours.err.code, code);
  const ref = referenceDecode(stream, "deflate");
  assert.ok("err" in ref && ref.err === code, "the reference decoder rejects it the same way");
}

/** Asserts node:zlib and our inflater decode `stream` to `want`. */
function assertDecodes(stream: Uint8Array, want: string): void {
  const node = new Uint8Array(zlib.inflateRawSync(stream));
  assert.equal(new TextDecoder().decode(node), want, "node:zlib accepts it");
  const ours = tryDecompress(stream, "deflate");
  assert.ok("ok" in ours, `we accept it (${"err" in ours ? ours.err.code : ""})`);
  assert.ok(equalBytes(ours.ok, node), "we decode node:zlib's bytes");
}

/** 'a', 'b', end-of-block and length 3 (symbol 257), all of length 2: a complete code. */
const abLit = lengthsOf(258, { 97: 2, 98: 2, 256: 2, 257: 2 });
/** "ab", then a copy of 3 at distance 2 (distance symbol 1): "ababa". */
const ababa: DataItem[] = [{ lit: 97 }, { lit: 98 }, { lit: 257 }, { dist: 1 }];

Deno.test("zip malformed: code length 16 (repeat previous) as the first length", async (t) => {
  // Four distance codes of length 2; the first three literal/length lengths are zero.
  const lit = abLit, dist = [2, 2, 2, 2];
  const rest = runLengths([...lit, ...dist].slice(3));
  await t.step("legal sibling: 17 (three zeros) first", () => {
    assertDecodes(dynamicStream({ lit, dist, cl: [[17, 0], ...rest], data: ababa }), "ababa");
  });
  await t.step("16 first has no previous length to repeat", () => {
    const stream = dynamicStream({ lit, dist, cl: [[16, 0], ...rest], data: ababa });
    assertRejected(stream, "bad-code-lengths", /invalid bit length repeat/);
  });
  await t.step("16 after a length repeats it (legal)", () => {
    const cl: ClItem[] = [...runLengths([...lit, 2]), [16, 0]];
    assertDecodes(dynamicStream({ lit, dist, cl, data: ababa }), "ababa");
  });
});

Deno.test("zip malformed: a code of one symbol is legal only with length 1", async (t) => {
  await t.step("distance code: one symbol of length 1 (legal, as in zlib)", () => {
    const dist = lengthsOf(2, { 1: 1 });
    assertDecodes(dynamicStream({ lit: abLit, dist, data: ababa }), "ababa");
  });
  for (const len of [2, 5, 15]) {
    await t.step(`distance code: one symbol of length ${len} is incomplete`, () => {
      const dist = lengthsOf(2, { 1: len });
      const stream = dynamicStream({ lit: abLit, dist, data: ababa });
      assertRejected(stream, "incomplete-code", /invalid distances set/);
    });
  }
  await t.step("literal/length code: only end-of-block, of length 1 (legal, as in zlib)", () => {
    assertDecodes(dynamicStream({ lit: lengthsOf(257, { 256: 1 }), dist: [0], data: [] }), "");
  });
  for (const len of [2, 9]) {
    await t.step(`literal/length code: only end-of-block, of length ${len}`, () => {
      const lit = lengthsOf(257, { 256: len });
      const stream = dynamicStream({ lit, dist: [0], data: [] });
      assertRejected(stream, "incomplete-code", /invalid literal\/lengths set/);
    });
  }
});
