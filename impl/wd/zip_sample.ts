/**
 * The ZIP sample (RFCv2 7/7 `test_hisi_zip.c`) through the whole simulated stack: a process
 * requests a queue, shares an input and an output buffer with the device, sends ZIP SQEs, the
 * QM device runs the ZIP engine (DMA through the IOMMU), the process receives each completion
 * and hands its output on, then releases everything.
 *
 * Two ways an input becomes requests:
 * - {@link runZipSample} is the seed's sample: the whole input (at most
 *   {@link SAMPLE_MAX_INPUT} bytes) is one stateless request with
 *   {@link SAMPLE_MAX_OUTPUT} bytes of output room;
 * - {@link zipSample} streams any size, as the later hardware's stateful mode does it (UADK
 *   `hisi_comp.c`): every {@link SAMPLE_CHUNK} of input is one stateful request on the
 *   stream context in a shared context buffer, with a fixed {@link SAMPLE_CHUNK} of output
 *   room; after 0x0e the unconsumed rest is sent again with the room emptied, and the last
 *   request (the input is read one byte ahead to know it) carries the finish flag. Each mode
 *   gives one stream: one zlib stream, one gzip member.
 *
 * The correct sample asks the hardware for the framing it writes (zlib 0x02, gzip 0x03) and
 * writes the output as is. Quirk `sampleZlibHeaderOnly` (L4801) reproduces the seed: for zlib
 * it writes the two header bytes `78 9c` in front of the raw deflate data and no Adler-32
 * trailer, so no zlib reader accepts the file.
 *
 * @module
 */
import { ZipRequestType, ZipStatus } from "../../spec/zip.ts";
import { compressBound } from "../../spec/zipcrypto.ts";
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import {
  decodeZipSqe,
  emptyZipSqe,
  encodeZipSqe,
  ZipAlgType,
  type ZipSqe,
  ZipStreamCtl,
} from "../device/zip_engine.ts";
import { ZipQmEngine } from "../device/zip_qm_engine.ts";
import type { Platform } from "../platform.ts";
import type { QuirkName, Quirks } from "../quirks.ts";
import { loopGuard } from "../runaway.ts";
import { bootWdHost, type WdHost } from "./host.ts";
import { WdSys } from "./sys.ts";
import { type WdMessage, WdQueue } from "./wd.ts";

/** Largest input of the one-shot sample's request (the seed's 16 MiB limit). */
export const SAMPLE_MAX_INPUT = 16 * 1024 * 1024;

/** Output room of a one-shot decompression (twice the sample's 8 MiB `dest_avail_out`). */
export const SAMPLE_MAX_OUTPUT = 16 * 1024 * 1024;

/** The seed defects of the catalogue that live in the sample. */
export const SAMPLE_QUIRKS: readonly QuirkName[] = ["sampleZlibHeaderOnly"];

/** Input bytes per streaming request, and the output room of each. */
export const SAMPLE_CHUNK = 1024 * 1024;

/** Size of the stream context buffer a streaming run shares (UADK's HW_CTX_SIZE). */
const CTX_SIZE = 64 * 1024;

/** The sample's process and where it maps its buffers. */
const PID = 1;
const SRC = 0x4000_0000;
const DST = 0x8000_0000;
const CTX = 0xc000_0000;

/** The sample's machine: a platform and its QM function whose device runs the ZIP engine. */
export type ZipMachine = WdHost;

/**
 * The sample's machine on `platform`: QM function 1, whose device runs the ZIP engine at
 * `level` (0-9, default 6), probed and registered with sdmdev (`hisi_zip_probe`), the mdev
 * core making IOMMU groups, and VFIO with a container for the sample's process.
 */
