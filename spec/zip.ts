/**
 * The ZIP accelerator's observable semantics (RFCv2 5/7, drivers/crypto/hisilicon/zip and the
 * sample test_hisi_zip.c), as pure data and functions:
 *
 * - the SQE status codes and which of them are successes;
 * - the result predicates every executed SQE must satisfy (`sqeResultViolations`);
 * - a small, deliberately slow reference decoder for RFC 1951 (raw deflate), RFC 1950 (zlib)
 *   and RFC 1952 (gzip) that defines what a compressed stream means (`referenceDecode`).
 *
 * The reference decoder favours clarity over speed: it reads one bit at a time and decodes
 * Huffman codes from canonical code lengths exactly as RFC 1951 §3.2.2 describes them.
 * Where the RFCs leave a choice open, the choice zlib makes is the one written down here
 * (see {@link ZipErrorCode}), because zlib is what real peers will use to read our output.
 *
 * @module
 */

/**
 * Status codes written by the engine into `dw3 & 0xff` of a completed SQE.
 *
 * The first five come from the seed (test_hisi_zip.c / hisi_qm_udrv.c and the driver):
 * 0x00 OK, 0x0d negative compression, 0x0e dest_avail_out insufficient, 0x10 CRC error,
 * 0x13 decompression end. The remaining codes are this specification's names for the other
 * error conditions the seed leaves unnamed ("others = error").
 */
export const ZipStatus = {
  /** Success; for decompression: all input consumed and the stream has not ended yet. */
  ok: 0x00,
  /** Compression succeeded but the output is not smaller than the input (seed: 0x0d). */
  negativeCompression: 0x0d,
  /** The output space ran out before the job finished; the stream context can continue. */
  destInsufficient: 0x0e,
  /** A checksum did not match: zlib Adler-32, gzip CRC-32 or gzip header CRC-16 (seed: 0x10). */
  checksumError: 0x10,
  /** Malformed zlib or gzip header, including a zlib preset dictionary (FDICT). */
  headerError: 0x11,
  /** Invalid deflate data: block type, code lengths, codes, symbols, distances, stored LEN. */
  dataError: 0x12,
  /** Decompression reached the end of the stream (seed: 0x13). */
  decompressEnd: 0x13,
  /** The input ended (final chunk given) before the stream did. */
  truncatedInput: 0x14,
  /** The gzip ISIZE trailer does not match the decompressed length modulo 2^32. */
  lengthError: 0x15,
  /** The SQE asks for something the engine does not do (unknown dw9 request type, bad level). */
  badRequest: 0x16,
  /** A DMA read of the source buffer faulted (IOMMU translation failed). */
  dmaReadFault: 0x17,
  /** A DMA write of the destination buffer faulted (IOMMU translation failed). */
  dmaWriteFault: 0x18,
} as const;

/** One of the {@link ZipStatus} values. */
export type ZipStatusCode = typeof ZipStatus[keyof typeof ZipStatus];

/** The name of a status code, for messages and traces ("unknown" for other numbers). */
export function zipStatusName(status: number): string {
  for (const [name, code] of Object.entries(ZipStatus)) {
    if (code === status) return name;
  }
  return "unknown";
}

/**
 * Statuses that mean the job finished successfully: OK, negative compression (the sample's
 * hisi_qm_recv_sqe accepts it) and decompression end.
 */
export function isZipSuccess(status: number): boolean {
  return status === ZipStatus.ok || status === ZipStatus.negativeCompression ||
    status === ZipStatus.decompressEnd;
}

/** True for 0x0e: not an error, the job needs more output space and may be continued. */
export function isZipContinuable(status: number): boolean {
  return status === ZipStatus.destInsufficient;
}

/** True for every status that is neither a success nor continuable. */
export function isZipError(status: number): boolean {
  return !isZipSuccess(status) && !isZipContinuable(status);
}

/** Request types carried in dw9 of the SQE (0x01 raw deflate in later hardware). */
export const ZipRequestType = {
  /** Raw RFC 1951 deflate, no framing. */
  deflate: 0x01,
  /** RFC 1950 zlib framing. */
  zlib: 0x02,
  /** RFC 1952 gzip framing. */
  gzip: 0x03,
} as const;

