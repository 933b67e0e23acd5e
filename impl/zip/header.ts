/**
 * Framing headers: writers for the zlib (RFC 1950) and gzip (RFC 1952) headers our
 * compressor emits, and byte-at-a-time parsers for the headers we accept, so a header split
 * across input chunks of any size parses the same way.
 *
 * @module
 */

import { crc32 } from "./checksum.ts";
import { ZipError } from "./errors.ts";

/**
 * The 2-byte zlib header for a 32 KiB window: CMF 0x78 and an FLG whose FLEVEL reflects the
 * compression level (0 fastest .. 3 maximum) and whose FCHECK makes CMF·256+FLG a multiple
 * of 31.
 */
export function zlibHeader(level: number): Uint8Array {
  const flevel = level < 2 ? 0 : level < 6 ? 1 : level === 6 ? 2 : 3;
  const cmf = 0x78;
  let flg = flevel << 6;
  flg += 31 - ((cmf * 256 + flg) % 31);
  return Uint8Array.of(cmf, flg);
}

/**
 * A minimal 10-byte gzip header: deflate, no flags, MTIME 0 (no time stamp: the output is a
 * function of the input alone), XFL 2 for level 9 / 4 for level 1, OS 255 (unknown).
 */
export function gzipHeader(level: number): Uint8Array {
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
  return Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255);
}

/**
 * Parses a zlib header one byte at a time: CM 8, CINFO 0..7 (8..15 is invalid, as in zlib),
 * a valid FCHECK and no FDICT. The declared window does not bound distances (Inflater).
 */
export class ZlibHeaderParser {
  private cmf = -1;

  /** Feeds one byte; returns true when the header is complete. Throws on a bad header. */
  push(b: number): boolean {
    if (this.cmf < 0) {
      this.cmf = b;
      return false;
    }
    const cmf = this.cmf;
    if ((cmf & 15) !== 8 || (cmf >> 4) > 7 || ((cmf << 8) | b) % 31 !== 0) {
      throw new ZipError("bad-header");
    }
    if (b & 0x20) throw new ZipError("preset-dictionary");
    return true;
  }
}

const gzipStage = {
  fixed: 0,
  extraLength: 1,
  extra: 2,
  name: 3,
  comment: 4,
  headerCrc: 5,
} as const;

/** The optional header fields in stream order, with the FLG bit that announces each. */
const optionalFields: ReadonlyArray<readonly [number, number]> = [
  [gzipStage.extraLength, 4],
  [gzipStage.name, 8],
  [gzipStage.comment, 16],
  [gzipStage.headerCrc, 2],
];

/**
 * Parses a gzip member header one byte at a time: ID1 ID2 CM FLG MTIME XFL OS, then the
 * optional FEXTRA, FNAME, FCOMMENT and FHCRC fields selected by FLG (FTEXT is only a hint).
 */
export class GzipHeaderParser {
  private stage: number = gzipStage.fixed;
  private seen = 0;
  private flags = 0;
  private count = 0;
  private crc = 0;
  private readonly one = new Uint8Array(1);

  /** Feeds one byte; returns true when the header is complete. Throws on a bad header. */
  push(b: number): boolean {
    const stage = this.stage;
    if (stage !== gzipStage.headerCrc) {
      this.one[0] = b;
      this.crc = crc32(this.one, this.crc);
    }
    switch (stage) {
      case gzipStage.fixed: {
        const i = this.seen++;
        if ((i === 0 && b !== 0x1f) || (i === 1 && b !== 0x8b) || (i === 2 && b !== 8)) {
          throw new ZipError("bad-header");
        }
        if (i === 3) {
          if (b & 0xe0) throw new ZipError("bad-header", "reserved FLG bits set");
          this.flags = b;
        }
        return i === 9 ? this.enter(gzipStage.extraLength) : false;
      }
      case gzipStage.extraLength:
        this.count |= b << (8 * this.seen++);
        if (this.seen < 2) return false;
        if (this.count === 0) return this.enter(gzipStage.name);
        this.stage = gzipStage.extra;
        return false;
      case gzipStage.extra:
        return --this.count === 0 ? this.enter(gzipStage.name) : false;
      case gzipStage.name:
        return b === 0 ? this.enter(gzipStage.comment) : false;
      case gzipStage.comment:
        return b === 0 ? this.enter(gzipStage.headerCrc) : false;
      default: {
        this.count |= b << (8 * this.seen++);
        if (this.seen < 2) return false;
        if (this.count !== (this.crc & 0xffff)) throw new ZipError("checksum-mismatch");
        return true;
      }
    }
  }

  /** Enters the first optional field at or after `from` whose flag is set; true if none. */
  private enter(from: number): boolean {
    for (const [stage, flag] of optionalFields) {
      if (stage >= from && (this.flags & flag)) {
        this.stage = stage;
        this.seen = 0;
        this.count = 0;
        return false;
      }
    }
    return true;
  }
}
