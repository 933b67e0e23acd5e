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
 * `runCompressFuzz(seed, runs)` compresses generated inputs (random, incompressible, text,
 * runs, repeats, copies from far back, and mixtures of them) at every level and framing, in
 * random input chunks with random sync/full flush points (on small inputs sometimes after
 * every byte) and random output budgets (down to 0 and 1 byte per call), and checks each call
 * against the SQE result rules, the whole output against node:zlib and our decoder, the
 * output at each flush point as a decodable prefix, the output after each full flush as a
 * stream of its own, and that the bytes equal those of the same flush points fed in one call
 * each with unlimited space (without flushes: the one-shot `compress`).
 *
 * @module
 */

import zlib from "node:zlib";
import {
  compressStatusFor,
  referenceDecode,
  sqeResultViolations,
  type ZipFormat,
  ZipStatus,
} from "../spec/zip.ts";
import {
  compress,
  CompressStream,
  DecompressStream,
  type FlushMode,
  type ZipError,
} from "../impl/zip/mod.ts";
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

/** One compressor fuzz failure: the case (replay with {@link compressFuzzCase}) and the fault. */
export interface CompressFuzzFailure {
  /** The case number. */
  readonly run: number;
  /** The framing compressed to. */
  readonly format: ZipFormat;
  /** What went wrong, with the case's level, size, flush points and budgets. */
  readonly message: string;
  /** The input bytes, hex (empty above 64 KiB: regenerate with the seed and case number). */
  readonly inputHex: string;
}

/** The outcome of {@link runCompressFuzz}. */
export interface CompressFuzzReport {
  /** The seed used. */
  readonly seed: number;
  /** Number of cases run. */
  readonly runs: number;
  /** Cases with at least one sync or full flush. */
  readonly flushed: number;
  /** Violations found (empty when all is well). */
  readonly failures: CompressFuzzFailure[];
}

/** One chunk of a compression plan: input up to `end`, pushed with `mode`. */
interface PlanStep {
  readonly end: number;
  readonly mode: FlushMode;
}

/** A compressor fuzz case: what to compress, how, and with which output budgets. */
interface CompressCase {
  readonly format: ZipFormat;
  readonly level: number;
  readonly input: Uint8Array;
  /** Chunks in order; the last one finishes the stream at `input.length`. */
  readonly plan: readonly PlanStep[];
  /** The output budget of the next call. */
  readonly budget: () => number;
  /** How budgets are drawn, for messages. */
  readonly budgetKind: string;
  /** Finite budgets go through `pushInto` with a reused buffer instead of `push`. */
  readonly into: boolean;
}

/**
 * A generated input of `size` bytes: segments of random bytes, bytes from a 2-4 symbol
 * alphabet, text, runs of one byte, a short pattern repeated, and copies (slightly altered)
 * of earlier input, some from beyond the 32 KiB window.
 */
function fuzzInput(rnd: () => number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  const byte = () => Math.floor(rnd() * 256);
  let n = 0;
  while (n < size) {
    const len = Math.min(size - n, 1 + Math.floor(rnd() * rnd() * Math.min(size, 40_000)));
    const seg = out.subarray(n, n + len);
    switch (Math.floor(rnd() * 6)) {
      case 0:
        for (let i = 0; i < len; i++) seg[i] = byte();
        break;
      case 1: {
        const base = byte(), symbols = 2 + Math.floor(rnd() * 3);
        for (let i = 0; i < len; i++) seg[i] = base + Math.floor(rnd() * symbols);
        break;
      }
      case 2:
        seg.set(textCorpus(Math.floor(rnd() * 1e9), len));
        break;
      case 3:
        seg.fill(byte());
        break;
      case 4: {
        const period = 1 + Math.floor(rnd() * 40);
        for (let i = 0; i < len; i++) seg[i] = i < period ? byte() : seg[i - period];
        break;
      }
      default: {
        if (n === 0) {
          for (let i = 0; i < len; i++) seg[i] = byte();
          break;
        }
        const from = Math.floor(rnd() * n);
        for (let i = 0; i < len; i++) seg[i] = out[from + (i % (n - from))];
        for (let k = Math.floor(rnd() * 4); k > 0; k--) seg[Math.floor(rnd() * len)] = byte();
      }
    }
    n += len;
  }
  return out;
}