/** A stream format: which framing surrounds the deflate data. */
export type ZipFormat = "deflate" | "zlib" | "gzip";

/** The format named by a dw9 request type, or undefined for an unknown type. */
export function formatOfRequestType(dw9: number): ZipFormat | undefined {
  switch (dw9 & 0xff) {
    case ZipRequestType.deflate:
      return "deflate";
    case ZipRequestType.zlib:
      return "zlib";
    case ZipRequestType.gzip:
      return "gzip";
    default:
      return undefined;
  }
}

/** What the submitter asked for in an SQE: the limits the result must respect. */
export interface ZipSqeRequest {
  /** input_data_length: bytes readable at the source address. */
  readonly inputLength: number;
  /** dest_avail_out: bytes writable at the destination address. */
  readonly destAvailOut: number;
}

/** What the engine wrote back into the SQE. */
export interface ZipSqeResult {
  /** Bytes of input the engine consumed. */
  readonly consumed: number;
  /** Bytes of output the engine wrote. */
  readonly produced: number;
  /** dw3 & 0xff. */
  readonly status: number;
}

/**
 * Every rule a completed SQE must satisfy, as a list of violation messages (empty when the
 * result is acceptable): produced ≤ dest_avail_out (never an overrun), consumed ≤
 * input_data_length, a status from {@link ZipStatus}, and 0x0e only when the output space
 * was actually used up.
 */
export function sqeResultViolations(req: ZipSqeRequest, res: ZipSqeResult): string[] {
  const out: string[] = [];
  if (res.produced > req.destAvailOut) {
    out.push(`produced ${res.produced} > dest_avail_out ${req.destAvailOut}`);
  }
  if (res.consumed > req.inputLength) {
    out.push(`consumed ${res.consumed} > input_data_length ${req.inputLength}`);
  }
  if (zipStatusName(res.status) === "unknown") {
    out.push(`unknown status 0x${res.status.toString(16)}`);
  }
  if (res.status === ZipStatus.destInsufficient && res.produced !== req.destAvailOut) {
    out.push(`status 0x0e but only ${res.produced} of ${req.destAvailOut} bytes used`);
  }
  return out;
}

/**
 * The status a finished whole-buffer compression job reports: 0x0d when the output is not
 * smaller than the input (still a success), 0 otherwise.
 */
export function compressStatusFor(inputLength: number, outputLength: number): ZipStatusCode {
  return outputLength >= inputLength ? ZipStatus.negativeCompression : ZipStatus.ok;
}

/**
 * Why a stream is invalid. The RFCs leave some cases open; this specification (like zlib)
 * rejects an incomplete Huffman code except a code with exactly one symbol of length one for
 * literal/length or distance codes, accepts a distance code with no symbols at all, rejects a
 * literal/length code without end-of-block, and rejects a distance larger than the bytes
 * produced so far. The zlib header's window size (CINFO 0..7) does not bound distances: zlib
 * checks it only in its INFLATE_STRICT build, and every zlib reader in use accepts it.
 */
export type ZipErrorCode =
  | "truncated"
  | "bad-block-type"
  | "stored-length-mismatch"
  | "too-many-codes"
  | "bad-code-lengths"
  | "oversubscribed-code"
  | "incomplete-code"
  | "missing-end-of-block"
  | "invalid-symbol"
  | "distance-too-far"
  | "bad-header"
  | "preset-dictionary"
  | "checksum-mismatch"
  | "length-mismatch";

/** The SQE status that reports a given stream error. */
export function statusOfError(code: ZipErrorCode): ZipStatusCode {
  switch (code) {
    case "truncated":
      return ZipStatus.truncatedInput;
    case "bad-header":
    case "preset-dictionary":
      return ZipStatus.headerError;
    case "checksum-mismatch":
      return ZipStatus.checksumError;
    case "length-mismatch":
      return ZipStatus.lengthError;
    default:
      return ZipStatus.dataError;
  }
}

/** The reference decoder's answer: the decoded bytes and how much input the stream used. */
export type ReferenceResult =
  | { readonly ok: Uint8Array; readonly consumed: number }
  | { readonly err: ZipErrorCode };

