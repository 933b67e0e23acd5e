/**
 * The decompression stream context: raw deflate, zlib or gzip (several members allowed),
 * fed in chunks with a bounded output space per call, like the engine's stateful mode.
 *
 * What may follow the stream is set by {@link DecompressOptions.trailing}: by default (the
 * engine's rule, spec/zip.ts) the stream ends where it ends and the rest is not consumed;
 * a gzip stream ends at the end of the input or at a zero byte after a member. Reading a
 * whole file as `gzip -d` does, the rest may only be zero bytes.
 *
 * Statuses (spec/zip.ts): 0x13 when the stream ended, 0x0e when the output space ran out
 * first, 0 when all input was taken and more is expected, an error status otherwise. Errors
 * are sticky: later calls repeat the status without consuming anything.
 *
 * @module
 */

import { type ZipFormat, ZipStatus } from "../../spec/zip.ts";
import { adler32, crc32 } from "./checksum.ts";
import { ZipError } from "./errors.ts";
import { GzipHeaderParser, ZlibHeaderParser } from "./header.ts";
import { Inflater } from "./inflate.ts";
import { OutputSink } from "./sink.ts";
import type { StreamResult } from "./stream_result.ts";

const phase = { header: 0, body: 1, trailer: 2, nextMember: 3, done: 4, failed: 5 } as const;

/** How a {@link DecompressStream} treats input after the end of the stream. */
export interface DecompressOptions {
  /**
   * `"stop"` (default): the stream ends at the end of its last block and trailer (gzip: of
   * its last member, which a zero byte or the end of input marks), and what follows is not
   * consumed: the caller decides about it. `"zeros"`: the input after the stream may only be
   * zero bytes (as `gzip -d` accepts them); they are consumed and counted in
   * {@link DecompressStream.trailingZeros}, and any other byte is a `bad-header` error.
   */
  readonly trailing?: "stop" | "zeros";
}

/** A resumable decompression context for one stream. */
export class DecompressStream {
  private readonly inflater = new Inflater();
  private readonly takeZeros: boolean;
  private zeros = 0;
  private phase: number = phase.header;
  private header: ZlibHeaderParser | GzipHeaderParser | undefined;
  private check = 0;
  private length = 0;
  private readonly trailer = new Uint8Array(8);
  private trailerHave = 0;
  private error: ZipError | undefined;

  /** A context for a stream in `format`. */
  constructor(readonly format: ZipFormat, options: DecompressOptions = {}) {
    this.takeZeros = options.trailing === "zeros";
    this.startMember();
  }

  /**
   * Decodes from `input`, producing at most `destAvailOut` bytes. `final` says no input
   * follows this chunk, so a stream that has not ended is truncated.
   */
  push(input: Uint8Array, destAvailOut: number, final: boolean): StreamResult {
    // Deflate rarely expands more than 4:1 on real data; starting there saves regrowth.
    return this.run(
      input,
      new OutputSink(destAvailOut, Math.max(1 << 16, input.length * 4)),
      final,
    );
  }

  /**
   * Like {@link push} with `dest.length` as the output space, but decodes into `dest`
   * itself (the result's `output` is a view of it), so a caller that reuses one buffer
   * allocates nothing per call.
   */
  pushInto(input: Uint8Array, dest: Uint8Array, final: boolean): StreamResult {
    return this.run(input, OutputSink.over(dest), final);
  }

  private run(input: Uint8Array, sink: OutputSink, final: boolean): StreamResult {
    if (this.error) return failure(this.error);
    const inf = this.inflater;
    inf.setInput(input, 0, input.length);
    let stop = "input";
    try {
      stop = this.advance(sink);
      if (stop === "input" && final) {
        if (this.phase !== phase.nextMember) throw new ZipError("truncated");
        this.phase = phase.done;
        stop = "end";
      }
    } catch (e) {
      if (!(e instanceof ZipError)) throw e;
      this.error = e;
      this.phase = phase.failed;
    }
    if (stop !== "input") inf.returnReadAhead();
    const status = this.error
      ? this.error.status
      : stop === "end"
      ? ZipStatus.decompressEnd
      : stop === "output"
      ? ZipStatus.destInsufficient
      : ZipStatus.ok;
    const output = sink.bytes();
    return { consumed: inf.inPos, produced: output.length, status, output, error: this.error };
  }