/** Draws a case's input size: mostly small, sometimes beyond a block or the window buffer. */
function fuzzSize(rnd: () => number): number {
  const r = rnd();
  if (r < 0.35) return Math.floor(rnd() * 300);
  if (r < 0.85) return Math.floor(rnd() * 20_000);
  if (r < 0.97) return Math.floor(rnd() * 140_000);
  return 280_000 + Math.floor(rnd() * 160_000);
}

/** The flush plan: a flush (or a plain chunk end) after every byte, or at random points. */
function fuzzPlan(rnd: () => number, size: number): PlanStep[] {
  const plan: PlanStep[] = [];
  const pick = (): FlushMode => {
    const r = rnd();
    return r < 0.4 ? "none" : r < 0.7 ? "sync" : "full";
  };
  if (size <= 300 && rnd() < 0.4) {
    const only: FlushMode | undefined = rnd() < 0.5 ? undefined : rnd() < 0.5 ? "sync" : "full";
    for (let end = 0; end < size; end++) plan.push({ end, mode: only ?? pick() });
  } else {
    const ends = Array.from({ length: Math.floor(rnd() * 10) }, () => Math.floor(rnd() * size));
    for (const end of ends.sort((a, b) => a - b)) plan.push({ end, mode: pick() });
  }
  plan.push({ end: size, mode: "finish" });
  return plan;
}

/** The output budgets of a case: unlimited, tiny (0-3 bytes), small, or mixed per call. */
function fuzzBudget(rnd: () => number, size: number): { budget: () => number; kind: string } {
  const r = rnd();
  if (r < 0.25) return { budget: () => Infinity, kind: "unlimited" };
  if (r < 0.5 && size <= 20_000) {
    return { budget: () => (rnd() < 0.05 ? 0 : 1 + Math.floor(rnd() * 3)), kind: "tiny" };
  }
  if (r < 0.75) return { budget: () => 1 + Math.floor(rnd() * 300), kind: "small" };
  const budget = () => (rnd() < 0.05 ? 0 : Math.floor(2 ** (rnd() * 17)));
  return { budget, kind: "mixed" };
}

/** The case numbered `run` of `seed`; it has its own PRNG, so it replays on its own. */
function compressCase(seed: number, run: number): CompressCase {
  const rnd = prng((seed ^ Math.imul(run + 1, 0x9e3779b1)) >>> 0);
  const format = formats[Math.floor(rnd() * 3)];
  const level = Math.floor(rnd() * 10);
  const size = fuzzSize(rnd);
  const input = fuzzInput(rnd, size);
  const plan = fuzzPlan(rnd, size);
  const { budget, kind } = fuzzBudget(rnd, size);
  return { format, level, input, plan, budget, budgetKind: kind, into: rnd() < 0.5 };
}

/** The same flush points, each fed in one call with unlimited output space. */
function referenceCompress(c: CompressCase): Uint8Array {
  const s = new CompressStream(c.format, c.level);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const { end, mode } of c.plan) {
    if (mode === "none") continue;
    out.push(s.push(c.input.subarray(from, end), Infinity, mode).output);
    from = end;
  }
  return concat(out);
}

/** Runs a case as planned; returns the output, the output length at each flush, or a fault. */
function streamCompress(
  c: CompressCase,
): { out: Uint8Array; flushes: { end: number; at: number; mode: FlushMode }[] } | string {
  const s = new CompressStream(c.format, c.level);
  const out: Uint8Array[] = [];
  const flushes: { end: number; at: number; mode: FlushMode }[] = [];
  let from = 0, total = 0;
  let calls = 100 + 2 * c.input.length + 32 * c.plan.length;
  const dest = new ArrayBuffer(1 << 17);
  for (const { end, mode } of c.plan) {
    for (;;) {
      const space = c.budget();
      const offered = end - from;
      const chunk = c.input.subarray(from, end);
      const r = c.into && space !== Infinity
        ? s.pushInto(chunk, new Uint8Array(dest, 0, space), mode)
        : s.push(chunk, space, mode);
      const rules = sqeResultViolations({ inputLength: offered, destAvailOut: space }, r);
      if (rules.length > 0) return `call at input ${from}: ${rules.join("; ")}`;
      if (r.output.length !== r.produced) return `output length ${r.output.length} ≠ produced`;
      from += r.consumed;
      total += r.produced;
      out.push(r.output.slice());
      if (space > 0 && --calls === 0) return "no end after the call budget: hang";
      if (r.status === ZipStatus.destInsufficient) continue;
      if (from !== end) return `status 0x${r.status.toString(16)} with ${end - from} bytes left`;
      if (mode === "finish") {
        const want = compressStatusFor(c.input.length, total);
        if (r.status !== want) return `final status 0x${r.status.toString(16)}, want 0x${want}`;
        const after = s.push(Uint8Array.of(1), 100, "finish");
        if (after.consumed !== 0 || after.produced !== 0) return "a finished stream went on";
      } else if (r.status !== ZipStatus.ok) return `status 0x${r.status.toString(16)}`;
      if (mode === "sync" || mode === "full") flushes.push({ end, at: total, mode });
      break;
    }
  }
  return { out: concat(out), flushes };
}