/** Extra bits and base value of the 29 length codes 257..285 (RFC 1951 §3.2.5). */
export const lengthCodes: ReadonlyArray<{ readonly extra: number; readonly base: number }> =
  (() => {
    const codes: { extra: number; base: number }[] = [];
    let base = 3;
    for (let i = 0; i < 28; i++) {
      const extra = i < 8 ? 0 : (i >> 2) - 1;
      codes.push({ extra, base });
      base += 1 << extra;
    }
    codes.push({ extra: 0, base: 258 });
    return codes;
  })();

/** Extra bits and base value of the 30 distance codes 0..29 (RFC 1951 §3.2.5). */
export const distanceCodes: ReadonlyArray<{ readonly extra: number; readonly base: number }> =
  (() => {
    const codes: { extra: number; base: number }[] = [];
    let base = 1;
    for (let i = 0; i < 30; i++) {
      const extra = i < 4 ? 0 : (i >> 1) - 1;
      codes.push({ extra, base });
      base += 1 << extra;
    }
    return codes;
  })();

/** Order in which the code length code lengths are sent (RFC 1951 §3.2.7). */
export const codeLengthOrder: ReadonlyArray<number> = [
  16,
  17,
  18,
  0,
  8,
  7,
  9,
  6,
  10,
  5,
  11,
  4,
  12,
  3,
  13,
  2,
  14,
  1,
  15,
];

/** Code lengths of the fixed literal/length code (RFC 1951 §3.2.6), 288 symbols. */
export function fixedLiteralLengths(): number[] {
  return Array.from({ length: 288 }, (_, s) => s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8);
}

