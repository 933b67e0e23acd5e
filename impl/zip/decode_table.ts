/**
 * Table-driven Huffman decoding for the inflater: a root table indexed by the next
 * `rootBits` input bits (LSB first, as they arrive), whose entries either decode a symbol
 * directly or link to a second-level table for longer codes.
 *
 * Entry layout (one int32): bits 0-3 the number of bits the code occupies (for a link: the
 * number of index bits of its second-level table), bits 4-7 the kind, bits 8-11 the number
 * of extra bits that follow the code, bits 16-31 the value (literal byte, base length, base
 * distance, or the offset of a second-level table).
 *
 * @module
 */

import { distanceCodes, lengthCodes } from "../../spec/zip.ts";
import { ZipError } from "./errors.ts";

/** Entry kind: a literal byte (value) or a distance (value = base). */
export const kindLiteral = 0x00;
/** Entry kind: a match length (value = base length). */
export const kindLength = 0x10;
/** Entry kind: end of block. */
export const kindEndOfBlock = 0x20;
/** Entry kind: a code that does not stand for any valid symbol. */
export const kindInvalid = 0x30;
/** Entry kind: a link to a second-level table. */
export const kindLink = 0x40;

/** Root index bits of literal/length tables. */
export const literalRootBits = 10;
/** Root index bits of distance tables. */
export const distanceRootBits = 8;

/** Per-symbol entries (without the code length) of the literal/length alphabet. */
export const literalEntries: Int32Array = (() => {
  const e = new Int32Array(288);
  for (let s = 0; s < 256; s++) e[s] = (s << 16) | kindLiteral;
  e[256] = kindEndOfBlock;
  lengthCodes.forEach((c, i) => e[257 + i] = (c.base << 16) | (c.extra << 8) | kindLength);
  e[286] = e[287] = kindInvalid;
  return e;
})();

/** Per-symbol entries (without the code length) of the distance alphabet. */
export const distanceEntries: Int32Array = (() => {
  const e = new Int32Array(32);
  distanceCodes.forEach((c, i) => e[i] = (c.base << 16) | (c.extra << 8) | kindLiteral);
  e[30] = e[31] = kindInvalid;
  return e;
})();

/** Size a decode table must have for an alphabet of `symbols` with root `rootBits`. */
export function decodeTableSize(symbols: number, rootBits: number): number {
  return (1 << rootBits) + symbols * (1 << (15 - rootBits));
}

const counts = new Int32Array(16);
const nextCode = new Int32Array(16);

/**
 * Fills `table` for the code given by `lengths[0, n)`, mapping symbol s to `entries[s]`.
 * Throws a {@link ZipError} for an over-subscribed code and for an incomplete one unless
 * `allowSingle` and the code has no symbols or one symbol of length one (spec/zip.ts rules).
 */
export function buildDecodeTable(
  table: Int32Array,
  lengths: Uint8Array,
  n: number,
  entries: Int32Array,
  rootBits: number,
  allowSingle: boolean,
): void {
  counts.fill(0);
  for (let s = 0; s < n; s++) counts[lengths[s]]++;
  counts[0] = 0;
  let left = 1, maxLen = 0, used = 0;
  for (let len = 1; len <= 15; len++) {
    left = (left << 1) - counts[len];
    if (left < 0) throw new ZipError("oversubscribed-code");
    if (counts[len]) maxLen = len;
    used += counts[len];
  }
  if (left > 0) {
    const single = used === 1 && counts[1] === 1;
    if (!allowSingle || (used !== 0 && !single)) throw new ZipError("incomplete-code");
  }
  const rootSize = 1 << rootBits;
  // Unused slots (only possible for the tolerated incomplete codes) decode as invalid after
  // as many bits as the longest code, which is where a bit-by-bit reader would give up.
  table.fill(kindInvalid | maxLen, 0, rootSize);
  let code = 0;
  for (let len = 1; len <= 15; len++) {
    code = (code + counts[len - 1]) << 1;
    nextCode[len] = code;
  }
  const subBits = maxLen > rootBits ? maxLen - rootBits : 0;
  const subSize = 1 << subBits;
  let nextSub = rootSize;
  for (let s = 0; s < n; s++) {
    const len = lengths[s];
    if (len === 0) continue;
    let rev = 0;
    for (let c = nextCode[len]++, k = 0; k < len; k++, c >>= 1) rev = (rev << 1) | (c & 1);
    const entry = entries[s] | len;
    if (len <= rootBits) {
      for (let i = rev; i < rootSize; i += 1 << len) table[i] = entry;
      continue;
    }
    const prefix = rev & (rootSize - 1);
    let link = table[prefix];
    if ((link & 0xf0) !== kindLink) {
      link = (nextSub << 16) | kindLink | subBits;
      table[prefix] = link;
      nextSub += subSize;
    }
    const base = link >>> 16;
    for (let i = rev >>> rootBits; i < subSize; i += 1 << (len - rootBits)) table[base + i] = entry;
  }
}
