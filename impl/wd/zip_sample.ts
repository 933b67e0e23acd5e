/**
 * The ZIP sample (RFCv2 7/7 `test_hisi_zip.c`) through the whole simulated stack: a process
 * requests a queue, shares an input and an output buffer with the device, sends ZIP SQEs, the
 * QM device runs the ZIP engine (DMA through the IOMMU), the process receives each completion
 * and hands its output on, then releases everything.
 *
 * How an input becomes requests follows what the engine can do. Every SQE is a whole job (the
 * engine finishes the stream it was given), so gzip compression streams: each
 * {@link SAMPLE_CHUNK} of input is one request and one gzip member, and a gzip file may hold
 * any number of members (RFC 1952 2.2). A zlib stream and a decompression cannot be split
 * that way: their whole input is one request of at most {@link SAMPLE_MAX_INPUT} bytes.
 *
 * The correct sample asks the hardware for the framing it writes (zlib 0x02, gzip 0x03) and
 * writes the output as is. Quirk `sampleZlibHeaderOnly` (L4801) reproduces the seed: for zlib
 * it writes the two header bytes `78 9c` in front of the raw deflate data and no Adler-32
 * trailer, so no zlib reader accepts the file.
 *
 * @module
 */
import { isZipSuccess, ZipRequestType, ZipStatus } from "../../spec/zip.ts";
import { compressBound } from "../../spec/zipcrypto.ts";
import type { Errno } from "../../spec/types.ts";
import { decodeZipSqe, emptyZipSqe, encodeZipSqe, ZipAlgType } from "../device/zip_engine.ts";
import { ZipQmEngine } from "../device/zip_qm_engine.ts";
import type { Kernel } from "../kernel.ts";
import { QmMachine } from "../qm/machine.ts";
import type { Quirks } from "../quirks.ts";
import { type WdMessage, WdQueue } from "./wd.ts";

/** Largest input of one request (the sample's 16 MiB limit). */
export const SAMPLE_MAX_INPUT = 16 * 1024 * 1024;

/** Output room of a decompression (twice the sample's 8 MiB `dest_avail_out`). */
export const SAMPLE_MAX_OUTPUT = 16 * 1024 * 1024;

/** Input bytes per request when the input streams (gzip compression: one member each). */
export const SAMPLE_CHUNK = 1024 * 1024;

/** The sample's process and where it maps its buffers. */
const PID = 1;
const SRC = 0x4000_0000;
const DST = 0x8000_0000;

/** A simulated QM whose device runs the ZIP engine: what the sample runs on. */
export function zipQmMachine(kernel: Kernel): QmMachine {
  return new QmMachine(
    kernel,
    { qpNum: 2, sqDepth: 4, cqDepth: 4, eqDepth: 8 },
    new ZipQmEngine(kernel),
  );
}

/**
 * The queue as the sample uses it (`wd.h`): the one place that knows where the queue comes
 * from is {@link requestSampleQueue}.
 */
export interface SampleQueue {
  /** Copies `data` into the process's memory at `vaddr`. */
  write(vaddr: number, data: Uint8Array): void;
  /** Reads `length` bytes of the process's memory at `vaddr`. */
  read(vaddr: number, length: number): Uint8Array;
  /** `wd_mem_share`: the device may reach `[vaddr, vaddr + size)` at IOVA = vaddr. */
  share(vaddr: number, size: number): Errno | undefined;
  /** `wd_mem_unshare` of a region {@link share}d at `vaddr`. */
  unshare(vaddr: number): Promise<void>;
  /** `wd_send`: one SQE. */
  send(sqe: Uint8Array): Promise<number | Errno>;
  /** Waits until the device completes the oldest request and receives it (`wd_recv_sync`). */
  wait(): Promise<WdMessage | Errno>;
  /** `wd_release_queue`: every share undone, the queue released. */
  release(): Promise<void>;
}