/** CRC-32 (ISO 3309, reflected polynomial 0xEDB88320) of `data`, bit by bit. */
export function crc32Reference(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** Adler-32 (RFC 1950 §8.2) of `data`. */
export function adler32Reference(data: Uint8Array): number {
  let a = 1, b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** A canonical Huffman code as RFC 1951 §3.2.2 builds it: symbols grouped by length. */
interface CanonicalCode {
  /** countOfLength[n] = how many symbols have code length n (index 0 unused). */
  readonly countOfLength: number[];
  /** Symbols ordered by (length, symbol value): the order codes are assigned in. */
  readonly symbolsInCodeOrder: number[];
}

/** Thrown inside the reference decoder only, and turned into `{ err }` at its boundary. */
class StreamError {
  constructor(readonly code: ZipErrorCode) {}
}

function fail(code: ZipErrorCode): never {
  throw new StreamError(code);
}

/**
 * Builds the canonical code for `lengths`; rejects over-subscribed codes, and incomplete ones
 * unless `allowSingle` and the code is a single symbol of length one (or has no symbols).
 */
function canonicalCode(lengths: number[], allowSingle: boolean): CanonicalCode {
  const countOfLength = new Array<number>(16).fill(0);
  for (const len of lengths) countOfLength[len]++;
  countOfLength[0] = 0;
  // Kraft: count the codes still unassigned at each length; a negative count means
  // more codes were requested than exist.
  let unassigned = 1;
  for (let len = 1; len <= 15; len++) {
    unassigned = unassigned * 2 - countOfLength[len];
    if (unassigned < 0) fail("oversubscribed-code");
  }
  const used = countOfLength.reduce((a, b) => a + b, 0);
  if (unassigned > 0) {
    const single = used === 1 && countOfLength[1] === 1;
    if (!allowSingle || (used !== 0 && !single)) fail("incomplete-code");
  }
  const symbolsInCodeOrder: number[] = [];
  for (let len = 1; len <= 15; len++) {
    lengths.forEach((l, sym) => {
      if (l === len) symbolsInCodeOrder.push(sym);
    });
  }
  return { countOfLength, symbolsInCodeOrder };
}

/** One-bit-at-a-time reader over the whole input, LSB first (RFC 1951 §3.1.1). */
function bitReader(data: Uint8Array, start: number) {
  let bytePos = start;
  let bitPos = 0;
  const bit = (): number => {
    if (bytePos >= data.length) fail("truncated");
    const b = (data[bytePos] >> bitPos) & 1;
    if (++bitPos === 8) {
      bitPos = 0;
      bytePos++;
    }
    return b;
  };
  return {
    /** Reads an `n`-bit number, least significant bit first. */
    bits(n: number): number {
      let v = 0;
      for (let i = 0; i < n; i++) v |= bit() << i;
      return v;
    },
    /**
     * Decodes one symbol: Huffman codes are packed most significant bit first. Reading
     * stops as soon as the bits read cannot begin any code of the table.
     */
    symbol(code: CanonicalCode): number {
      let value = 0, firstOfLength = 0, index = 0;
      let maxLen = 15;
      while (maxLen > 0 && code.countOfLength[maxLen] === 0) maxLen--;
      for (let len = 1; len <= maxLen; len++) {
        value |= bit();
        const count = code.countOfLength[len];
        if (value - firstOfLength < count) {
          return code.symbolsInCodeOrder[index + value - firstOfLength];
        }
        index += count;
        firstOfLength = (firstOfLength + count) << 1;
        value <<= 1;
      }
      return fail("invalid-symbol");
    },
    /** Skips to the next byte boundary. */
    align(): void {
      if (bitPos !== 0) {
        bitPos = 0;
        bytePos++;
      }
    },
    /** Reads one whole byte (only valid when aligned). */
    byte(): number {
      if (bytePos >= data.length) fail("truncated");
      return data[bytePos++];
    },
    /** The position of the next unread byte (only meaningful when aligned). */
    position: (): number => bytePos,
  };
}

type BitReader = ReturnType<typeof bitReader>;

/** Reads the code lengths of a dynamic block (RFC 1951 §3.2.7) and builds both codes. */
function readDynamicCodes(r: BitReader): { lit: CanonicalCode; dist: CanonicalCode } {
  const hlit = r.bits(5) + 257;
  const hdist = r.bits(5) + 1;
  const hclen = r.bits(4) + 4;
  if (hlit > 286 || hdist > 30) fail("too-many-codes");
  const clLengths = new Array<number>(19).fill(0);
  for (let i = 0; i < hclen; i++) clLengths[codeLengthOrder[i]] = r.bits(3);
  const clCode = canonicalCode(clLengths, false);
  const lengths: number[] = [];
  while (lengths.length < hlit + hdist) {
    const sym = r.symbol(clCode);
    if (sym < 16) {
      lengths.push(sym);
      continue;
    }
    let value = 0, repeat: number;
    if (sym === 16) {
      if (lengths.length === 0) fail("bad-code-lengths");
      value = lengths[lengths.length - 1];
      repeat = 3 + r.bits(2);
    } else {
      repeat = sym === 17 ? 3 + r.bits(3) : 11 + r.bits(7);
    }
    if (lengths.length + repeat > hlit + hdist) fail("bad-code-lengths");
    for (let i = 0; i < repeat; i++) lengths.push(value);
  }
  if (lengths[256] === 0) fail("missing-end-of-block");
  const lit = canonicalCode(lengths.slice(0, hlit), true);
  const dist = canonicalCode(lengths.slice(hlit), true);
  return { lit, dist };
}

/**
 * Decodes raw deflate data starting at byte `start`. Returns the output and the first byte
 * after the final block.
 */
function inflateBlocks(data: Uint8Array, start: number): { out: Uint8Array; end: number } {
  const r = bitReader(data, start);
  const out: number[] = [];
  const fixedLit = canonicalCode(fixedLiteralLengths(), false);
  const fixedDist = canonicalCode(new Array<number>(32).fill(5), false);
  let final = 0;
  while (!final) {
    final = r.bits(1);
    const type = r.bits(2);
    if (type === 0) {
      r.align();
      const len = r.byte() | (r.byte() << 8);
      const nlen = r.byte() | (r.byte() << 8);
      if ((len ^ 0xffff) !== nlen) fail("stored-length-mismatch");
      for (let i = 0; i < len; i++) out.push(r.byte());
      continue;
    }
    if (type === 3) fail("bad-block-type");
    const { lit, dist } = type === 1 ? { lit: fixedLit, dist: fixedDist } : readDynamicCodes(r);
    for (;;) {
      const sym = r.symbol(lit);
      if (sym < 256) {
        out.push(sym);
        continue;
      }
      if (sym === 256) break;
      if (sym > 285) fail("invalid-symbol");
      const lc = lengthCodes[sym - 257];
      const length = lc.base + r.bits(lc.extra);
      const dsym = r.symbol(dist);
      if (dsym > 29) fail("invalid-symbol");
      const dc = distanceCodes[dsym];
      const distance = dc.base + r.bits(dc.extra);
      if (distance > out.length) fail("distance-too-far");
      for (let i = 0; i < length; i++) out.push(out[out.length - distance]);
    }
  }
  r.align();
  return { out: Uint8Array.from(out), end: r.position() };
}

/** Reads a little- or big-endian 32-bit number at `pos`, failing as truncated past the end. */
function word32(data: Uint8Array, pos: number, bigEndian: boolean): number {
  if (pos + 4 > data.length) fail("truncated");
  const b = data.subarray(pos, pos + 4);
  const v = bigEndian
    ? (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
    : b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24);
  return v >>> 0;
}

/** RFC 1950: CMF/FLG header, deflate data, big-endian Adler-32. */
function decodeZlib(data: Uint8Array): { out: Uint8Array; end: number } {
  if (data.length < 2) fail("truncated");
  const cmf = data[0], flg = data[1];
  if ((cmf & 15) !== 8 || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 !== 0) fail("bad-header");
  if (flg & 0x20) fail("preset-dictionary");
  const { out, end } = inflateBlocks(data, 2);
  if (word32(data, end, true) !== adler32Reference(out)) fail("checksum-mismatch");
  return { out, end: end + 4 };
}

/** RFC 1952: one gzip member starting at `start`; fields are checked as soon as read. */
function decodeGzipMember(data: Uint8Array, start: number): { out: Uint8Array; end: number } {
  let pos = start;
  const byte = (): number => {
    if (pos >= data.length) fail("truncated");
    return data[pos++];
  };
  if (byte() !== 0x1f || byte() !== 0x8b || byte() !== 8) fail("bad-header");
  const flags = byte();
  if (flags & 0xe0) fail("bad-header");
  for (let i = 0; i < 6; i++) byte(); // MTIME, XFL, OS
  if (flags & 4) {
    let xlen = byte();
    xlen |= byte() << 8;
    for (let i = 0; i < xlen; i++) byte();
  }
  for (const bit of [8, 16]) {
    if (flags & bit) { while (byte() !== 0); }
  }
  if (flags & 2) {
    const expected = crc32Reference(data.subarray(start, pos)) & 0xffff;
    if ((byte() | (byte() << 8)) !== expected) fail("checksum-mismatch");
  }
  const { out, end } = inflateBlocks(data, pos);
  if (word32(data, end, false) !== crc32Reference(out)) fail("checksum-mismatch");
  if (word32(data, end + 4, false) !== out.length % 2 ** 32) fail("length-mismatch");
  return { out, end: end + 8 };
}

/**
 * gzip input may hold several members; they decode to the concatenation of their contents.
 * After a member, a zero byte or the end of input ends the stream (trailing zero padding is
 * ignored); anything else must be another member.
 */
function decodeGzip(data: Uint8Array): { out: Uint8Array; end: number } {
  const parts: Uint8Array[] = [];
  let pos = 0;
  do {
    const m = decodeGzipMember(data, pos);
    parts.push(m.out);
    pos = m.end;
  } while (pos < data.length && data[pos] !== 0);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { out, end: pos };
}

/**
 * The meaning of a compressed stream: its decoded bytes and how many input bytes it spans
 * (bytes after the end of a raw or zlib stream are not part of it), or why it is invalid.
 * Input that ends before the stream does is `"truncated"`.
 */
export function referenceDecode(data: Uint8Array, format: ZipFormat): ReferenceResult {
  try {
    const { out, end } = format === "deflate"
      ? inflateBlocks(data, 0)
      : format === "zlib"
      ? decodeZlib(data)
      : decodeGzip(data);
    return { ok: out, consumed: end };
  } catch (e) {
    if (e instanceof StreamError) return { err: e.code };
    throw e;
  }
}
