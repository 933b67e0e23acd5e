/**
 * Fuzzing the DEFLATE core, and the deterministic corpora the ZIP tests and benchmarks use.
 *
 * `runZipFuzz(seed, runs)` feeds mutated valid streams (bit flips, byte overwrites,
 * truncations, insertions, deletions) and random bytes to the decompressor in random input
 * chunks with a bounded output space, and checks: no untyped throw, no hang (every call
 * makes progress or ends), never more output than the space given, an error wherever
 * node:zlib reports one, the same bytes wherever both succeed, and agreement with the
 * specification's reference decoder.
 *
 * @module
 */

import zlib from "node:zlib";
import { referenceDecode, type ZipFormat } from "../spec/zip.ts";
import { compress, DecompressStream, type ZipError } from "../impl/zip/mod.ts";
import { prng } from "../impl/sched.ts";

const vocabulary = (
  "the of and to in is that it was for on are as with his they at be this have from or " +
  "one had by word but not what all were we when your can said there use an each which she " +
  "do how their if will up other about out many then them these so some her would make like " +
  "queue device memory kernel page table domain group container mapping interrupt doorbell " +
  "compress stream window buffer engine request status completion submission accelerator"
).split(" ");

/**
 * Natural-looking text of `size` bytes: words drawn with a skewed (Zipf-like) distribution,
 * sentences, paragraphs and occasional numbers and markup, from a seeded PRNG.
 */
export function textCorpus(seed: number, size: number): Uint8Array {
  const rnd = prng(seed);
  const parts: string[] = [];
  let length = 0, sentence = 0;
  while (length < size) {
    let w = vocabulary[Math.floor(rnd() * rnd() * vocabulary.length)];
    if (sentence === 0) w = w[0].toUpperCase() + w.slice(1);
    if (rnd() < 0.02) w = String(Math.floor(rnd() * 100000));
    if (rnd() < 0.01) w = `<em>${w}</em>`;
    const end = ++sentence > 6 && rnd() < 0.15;
    const piece = w + (end ? (rnd() < 0.2 ? ".\n\n" : ". ") : rnd() < 0.05 ? ", " : " ");
    if (end) sentence = 0;
    parts.push(piece);
    length += piece.length;
  }
  return new TextEncoder().encode(parts.join("").slice(0, size));
}

/** JSON records of `size` bytes (ids, names, flags, nested arrays) from a seeded PRNG. */
export function jsonCorpus(seed: number, size: number): Uint8Array {
  const rnd = prng(seed);
  const pick = () => vocabulary[Math.floor(rnd() * vocabulary.length)];
  const lines: string[] = ["["];
  let length = 1;
  for (let id = 0; length < size; id++) {
    const rec = {
      id,
      name: `${pick()}-${pick()}`,
      active: rnd() < 0.5,
      score: Math.round(rnd() * 1e6) / 100,
      tags: Array.from({ length: Math.floor(rnd() * 4) }, pick),
      owner: { uid: Math.floor(rnd() * 65536), group: pick() },
    };
    const line = `  ${JSON.stringify(rec)},`;
    lines.push(line);
    length += line.length + 1;
  }
  return new TextEncoder().encode(lines.join("\n").slice(0, size));
}

/** One fuzz failure: what was fed and what went wrong. */
export interface ZipFuzzFailure {
  /** The case number (replay with the same seed and at least this many runs). */
  readonly run: number;
  /** The framing the input was decoded as. */
  readonly format: ZipFormat;
  /** What went wrong. */
  readonly message: string;
  /** The input bytes, hex. */
  readonly inputHex: string;
}

/** The outcome of {@link runZipFuzz}. */
export interface ZipFuzzReport {
  /** The seed used. */
  readonly seed: number;
  /** Number of cases run. */
  readonly runs: number;
  /** Cases where our decoder and node:zlib both reported an error. */
  readonly bothRejected: number;
  /** Violations found (empty when all is well). */
  readonly failures: ZipFuzzFailure[];
}

const formats: ZipFormat[] = ["deflate", "zlib", "gzip"];

/** Valid streams to mutate: ours and node:zlib's, every framing, a few levels and data. */
function baseStreams(): { format: ZipFormat; data: Uint8Array }[] {
  const inputs = [
    textCorpus(1, 3000),
    jsonCorpus(2, 1500),
    new Uint8Array(600).fill(97),
    Uint8Array.from({ length: 300 }, (_, i) => (i * 7919) & 0xff),
  ];
  const out: { format: ZipFormat; data: Uint8Array }[] = [];
  for (const format of formats) {
    for (const input of inputs) {
      for (const level of [0, 1, 6, 9]) out.push({ format, data: compress(input, format, level) });
      const node = format === "deflate"
        ? zlib.deflateRawSync(input)
        : format === "zlib"
        ? zlib.deflateSync(input, { strategy: zlib.constants.Z_FIXED })
        : zlib.gzipSync(input, { level: 9 });
      out.push({ format, data: new Uint8Array(node) });
    }
  }
  return out;
}