/**
 * `wd_request_queue` on the simulated QM for a queue of `algType` ({@link ZipAlgType}):
 * waiting is the device taking the SQE and the interrupt waking the process.
 */
export async function requestSampleQueue(
  machine: QmMachine,
  algType: number,
): Promise<SampleQueue | Errno> {
  const q = await WdQueue.request(machine, PID, algType);
  if (typeof q === "string") return q;
  return {
    write: (vaddr, data) => q.write(vaddr, data),
    read: (vaddr, length) => q.read(vaddr, length),
    share: (vaddr, size) => q.memShare(vaddr, size),
    unshare: (vaddr) => q.memUnshare(vaddr),
    send: (sqe) => q.send(sqe),
    wait: async () => {
      await machine.device.step(q.qn);
      await machine.qm.irqThread(); // the interrupt: the kernel drains the EQ, wakes the waiter
      return await q.recv();
    },
    release: () => q.release(),
  };
}

/** What a run asks for. */
export interface SampleJob {
  /** Framing of the output, or of the input with `decompress`. */
  readonly format: "zlib" | "gzip";
  /** Decompress instead of compress. */
  readonly decompress: boolean;
  /** The seed defects switched on (the sample has `sampleZlibHeaderOnly`). */
  readonly quirks: Quirks;
}

/** Why a run failed: the errno the seed's sample would return, and what went wrong. */
export class SampleError extends Error {
  /** Creates the error; `status` is the engine's when it reported the failure. */
  constructor(readonly errno: Errno, message: string, readonly status?: number) {
    super(message);
    this.name = "SampleError";
  }
}

/** What a run did. */
export interface SampleSummary {
  /** Requests sent. */
  readonly requests: number;
  /** Input after the end of a decompressed stream: not part of it, not decoded. */
  readonly trailing: Uint8Array;
}

/**
 * Runs `job` on `queue` over `input`, handing the output to `sink` as each request completes
 * (in pieces of at most {@link SAMPLE_CHUNK} bytes). Input goes straight into the shared
 * source buffer, as the seed's sample reads its file into it. Throws {@link SampleError};
 * whatever `sink` received before is incomplete then.
 */
export async function zipSample(
  queue: SampleQueue,
  job: SampleJob,
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  sink: (output: Uint8Array) => void | Promise<void>,
): Promise<SampleSummary> {
  const headerOnly = !job.decompress && job.format === "zlib" && job.quirks.sampleZlibHeaderOnly;
  const dw9 = headerOnly ? ZipRequestType.deflate : ZipRequestType[job.format];
  const streams = !job.decompress && job.format === "gzip";
  let requests = 0;
  let trailing: Uint8Array = new Uint8Array(0);
  for await (const length of load(queue, input, streams ? SAMPLE_CHUNK : undefined)) {
    const room = job.decompress ? SAMPLE_MAX_OUTPUT : compressBound(length, "gzip");
    const done = await request(queue, length, dw9, room);
    const status = done.status;
    if (!(job.decompress ? status === ZipStatus.decompressEnd : isZipSuccess(status))) {
      throw new SampleError(
        status === ZipStatus.destInsufficient ? "ENOSPC" : "EINVAL",
        statusMessage(status, job.format),
        status,
      );
    }
    if (headerOnly && requests === 0) await sink(Uint8Array.of(0x78, 0x9c));
    for (let at = 0; at < done.produced; at += SAMPLE_CHUNK) {
      await sink(queue.read(DST + at, Math.min(SAMPLE_CHUNK, done.produced - at)));
    }
    trailing = queue.read(SRC + done.consumed, length - done.consumed);
    requests++;
  }
  return { requests, trailing };
}

/**
 * The seed's sample: one request for the whole `input` on a queue of its own. The output, or
 * EINVAL (empty or oversized input, invalid stream), ENOSPC (output past its room), or the
 * errno of a failed queue request or share.
 */
