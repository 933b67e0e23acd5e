/**
 * `npm run zip -- [-d] [-g] [-1..-9] [--quirk NAME]... [--] < in > out` — compresses (or with
 * `-d` decompresses) stdin to stdout through the whole simulated stack, like the seed's
 * test_hisi_zip: a wd queue, shared buffers, ZIP requests through the user QM driver, the QM
 * device running the ZIP engine with DMA through the IOMMU. Any input size streams in
 * stateful requests of 1 MiB (impl/wd/zip_sample.ts `zipSample`), so memory stays bounded.
 * zlib by default, gzip with `-g`; `-d` reads either, detected from the header. The output is
 * one real zlib stream / gzip member (`gzip -d`, `zlib.inflateSync` accept it), written as
 * each request completes.
 *
 * Exit 0 on success, 1 when the data is bad or the output cannot be written (one line saying
 * what is wrong; output already written is then incomplete), 2 for bad usage.
 *
 * @module
 */
import { ZipAlgType } from "../../impl/device/zip_engine.ts";
import {
  requestSampleQueue,
  SAMPLE_CHUNK,
  SAMPLE_QUIRKS,
  SampleError,
  type SampleSummary,
  zipMachine,
  zipSample,
} from "../../impl/wd/zip_sample.ts";
import {
  parseArgs,
  printLines,
  quirkNames,
  runCli,
  RunError,
  stdoutWriter,
  UsageError,
  writeAll,
  type Writer,
} from "./common.ts";
import { Platform } from "../../impl/platform.ts";

const USAGE = `usage: npm run zip -- [-d] [-g] [-1..-9] [--quirk NAME]... [--] < in > out
  -d, --decompress  decompress a zlib or gzip stream (detected from its header)
  -g, --gzip        compress to gzip (default: zlib)
  -1 .. -9          compression level (default 6)
  -c, --stdout      accepted for gzip's sake: the output always goes to stdout
  -h, --help        this text
  --quirk NAME      switch a seed defect on (sampleZlibHeaderOnly)`;

/** Single-letter flags and the long options they stand for. */
const SHORT: Readonly<Record<string, string>> = {
  d: "--decompress",
  g: "--gzip",
  c: "--stdout",
  h: "--help",
};

/** Input read before a progress line appears (on a terminal). */
const PROGRESS_FROM = 4 * 1024 * 1024;

/** Expands gzip-style short flags (`-dg`, `-9`) into long options, up to `--`. */
function expandShort(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (const [i, arg] of argv.entries()) {
    if (arg === "--") return [...out, ...argv.slice(i)];
    if (!/^-[^-]/.test(arg)) {
      out.push(arg);
      continue;
    }
    for (const c of arg.slice(1)) {
      if (/[1-9]/.test(c)) out.push("--level", c);
      else if (SHORT[c]) out.push(SHORT[c]);
      else throw new UsageError(`unknown option -${c}`);
    }
  }
  return out;
}

/** The stream format a header starts with: gzip `1f 8b`, zlib CM 8 with a valid FCHECK. */
function detectFormat(head: Uint8Array): "zlib" | "gzip" | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if ((head[0] & 0x0f) === 8 && ((head[0] << 8) | head[1]) % 31 === 0) return "zlib";
  return undefined;
}

/**
 * What `reader` gives until its end, in pieces of {@link SAMPLE_CHUNK} bytes (the last one
 * shorter), filled by as many reads as it takes into one reused buffer: a request's worth of
 * input per piece, without a buffer per pipe read (`Deno.stdin.readable` allocates one for
 * every 64 KiB). A piece is valid until the next one is asked for (`zipSample` copies each
 * before; {@link peek} copies what it keeps).
 */
async function* pieces(
  reader: { read(p: Uint8Array): Promise<number | null> },
): AsyncGenerator<Uint8Array> {
  const piece = new Uint8Array(SAMPLE_CHUNK);
  for (let eof = false; !eof;) {
    let length = 0;
    while (length < piece.length) {
      const n = await reader.read(piece.subarray(length));
      if (n === null) {
        eof = true;
        break;
      }
      length += n;
    }
    if (length > 0) yield piece.subarray(0, length);
  }
}

/**
 * The first `n` bytes of `input` (fewer if it is shorter) and all of `input` again; the pieces
 * read ahead are copies, so `input` may reuse its buffers.
 */