/** Applies 1-4 random mutations to a copy of `data`. */
function mutate(data: Uint8Array, rnd: () => number): Uint8Array {
  let d: Uint8Array = data.slice();
  const count = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < count && d.length > 0; k++) {
    const at = Math.floor(rnd() * d.length);
    const kind = Math.floor(rnd() * 5);
    if (kind === 0) d[at] ^= 1 << Math.floor(rnd() * 8);
    else if (kind === 1) d[at] = Math.floor(rnd() * 256);
    else if (kind === 2) d = d.slice(0, at);
    else if (kind === 3) {
      const ins = Uint8Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => rnd() * 256);
      d = concat([d.subarray(0, at), ins, d.subarray(at)]);
    } else d = concat([d.subarray(0, at), d.subarray(at + 1 + Math.floor(rnd() * 8))]);
  }
  return d;
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** node:zlib's decoding of a whole `format` stream (throws where node:zlib reports an error). */
export function nodeInflate(
  data: Uint8Array,
  format: ZipFormat,
  opts: zlib.ZlibOptions = {},
): Uint8Array {
  const out = format === "deflate"
    ? zlib.inflateRawSync(data, opts)
    : format === "zlib"
    ? zlib.inflateSync(data, opts)
    : zlib.gunzipSync(data, opts);
  return new Uint8Array(out);
}

/** node:zlib's verdict on a whole input: the bytes, or undefined when it reports an error. */
function nodeDecode(data: Uint8Array, format: ZipFormat, limit: number): Uint8Array | undefined {
  try {
    return nodeInflate(data, format, { maxOutputLength: limit });
  } catch {
    return undefined;
  }
}

const outputLimit = 1 << 20;

/**
 * Decodes `data` in random input chunks and output spaces, checking the bounded-stream
 * rules; returns the outcome or a violation message.
 */
function decodeInPieces(
  data: Uint8Array,
  format: ZipFormat,
  rnd: () => number,
): { ok: Uint8Array } | { err: ZipError } | { limit: true } | { violation: string } {
  const stream = new DecompressStream(format);
  const parts: Uint8Array[] = [];
  let pos = 0, total = 0;
  for (let calls = 0; calls < 4 * data.length + 4 * outputLimit / 64 + 16; calls++) {
    const end = Math.min(data.length, pos + 1 + Math.floor(rnd() * 64 * (1 + rnd() * 64)));
    const space = Math.min(outputLimit - total, Math.floor(rnd() * 4096 * (1 + rnd() * 16)));
    let r;
    try {
      r = stream.push(data.subarray(pos, end), space, end === data.length);
    } catch (e) {
      return { violation: `untyped throw: ${e}` };
    }
    if (r.produced > space || r.output.length !== r.produced) {
      return { violation: `produced ${r.produced} with ${space} bytes of space` };
    }
    if (r.consumed > end - pos) return { violation: `consumed ${r.consumed} of ${end - pos}` };
    pos += r.consumed;
    total += r.produced;
    parts.push(r.output);
    if (r.error) return { err: r.error };
    if (r.status === 0x13) return { ok: concat(parts) };
    if (total >= outputLimit) return { limit: true };
    if (r.status === 0 && end === data.length) return { violation: "status 0 on final input" };
  }
  return { violation: "no end after the call budget: hang" };
}

/** Runs `runs` fuzz cases from `seed`; see the module documentation for what is checked. */
export function runZipFuzz(seed: number, runs: number): ZipFuzzReport {
  const rnd = prng(seed);
  const bases = baseStreams();
  const failures: ZipFuzzFailure[] = [];
  let bothRejected = 0;
  for (let run = 0; run < runs; run++) {
    let format: ZipFormat, data: Uint8Array;
    if (rnd() < 0.1) {
      format = formats[Math.floor(rnd() * 3)];
      data = Uint8Array.from({ length: Math.floor(rnd() * 200) }, () => rnd() * 256);
    } else {
      const base = bases[Math.floor(rnd() * bases.length)];
      format = base.format;
      data = mutate(base.data, rnd);
    }
    const fail = (message: string) =>
      failures.push({ run, format, message, inputHex: toHex(data) });
    const ours = decodeInPieces(data, format, rnd);
    if ("violation" in ours) {
      fail(ours.violation);
      continue;
    }
    if ("limit" in ours) continue;
    const node = nodeDecode(data, format, outputLimit);
    if (node === undefined && "ok" in ours) fail("node:zlib rejects, we accept");
    if (node !== undefined && "ok" in ours && !equalBytes(node, ours.ok)) {
      fail("different bytes from node:zlib");
    }
    if (node === undefined && "err" in ours) bothRejected++;
    if (data.length <= 4096) {
      const ref = referenceDecode(data, format);
      if ("ok" in ref !== "ok" in ours) {
        fail(
          `reference says ${"ok" in ref ? "ok" : ref.err}, we say ${
            "ok" in ours ? "ok" : ours.err.code
          }`,
        );
      } else if ("ok" in ref && "ok" in ours && !equalBytes(ref.ok, ours.ok)) {
        fail("different bytes from the reference decoder");
      } else if ("err" in ref && "err" in ours && ref.err !== ours.err.code) {
        fail(`reference error ${ref.err}, ours ${ours.err.code}`);
      }
    }
  }
  return { seed, runs, bothRejected, failures };
}

/** Byte-wise equality. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function toHex(data: Uint8Array): string {
  return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
}