export function zipMachine(platform: Platform, level?: number): Promise<ZipMachine> {
  return bootWdHost(platform, {
    config: { qpNum: 2, sqDepth: 4, cqDepth: 4, eqDepth: 8 },
    engine: new ZipQmEngine(platform.kernel, level),
    pids: [PID],
  });
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
  share(vaddr: number, size: number): Promise<Errno | undefined>;
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
  machine: ZipMachine,
  algType: number,
): Promise<SampleQueue | Errno> {
  const { fn } = machine;
  const q = algType === 0
    ? await WdQueue.request(new WdSys(machine, PID))
    : await WdQueue.direct(machine, PID, algType);
  if (typeof q === "string") return q;
  return {
    write: (vaddr, data) => q.write(vaddr, data),
    read: (vaddr, length) => q.read(vaddr, length),
    share: (vaddr, size) => q.memShare(vaddr, size),
    unshare: async (vaddr) => void await q.memUnshare(vaddr),
    send: (sqe) => q.send(sqe),
    wait: async () => {
      await fn.device.step(q.qn);
      await fn.qm.irqThread(); // the interrupt: the kernel drains the EQ, wakes the waiter
      return await q.recv();
    },
    release: async () => void await q.release(),
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

/** What a streaming run did. */
export interface SampleSummary {
  /** Requests sent (resubmissions after 0x0e included). */
  readonly requests: number;
  /** Input bytes after the end of a decompressed stream: not part of it, not decoded. */
  readonly trailing: number;
  /** Whether every trailing byte is zero (true when there are none). */
  readonly trailingZeros: boolean;
}

/**
 * Streams `input` through `queue` as `job` says (module doc), handing the output to `sink` as
 * each request completes (pieces of at most {@link SAMPLE_CHUNK} bytes). Input goes straight
 * into the shared source buffer, as the seed's sample reads its file into it, each piece before
 * the next is asked for (so `input` may reuse its buffer from one piece to the next). Throws
 * {@link SampleError}; whatever `sink` received before is incomplete then.
 */
export async function zipSample(
  queue: SampleQueue,
  job: SampleJob,
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  sink: (output: Uint8Array) => void | Promise<void>,
): Promise<SampleSummary> {
  const headerOnly = usesHeaderOnly(job);
  const dw9 = headerOnly ? ZipRequestType.deflate : ZipRequestType[job.format];
  let requests = 0, trailing = 0, trailingZeros = true, ended = false;
  return await sharing(
    queue,
    [[SRC, SAMPLE_CHUNK], [DST, SAMPLE_CHUNK], [CTX, CTX_SIZE]],
    async () => {
      for await (const { length, last } of load(queue, input)) {
        let at = 0;
        const spin = loopGuard("zip sample request loop");
        while (!ended) {
          spin();
          const done = await request(queue, {
            dw7: ZipStreamCtl.stateful | (requests === 0 ? ZipStreamCtl.newStream : 0) |
              (last ? ZipStreamCtl.finish : 0),
            dw9,
            sourceAddr: SRC + at,
            inputDataLength: length - at,
            destAddr: DST,
            destAvailOut: SAMPLE_CHUNK,
            streamCtxAddr: CTX,
          });
          const { status } = done;
          const fine = status === ZipStatus.ok || status === ZipStatus.destInsufficient ||
            status === (job.decompress ? ZipStatus.decompressEnd : ZipStatus.negativeCompression);
          if (!fine) throw failure(status, job.format);
          if (headerOnly && requests === 0) await sink(Uint8Array.of(0x78, 0x9c));
          requests++;
          if (done.produced > 0) await sink(queue.read(DST, done.produced));
          at += done.consumed;
          ended = status === ZipStatus.decompressEnd;
          if (status !== ZipStatus.destInsufficient) break;
        }
        if (ended && at < length) {
          trailing += length - at;
          trailingZeros &&= queue.read(SRC + at, length - at).every((b) => b === 0);
        }
      }
      return { requests, trailing, trailingZeros };
    },
  );
}

/**
 * The seed's sample: one request for the whole `input` on a queue of its own. The output, or
 * EINVAL (empty or oversized input, invalid stream), ENOSPC (output past its room), or the
 * errno of a failed queue request or share.
 */
export async function runZipSample(
  machine: ZipMachine,
  job: Omit<SampleJob, "quirks"> & { readonly input: Uint8Array },
): Promise<Uint8Array | Errno> {
  const { input } = job;
  if (input.length === 0 || input.length > SAMPLE_MAX_INPUT) return "EINVAL";
  const algType = job.decompress ? ZipAlgType.decompress : ZipAlgType.compress;
  const q = await requestSampleQueue(machine, algType);
  if (typeof q === "string") return q;
  const headerOnly = usesHeaderOnly({ ...job, quirks: machine.platform.kernel.quirks });
  const room = job.decompress ? SAMPLE_MAX_OUTPUT : compressBound(input.length, "gzip");
  try {
    return await sharing(q, [[SRC, input.length], [DST, room]], async () => {
      q.write(SRC, input);
      const done = await request(q, {
        dw9: headerOnly ? ZipRequestType.deflate : ZipRequestType[job.format],
        sourceAddr: SRC,
        inputDataLength: input.length,
        destAddr: DST,
        destAvailOut: room,
      });
      const { status } = done;
      const success = job.decompress
        ? status === ZipStatus.decompressEnd
        : status === ZipStatus.ok || status === ZipStatus.negativeCompression;
      if (!success) throw failure(status, job.format);
      const output = q.read(DST, done.produced);
      if (!headerOnly) return output;
      const framed = new Uint8Array(2 + output.length);
      framed.set([0x78, 0x9c]);
      framed.set(output, 2);
      return framed;
    });
  } catch (e) {
    if (e instanceof SampleError) return e.errno;
    throw e;
  } finally {
    await q.release();
  }
}

/** Whether the seed's defect applies: a zlib compression with `sampleZlibHeaderOnly`. */
function usesHeaderOnly(job: SampleJob): boolean {
  return !job.decompress && job.format === "zlib" && job.quirks.sampleZlibHeaderOnly === true;
}

/** The error of a request that ended with `status`. */
function failure(status: number, format: "zlib" | "gzip"): SampleError {
  const errno = status === ZipStatus.destInsufficient ? "ENOSPC" : "EINVAL";
  return new SampleError(errno, statusMessage(status, format), status);
}

/**
 * Reads `input` into the source buffer, {@link SAMPLE_CHUNK} bytes at a time, and yields the
 * length of each request's input there and whether it is the last: a full buffer is yielded
 * only once a byte after it has arrived. An empty input is one empty last request.
 */
async function* load(
  queue: SampleQueue,
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<{ readonly length: number; readonly last: boolean }> {
  let have = 0;
  for await (const p of input) {
    for (let at = 0; at < p.length;) {
      if (have === SAMPLE_CHUNK) {
        yield { length: have, last: false };
        have = 0;
      }
      const n = Math.min(SAMPLE_CHUNK - have, p.length - at);
      queue.write(SRC + have, p.subarray(at, at + n));
      have += n;
      at += n;
    }
  }
  yield { length: have, last: true };
}

/** Runs `body` with each `[vaddr, size]` of `regions` shared with the device, then unshares. */
async function sharing<T>(
  queue: SampleQueue,
  regions: readonly (readonly [number, number])[],
  body: () => Promise<T>,
): Promise<T> {
  try {
    for (const [vaddr, size] of regions) {
      // The buffers are whole pages (the seed's sample mmaps them), as MAP_DMA needs.
      const shared = await queue.share(vaddr, Math.max(1, Math.ceil(size / PAGE_SIZE)) * PAGE_SIZE);
      if (shared !== undefined) throw new SampleError(shared, `sharing a buffer failed: ${shared}`);
    }
    return await body();
  } finally {
    for (const [vaddr] of regions) await queue.unshare(vaddr);
  }
}

/** What one request returned: its status and byte counts. */
interface Completion {
  readonly status: number;
  readonly consumed: number;
  readonly produced: number;
}

/** One SQE with `fields` over the shared buffers: sent, waited for. */
async function request(queue: SampleQueue, fields: Partial<ZipSqe>): Promise<Completion> {
  const sent = await queue.send(encodeZipSqe({ ...emptyZipSqe, ...fields }));
  if (typeof sent === "string") throw new SampleError(sent, `sending the request failed: ${sent}`);
  const done = await queue.wait();
  if (typeof done === "string") throw new SampleError(done, `no completion: ${done}`);
  const { consumed, produced } = decodeZipSqe(done.sqe);
  return { status: done.status, consumed, produced };
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
