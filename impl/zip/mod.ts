/**
 * The DEFLATE core (RFC 1951) with zlib (RFC 1950) and gzip (RFC 1952) framing: one-shot
 * helpers and the resumable, bounded stream contexts the ZIP engine runs SQEs on.
 *
 * @module
 */

import type { ZipFormat } from "../../spec/zip.ts";
import { CompressStream } from "./compress.ts";
import { DecompressStream } from "./decompress.ts";
import type { ZipError } from "./errors.ts";

export { CompressStream, type FlushMode } from "./compress.ts";
export { type DecompressOptions, DecompressStream } from "./decompress.ts";
export { ZipError, type ZipErrorCode } from "./errors.ts";
export type { StreamResult } from "./stream_result.ts";
export { adler32, crc32 } from "./checksum.ts";
export type { ZipFormat } from "../../spec/zip.ts";

/** Compresses `data` into one complete `format` stream at `level` (0-9, default 6). */
export function compress(data: Uint8Array, format: ZipFormat, level = 6): Uint8Array {
  return new CompressStream(format, level).push(data, Infinity, "finish").output;
}

/**
 * Decompresses one complete `format` stream. gzip, as `gzip -d` reads a file: all its
 * members, then only zero bytes (anything else is a `bad-header` error); zlib and raw
 * deflate, as zlib does: bytes after the stream are not read. Throws {@link ZipError} when
 * the stream is invalid or truncated. Output is unbounded: use {@link DecompressStream} to
 * bound it.
 */
export function decompress(data: Uint8Array, format: ZipFormat): Uint8Array {
  const r = wholeStream(format).push(data, Infinity, true);
  if (r.error) throw r.error;
  return r.output;
}

/**
 * Like {@link decompress} but returns the typed error instead of throwing it; on success
 * also the input bytes used (gzip: with the trailing zeros) and how many of them were
 * trailing zeros (a warning for gzip: they are accepted, as `gzip -d` accepts them).
 */
export function tryDecompress(
  data: Uint8Array,
  format: ZipFormat,
): { ok: Uint8Array; consumed: number; trailingZeros: number } | { err: ZipError } {
  const s = wholeStream(format);
  const r = s.push(data, Infinity, true);
  return r.error
    ? { err: r.error }
    : { ok: r.output, consumed: r.consumed, trailingZeros: s.trailingZeros };
}

function wholeStream(format: ZipFormat): DecompressStream {
  return new DecompressStream(format, { trailing: format === "gzip" ? "zeros" : "stop" });
}