export async function runZipSample(
  machine: QmMachine,
  job: Omit<SampleJob, "quirks"> & { readonly input: Uint8Array },
): Promise<Uint8Array | Errno> {
  const { input } = job;
  if (input.length === 0 || input.length > SAMPLE_MAX_INPUT) return "EINVAL";
  const algType = job.decompress ? ZipAlgType.decompress : ZipAlgType.compress;
  const q = await requestSampleQueue(machine, algType);
  if (typeof q === "string") return q;
  const parts: Uint8Array[] = [];
  try {
    await zipSample(q, { ...job, quirks: machine.kernel.quirks }, [input], (p) => {
      parts.push(p);
    });
    return concat(parts);
  } catch (e) {
    if (e instanceof SampleError) return e.errno;
    throw e;
  } finally {
    await q.release();
  }
}

/**
 * Reads `input` into the source buffer and yields the length of each request's input there:
 * every `chunk` bytes (and the rest at the end), or with `chunk` undefined all of it, at most
 * {@link SAMPLE_MAX_INPUT} bytes. An empty input is one empty request.
 */
async function* load(
  queue: SampleQueue,
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  chunk: number | undefined,
): AsyncGenerator<number> {
  const size = chunk ?? SAMPLE_MAX_INPUT;
  let have = 0;
  let sent = false;
  for await (const p of input) {
    for (let at = 0; at < p.length;) {
      if (have === size) {
        throw new SampleError(
          "EINVAL",
          `over ${SAMPLE_MAX_INPUT} bytes: the engine takes a zlib stream or a decompression ` +
            "in one request (gzip compression streams)",
        );
      }
      const n = Math.min(size - have, p.length - at);
      queue.write(SRC + have, p.subarray(at, at + n));
      have += n;
      at += n;
      if (have === chunk) {
        yield have;
        [have, sent] = [0, true];
      }
    }
  }
  if (have > 0 || !sent) yield have;
}

/** What one request returned: its status and byte counts. */
interface Completion {
  readonly status: number;
  readonly consumed: number;
  readonly produced: number;
}

/**
 * One SQE over the first `length` bytes of the source buffer with `room` bytes of output:
 * shared, sent, waited for, unshared.
 */
async function request(
  queue: SampleQueue,
  length: number,
  dw9: number,
  room: number,
): Promise<Completion> {
  try {
    const shared = queue.share(SRC, length) ?? queue.share(DST, room);
    if (shared !== undefined) throw new SampleError(shared, `sharing a buffer failed: ${shared}`);
    const sqe = encodeZipSqe({
      ...emptyZipSqe,
      inputDataLength: length,
      dw9,
      destAvailOut: room,
      sourceAddr: SRC,
      destAddr: DST,
    });
    const sent = await queue.send(sqe);
    if (typeof sent === "string") {
      throw new SampleError(sent, `sending the request failed: ${sent}`);
    }
    const done = await queue.wait();
    if (typeof done === "string") throw new SampleError(done, `no completion: ${done}`);
    const { consumed, produced } = decodeZipSqe(done.sqe);
    return { status: done.status, consumed, produced };
  } finally {
    await queue.unshare(SRC);
    await queue.unshare(DST);
  }
}

/** What a failed request's status means, in one phrase. */
export function statusMessage(status: number, format: "zlib" | "gzip"): string {
  switch (status) {
    case ZipStatus.headerError:
      return `bad ${format} header`;
    case ZipStatus.checksumError:
      return format === "zlib"
        ? "Adler-32 checksum mismatch"
        : "CRC-32 mismatch (of the data or the header)";
    case ZipStatus.lengthError:
      return "ISIZE mismatch: the gzip trailer's length differs from the data's";
    case ZipStatus.truncatedInput:
      return "truncated: the input ends inside the stream";
    case ZipStatus.dataError:
      return "invalid deflate data";
    case ZipStatus.destInsufficient:
      return `the output exceeds ${SAMPLE_MAX_OUTPUT} bytes, the room of one request`;
    default:
      return `the engine failed with status 0x${status.toString(16).padStart(2, "0")}`;
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