/** Every check of one case; returns the first violation, or undefined. */
function checkCompressCase(c: CompressCase): string | undefined {
  const streamed = streamCompress(c);
  if (typeof streamed === "string") return streamed;
  const { out, flushes } = streamed;
  const { format, input } = c;
  let node: Uint8Array;
  try {
    node = nodeInflate(out, format);
  } catch (e) {
    return `node:zlib rejects the output: ${e}`;
  }
  if (!equalBytes(node, input)) return "node:zlib inflates the output to other bytes";
  const ours = new DecompressStream(format).push(out, Infinity, true);
  if (ours.error || !equalBytes(ours.output, input)) return "our decoder disagrees";
  const partial = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  const trailer = format === "zlib" ? 4 : format === "gzip" ? 8 : 0;
  for (const { end, at, mode } of flushes) {
    let prefix: Uint8Array;
    try {
      prefix = nodeInflate(out.subarray(0, at), format, partial);
    } catch (e) {
      return `the output up to the ${mode} flush at ${end} is not a valid prefix: ${e}`;
    }
    if (!equalBytes(prefix, input.subarray(0, end))) {
      return `the output up to the ${mode} flush at ${end} decodes to other bytes`;
    }
    if (mode !== "full") continue;
    const rest = out.subarray(at, out.length - trailer);
    let alone: Uint8Array;
    try {
      alone = nodeInflate(rest, "deflate");
    } catch (e) {
      return `the output after the full flush at ${end} does not decode on its own: ${e}`;
    }
    if (!equalBytes(alone, input.subarray(end))) {
      return `the output after the full flush at ${end} decodes to other bytes on its own`;
    }
  }
  const whole = flushes.length === 0 ? compress(input, format, c.level) : referenceCompress(c);
  if (!equalBytes(out, whole)) {
    return flushes.length === 0
      ? "chunked output differs from the one-shot output"
      : "output differs from the same flushes fed in one call each";
  }
  return undefined;
}

/** Describes a case for a failure message. */
function describeCase(c: CompressCase): string {
  const points = c.plan.slice(0, -1).map(({ end, mode }) => `${end}${mode[0]}`);
  const shown = points.length > 12 ? [...points.slice(0, 12), "…"] : points;
  return `level ${c.level}, ${c.input.length} bytes, chunks [${shown.join(" ")}], ` +
    `${c.budgetKind} output budgets${c.into ? " (pushInto)" : ""}`;
}

/**
 * Checks compressor case `run` of `seed` alone (as {@link runCompressFuzz} ran it); returns
 * the violation message, or undefined when the case passes.
 */
export function compressFuzzCase(seed: number, run: number): string | undefined {
  const c = compressCase(seed, run);
  const fault = checkCompressCase(c);
  return fault === undefined ? undefined : `${fault} (${c.format} ${describeCase(c)})`;
}

/** Runs `runs` compressor fuzz cases from `seed`; see the module documentation. */
export function runCompressFuzz(seed: number, runs: number): CompressFuzzReport {
  const failures: CompressFuzzFailure[] = [];
  let flushed = 0;
  for (let run = 0; run < runs; run++) {
    const c = compressCase(seed, run);
    if (c.plan.some(({ mode }) => mode === "sync" || mode === "full")) flushed++;
    const fault = checkCompressCase(c);
    if (fault === undefined) continue;
    failures.push({
      run,
      format: c.format,
      message: `${fault} (${describeCase(c)})`,
      inputHex: c.input.length <= 65536 ? toHex(c.input) : "",
    });
  }
  return { seed, runs, flushed, failures };
}
