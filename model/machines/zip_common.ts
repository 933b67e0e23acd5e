/**
 * What the ZIP machines share: a small deterministic corpus (empty, one byte, random, text,
 * repetitive, incompressible near 64 KiB, over 64 KiB), its zlib and gzip compressions by
 * node:zlib (some truncated or corrupted), and how a compressed output is observed: by the
 * length and CRC-32 of what it decodes to.
 *
 * @module
 */
import { deflateSync, gzipSync } from "node:zlib";
import { referenceDecode, type ZipFormat } from "../../spec/zip.ts";
import { type ZipContent, zipContent } from "../../spec/zipcrypto.ts";
import { prng } from "../../impl/sched.ts";
import { textCorpus } from "../zip_fuzz.ts";

/** Lower-case hex of some bytes. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomBytes(seed: number, n: number): Uint8Array {
  const next = prng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
}

/** Sources: empty, one byte, random, text, repetitive, incompressible near 64 KiB, > 64 KiB. */
export const ZIP_SOURCES: readonly Uint8Array[] = [
  new Uint8Array(0),
  new Uint8Array([0x61]),
  randomBytes(1, 100),
  textCorpus(2, 3000),
  new TextEncoder().encode("abcd".repeat(5000)),
  randomBytes(3, 65000),
  textCorpus(4, 70000),
];

/** Compressed sources: zlib and gzip of the small ones, one decoding past 64 KiB, damage. */
export const ZIP_STREAMS: readonly string[] = (() => {
  const out: string[] = [];
  for (
    const s of [ZIP_SOURCES[0], ZIP_SOURCES[2], ZIP_SOURCES[3], ZIP_SOURCES[4], ZIP_SOURCES[6]]
  ) {
    for (const c of [deflateSync(s), gzipSync(s)]) out.push(hex(new Uint8Array(c)));
  }
  const z = new Uint8Array(deflateSync(ZIP_SOURCES[3]));
  out.push(hex(z.subarray(0, z.length - 5)));
  const broken = z.slice();
  broken[Math.floor(broken.length / 2)] ^= 0x55;
  out.push(hex(broken), "deadbeef");
  return out;
})();

/**
 * The content a compressed output decodes to in `format`; length -1 when it is not exactly one
 * valid stream.
 */
export function decodedContent(bytes: Uint8Array, format: ZipFormat): ZipContent {
  const r = referenceDecode(bytes, format);
  if ("err" in r || r.consumed !== bytes.length) return { length: -1, crc32: -1 };
  return zipContent(r.ok);
}