  private startMember(): void {
    this.check = this.format === "zlib" ? 1 : 0;
    this.length = 0;
    this.trailerHave = 0;
    this.header = this.format === "zlib"
      ? new ZlibHeaderParser()
      : this.format === "gzip"
      ? new GzipHeaderParser()
      : undefined;
    this.phase = this.header ? phase.header : phase.body;
    if (!this.header) this.inflater.startStream();
  }

  /** Runs the phases until the stream ends or input or output space runs out. */
  private advance(sink: OutputSink): "end" | "input" | "output" {
    const inf = this.inflater;
    for (;;) {
      switch (this.phase) {
        case phase.header: {
          const parser = this.header!;
          for (;;) {
            const b = inf.takeByte();
            if (b < 0) return "input";
            if (parser.push(b)) break;
          }
          inf.startStream();
          this.phase = phase.body;
          break;
        }
        case phase.body: {
          const before = sink.length;
          const stop = inf.run(sink);
          this.updateCheck(sink.buf, before, sink.length);
          if (stop !== "end") return stop;
          inf.alignToByte();
          this.phase = this.format === "deflate" ? phase.done : phase.trailer;
          break;
        }
        case phase.trailer: {
          const need = this.format === "zlib" ? 4 : 8;
          while (this.trailerHave < need) {
            const b = inf.takeByte();
            if (b < 0) return "input";
            this.trailer[this.trailerHave++] = b;
            if (this.trailerHave === 4) this.verifyCheck();
          }
          if (this.format === "gzip") this.verifyLength();
          this.phase = this.format === "gzip" ? phase.nextMember : phase.done;
          break;
        }
        case phase.nextMember: {
          const b = inf.peekByte();
          if (b < 0) return "input";
          if (b === 0) this.phase = phase.done;
          else this.startMember();
          break;
        }
        default:
          if (this.takeZeros) this.skipZeros();
          return "end";
      }
    }
  }

  /** Consumes the zero bytes after the stream; throws at any other byte. */
  private skipZeros(): void {
    const inf = this.inflater;
    for (let b = inf.peekByte(); b >= 0; b = inf.peekByte()) {
      if (b !== 0) {
        throw new ZipError("bad-header", `trailing data after the ${this.format} stream`);
      }
      inf.takeByte();
      this.zeros++;
    }
  }

  private updateCheck(buf: Uint8Array, from: number, to: number): void {
    this.length = (this.length + to - from) >>> 0;
    if (this.format === "zlib") this.check = adler32(buf, this.check, from, to);
    else if (this.format === "gzip") this.check = crc32(buf, this.check, from, to);
  }

  /** Checks the Adler-32 (zlib, big-endian) or CRC-32 (gzip, little-endian) trailer word. */
  private verifyCheck(): void {
    const t = this.trailer;
    const want = this.format === "zlib"
      ? (t[0] << 24) | (t[1] << 16) | (t[2] << 8) | t[3]
      : t[0] | (t[1] << 8) | (t[2] << 16) | (t[3] << 24);
    if (want >>> 0 !== this.check) {
      throw new ZipError("checksum-mismatch", this.format === "zlib" ? "Adler-32" : "CRC-32");
    }
  }

  /** Checks the gzip ISIZE trailer word. */
  private verifyLength(): void {
    const t = this.trailer;
    const size = (t[4] | (t[5] << 8) | (t[6] << 16) | (t[7] << 24)) >>> 0;
    if (size !== this.length) throw new ZipError("length-mismatch");
  }

  /** Whether the stream has ended (status 0x13 was reported). */
  get ended(): boolean {
    return this.phase === phase.done;
  }

  /** With `trailing: "zeros"`: how many zero bytes followed the stream so far. */
  get trailingZeros(): number {
    return this.zeros;
  }
}

function failure(error: ZipError): StreamResult {
  return { consumed: 0, produced: 0, status: error.status, output: new Uint8Array(0), error };
}