async function peek(
  input: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; all: AsyncIterable<Uint8Array> }> {
  const it = input[Symbol.asyncIterator]();
  const seen: Uint8Array[] = [];
  let length = 0;
  while (length < n) {
    const r = await it.next();
    if (r.done) break;
    seen.push(r.value.slice());
    length += r.value.length;
  }
  const head = new Uint8Array(Math.min(n, length));
  let at = 0;
  for (const p of seen) {
    if (at >= head.length) break;
    const take = p.subarray(0, head.length - at);
    head.set(take, at);
    at += take.length;
  }
  async function* all() {
    yield* seen;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { head, all: all() };
}

/** A progress line on a terminal (`\r`-updated) once a run has read {@link PROGRESS_FROM}. */
export class Progress {
  #in = 0;
  #out = 0;
  #shownAt = -Infinity;
  readonly #to: Writer | undefined;

  /** A progress line written to `to`, or none when `to` is undefined. */
  constructor(to: Writer | undefined) {
    this.#to = to;
  }

  /** Counts bytes read and written; shows the line at most every 200 ms. */
  async add(inBytes: number, outBytes: number): Promise<void> {
    this.#in += inBytes;
    this.#out += outBytes;
    if (!this.#to || this.#in < PROGRESS_FROM || performance.now() - this.#shownAt < 200) return;
    this.#shownAt = performance.now();
    await this.#show("\r");
  }

  /** Ends the line, with the final counts, if it was shown. */
  async end(): Promise<void> {
    if (this.#shownAt > -Infinity) await this.#show("\r", "\n");
  }

  async #show(before: string, after = ""): Promise<void> {
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    const line = `${before}zip: ${mib(this.#in)} MiB in, ${mib(this.#out)} MiB out${after}`;
    await writeAll(this.#to!, new TextEncoder().encode(line), "stderr");
  }
}

/** Parsed command line. */
interface Options {
  readonly decompress: boolean;
  readonly gzip: boolean;
  readonly level: number | undefined;
  readonly quirks: Record<string, boolean>;
}

function options(argv: readonly string[]): Options | "help" {
  const { flags, positional } = parseArgs(expandShort(argv), {
    decompress: "bool",
    gzip: "bool",
    level: "int",
    stdout: "bool",
    quirk: "list",
    help: "bool",
  });
  if (flags.help) return "help";
  if (positional.length > 0) {
    throw new UsageError(`unexpected argument "${positional[0]}" (zip reads stdin only)`);
  }
  const level = flags.level as number | undefined;
  if (level !== undefined && (level < 1 || level > 9)) {
    throw new UsageError(`--level expects 1..9, got ${level}`);
  }
  const quirks = quirkNames(flags.quirk as string[] | undefined);
  for (const q of quirks) {
    if (!SAMPLE_QUIRKS.includes(q)) {
      throw new UsageError(
        `--quirk ${q}: the zip path does not exercise it (it takes ${SAMPLE_QUIRKS.join(", ")})`,
      );
    }
  }
  return {
    decompress: flags.decompress === true,
    gzip: flags.gzip === true,
    level,
    quirks: Object.fromEntries(quirks.map((q) => [q, true])),
  };
}

async function main(): Promise<number> {
  const opts = options(Deno.args);
  if (opts === "help") {
    await printLines(USAGE);
    return 0;
  }
  const progress = new Progress(Deno.stderr.isTerminal() ? Deno.stderr : undefined);
  async function* counted(input: AsyncIterable<Uint8Array>) {
    for await (const p of input) {
      await progress.add(p.length, 0);
      yield p;
    }
  }
  let input: AsyncIterable<Uint8Array> = counted(pieces(Deno.stdin));
  let format: "zlib" | "gzip" = opts.gzip ? "gzip" : "zlib";
  if (opts.decompress) {
    const { head, all } = await peek(input, 2);
    if (head.length < 2) throw new RunError("stdin: truncated: no zlib or gzip header");
    const detected = detectFormat(head);
    if (!detected) throw new RunError("stdin: bad header: neither a zlib nor a gzip stream");
    [format, input] = [detected, all];
  }
  const machine = await zipMachine(new Platform({ quirks: opts.quirks }), opts.level);
  const algType = opts.decompress ? ZipAlgType.decompress : ZipAlgType.compress;
  const queue = await requestSampleQueue(machine, algType);
  if (typeof queue === "string") throw new Error(`requesting a queue failed: ${queue}`);
  const out = await stdoutWriter();
  let written = 0;
  let summary: SampleSummary;
  try {
    const job = { format, decompress: opts.decompress, quirks: opts.quirks };
    summary = await zipSample(queue, job, input, async (output) => {
      await writeAll(out, output);
      written += output.length;
      await progress.add(0, output.length);
    });
  } catch (e) {
    if (!(e instanceof SampleError)) throw e;
    const partial = written > 0 ? ` (the ${written} bytes written are incomplete)` : "";
    throw new RunError(`stdin: ${e.message}${partial}`);
  } finally {
    await queue.release();
    await progress.end();
  }
  const { trailing, trailingZeros } = summary;
  if (!trailingZeros) {
    throw new RunError(`stdin: ${trailing} bytes of trailing data after the ${format} stream`);
  }
  if (trailing > 0) console.error(`zip: warning: stdin: ${trailing} trailing zero bytes ignored`);
  return 0;
}

if (import.meta.main) await runCli("zip", main);
