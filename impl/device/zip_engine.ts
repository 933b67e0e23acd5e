/**
 * The HiSilicon ZIP engine executing one submission queue entry (RFCv2 5/7,
 * drivers/crypto/hisilicon/zip/zip.h `struct hisi_zip_sqe`; samples/warpdrive/drv
 * hisi_qm_udrv.h `struct hisi_qm_msg`).
 *
 * Conventions taken from the seed:
 * - the SQE is 128 bytes, 32 little-endian u32 words, in the field order of the struct;
 * - dw9 & 0xff is the request type: 0x01 raw deflate, 0x02 zlib, 0x03 gzip;
 * - compress vs decompress is not in the SQE: it is the queue's alg_type, set in the SQC
 *   (qm_sq_ctx_cfg, "0 is compress, 1 is decompress"), so the caller passes it in;
 * - the engine writes back consumed, produced and the status in dw3 & 0xff.
 *
 * A stateless SQE is one whole job: all input_data_length bytes are the input and the stream
 * is finished (compression writes the complete framed stream). Output goes to the destination
 * in chunks of at most {@link dmaChunk} bytes through one reused buffer, so the engine's
 * memory does not depend on dest_avail_out and an SQE allocates no output buffer; an input of
 * at most {@link dmaChunk} bytes is read into another reused buffer (a larger one into a
 * buffer of its own).
 *
 * Stateful mode, as the later hardware has it (UADK `hisi_comp.c`): dw7 bits 25-27 are the
 * flush type (1 finish, 0 sync flush: more input follows), the stream mode (1 stateful) and
 * the stream position (1 a new stream). When the caller supplies `contexts`, a stateful SQE
 * with a nonzero stream_ctx_addr runs on the stream context kept there (the abstraction of the
 * hardware's context buffer): a new stream starts a fresh one; a sync flush compresses the
 * input and flushes to a byte boundary (status 0), or decodes it expecting more (status 0);
 * finish ends the stream. The context is kept after status 0 without finish and after 0x0e
 * (resubmit the unconsumed input with fresh output space), and dropped otherwise. An SQE with
 * a nonzero stream_ctx_addr but without the stateful bit finishes its stream and keeps the
 * context only after 0x0e. Without `contexts` or with stream_ctx_addr 0 every SQE is
 * stateless.
 *
 * @module
 */

import {
  formatOfRequestType,
  isZipContinuable,
  ZipStatus,
  type ZipStatusCode,
} from "../../spec/zip.ts";
import { CompressStream } from "../zip/compress.ts";
import { DecompressStream } from "../zip/decompress.ts";
import { loopGuard } from "../runaway.ts";

/** Size of the SQE in bytes (HZIP_SQE_SIZE). */
export const zipSqeSize = 128;

/** Largest piece of output the engine buffers before writing it to the destination. */
export const dmaChunk = 1 << 20;

/**
 * The engine's output buffer of {@link dmaChunk} bytes, allocated at the first SQE and reused
 * by every one after (each chunk is written to the destination before the next is produced).
 */
let staging: Uint8Array | undefined;

/**
 * The engine's input buffer of {@link dmaChunk} bytes, reused as {@link staging} is. A stream
 * context keeps no reference into it: each SQE's input is read here anew, and the streams
 * copy (compression) or finish reading (decompression) their input within the call.
 */
let inputStaging: Uint8Array | undefined;

/** Queue alg_type values: which way a queue's SQEs go. */
export const ZipAlgType = {
  /** SQEs on this queue compress. */
  compress: 0,
  /** SQEs on this queue decompress. */
  decompress: 1,
} as const;

/** The fields of `struct hisi_zip_sqe`; 64-bit addresses are joined into numbers (< 2^53). */
export interface ZipSqe {
  /** Input bytes consumed (written by the engine). */
  readonly consumed: number;
  /** Output bytes produced (written by the engine). */
  readonly produced: number;
  /** comp_data_length. */
  readonly compDataLength: number;
  /** dw3; the low byte is the status written by the engine. */
  readonly dw3: number;
  /** input_data_length: bytes to read at the source address. */
  readonly inputDataLength: number;
  /** lba_l | lba_h << 32. */
  readonly lba: number;
  /** dw7. */
  readonly dw7: number;
  /** dw8. */
  readonly dw8: number;
  /** dw9; the low byte is the request type (0x01 deflate, 0x02 zlib, 0x03 gzip). */
  readonly dw9: number;
  /** dw10. */
  readonly dw10: number;
  /** priv_info. */
  readonly privInfo: number;
  /** dw12. */
  readonly dw12: number;
  /** tag. */
  readonly tag: number;
  /** dest_avail_out: bytes writable at the destination address. */
  readonly destAvailOut: number;
  /** rsvd0. */
  readonly rsvd0: number;
  /** comp_head_addr (IOVA). */
  readonly compHeadAddr: number;
  /** source_addr (IOVA). */
  readonly sourceAddr: number;
  /** dest_addr (IOVA). */
  readonly destAddr: number;
  /** stream_ctx_addr (IOVA); nonzero selects a stream context (see module doc). */
  readonly streamCtxAddr: number;
  /** cipher_key1_addr (IOVA). */
  readonly cipherKey1Addr: number;
  /** cipher_key2_addr (IOVA). */
  readonly cipherKey2Addr: number;
  /** rsvd1[4]. */
  readonly rsvd1: readonly [number, number, number, number];
}

/** dw7 stream control bits (UADK: `(stream_pos << 2 | stream_mode << 1 | flush) << 25`). */
export const ZipStreamCtl = {
  /** Flush type finish: this SQE's input ends the stream (0: sync flush, more follows). */
  finish: 1 << 25,
  /** Stream mode stateful: the SQE runs on the context at stream_ctx_addr. */
  stateful: 1 << 26,
  /** Stream position new: the SQE starts a stream (a context left at the address is dropped). */
  newStream: 1 << 27,
} as const;

/** An SQE with every field zero, to build requests from. */
export const emptyZipSqe: ZipSqe = {
  consumed: 0,
  produced: 0,
  compDataLength: 0,
  dw3: 0,
  inputDataLength: 0,
  lba: 0,
  dw7: 0,
  dw8: 0,
  dw9: 0,
  dw10: 0,
  privInfo: 0,
  dw12: 0,
  tag: 0,
  destAvailOut: 0,
  rsvd0: 0,
  compHeadAddr: 0,
  sourceAddr: 0,
  destAddr: 0,
  streamCtxAddr: 0,
  cipherKey1Addr: 0,
  cipherKey2Addr: 0,
  rsvd1: [0, 0, 0, 0],
};

/** The status the engine wrote into an SQE (dw3 & 0xff). */
export function zipSqeStatus(sqe: ZipSqe): number {
  return sqe.dw3 & 0xff;
}

/** 32-bit words of the layout, in struct order; "*" marks a 64-bit field split lo/hi. */
const layout: ReadonlyArray<keyof ZipSqe | `${keyof ZipSqe}*`> = [
  "consumed",
  "produced",
  "compDataLength",
  "dw3",
  "inputDataLength",
  "lba*",
  "dw7",
  "dw8",
  "dw9",
  "dw10",
  "privInfo",
  "dw12",
  "tag",
  "destAvailOut",
  "rsvd0",
  "compHeadAddr*",
  "sourceAddr*",
  "destAddr*",
  "streamCtxAddr*",
  "cipherKey1Addr*",
  "cipherKey2Addr*",
];

/** Serialises an SQE into its 128-byte little-endian layout. */
export function encodeZipSqe(sqe: ZipSqe): Uint8Array {
  const bytes = new Uint8Array(zipSqeSize);
  const view = new DataView(bytes.buffer);
  let off = 0;
  for (const entry of layout) {
    const wide = entry.endsWith("*");
    const value = sqe[entry.replace("*", "") as keyof ZipSqe] as number;
    view.setUint32(off, value % 2 ** 32, true);
    off += 4;
    if (wide) {
      view.setUint32(off, Math.floor(value / 2 ** 32), true);
      off += 4;
    }
  }
  for (const v of sqe.rsvd1) {
    view.setUint32(off, v, true);
    off += 4;
  }
  return bytes;
}

/** Parses the 128-byte little-endian layout of an SQE. */
export function decodeZipSqe(bytes: Uint8Array): ZipSqe {
  if (bytes.length < zipSqeSize) throw new RangeError(`an SQE is ${zipSqeSize} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, zipSqeSize);
  const out: Record<string, unknown> = {};
  let off = 0;
  for (const entry of layout) {
    let value = view.getUint32(off, true);
    off += 4;
    if (entry.endsWith("*")) {
      value += view.getUint32(off, true) * 2 ** 32;
      off += 4;
    }
    out[entry.replace("*", "")] = value;
  }
  const rsvd1: number[] = [];
  for (let i = 0; i < 4; i++, off += 4) rsvd1.push(view.getUint32(off, true));
  out.rsvd1 = rsvd1;
  return out as unknown as ZipSqe;
}

/** The device's view of memory: IOMMU-translated DMA by IOVA. */
export interface ZipDma {
  /** Fills `out` with the bytes at `iova`; returns a fault when the translation failed. */
  readInto(iova: number, out: Uint8Array): { fault: string } | undefined;
  /** Writes `data` at `iova`; returns a fault when the translation failed. */
  write(iova: number, data: Uint8Array): { fault: string } | undefined;
}

/** How the engine runs an SQE: the queue's direction and the engine's settings. */
export interface ZipEngineOptions {
  /** The queue's alg_type: {@link ZipAlgType}. */
  readonly algType: number;
  /** Compression level 0-9 (default 6). */
  readonly level?: number;
  /** Stream contexts by stream_ctx_addr; without it every SQE is independent. */
  readonly contexts?: Map<number, CompressStream | DecompressStream>;
}

/** The completed SQE and, when a DMA faulted, the fault. */
export interface ZipEngineResult {
  /** The input SQE with consumed, produced and status written back. */
  readonly sqe: ZipSqe;
  /** The IOMMU fault behind a 0x17 / 0x18 status. */
  readonly fault?: string;
}

function complete(sqe: ZipSqe, consumed: number, produced: number, status: ZipStatusCode) {
  return { ...sqe, consumed, produced, dw3: ((sqe.dw3 & ~0xff) | status) >>> 0 };
}

/** Executes one SQE against `dma`; returns the written-back SQE (the input is not changed). */
export function executeZipSqe(
  sqe: ZipSqe,
  dma: ZipDma,
  options: ZipEngineOptions,
): ZipEngineResult {
  const format = formatOfRequestType(sqe.dw9);
  const level = options.level ?? 6;
  const validLevel = Number.isInteger(level) && level >= 0 && level <= 9;
  const compressing = options.algType === ZipAlgType.compress;
  if (!format || !validLevel || (!compressing && options.algType !== ZipAlgType.decompress)) {
    return { sqe: complete(sqe, 0, 0, ZipStatus.badRequest) };
  }
  const length = sqe.inputDataLength;
  const input = length <= dmaChunk
    ? (inputStaging ??= new Uint8Array(dmaChunk)).subarray(0, length)
    : new Uint8Array(length);
  const readFault = dma.readInto(sqe.sourceAddr, input);
  if (readFault) {
    return { sqe: complete(sqe, 0, 0, ZipStatus.dmaReadFault), fault: readFault.fault };
  }
  const key = sqe.streamCtxAddr;
  const keep = options.contexts !== undefined && key !== 0;
  const stateful = keep && (sqe.dw7 & ZipStreamCtl.stateful) !== 0;
  const finish = !stateful || (sqe.dw7 & ZipStreamCtl.finish) !== 0;
  const fresh = stateful && (sqe.dw7 & ZipStreamCtl.newStream) !== 0;
  let stream = keep && !fresh ? options.contexts!.get(key) : undefined;
  if (!stream || (stream instanceof CompressStream) !== compressing || stream.format !== format) {
    stream = compressing ? new CompressStream(format, level) : new DecompressStream(format);
  }
  let consumed = 0, produced = 0;
  let status: number = ZipStatus.ok;
  const spin = loopGuard("zip engine request");
  for (;;) {
    spin();
    const room = Math.min(dmaChunk, sqe.destAvailOut - produced);
    const rest = input.subarray(consumed);
    staging ??= new Uint8Array(dmaChunk);
    const dest = staging.subarray(0, room);
    const r = stream instanceof CompressStream
      ? stream.pushInto(rest, dest, finish ? "finish" : "sync")
      : stream.pushInto(rest, dest, finish);
    consumed += r.consumed;
    if (r.produced > 0) {
      const fault = dma.write(sqe.destAddr + produced, r.output);
      if (fault) {
        options.contexts?.delete(key);
        return {
          sqe: complete(sqe, consumed, produced, ZipStatus.dmaWriteFault),
          fault: fault.fault,
        };
      }
      produced += r.produced;
    }
    status = r.status;
    // 0x0e for a chunk is only the job's status when the whole destination is used.
    if (!isZipContinuable(status) || produced === sqe.destAvailOut) break;
  }
  const continues = isZipContinuable(status) || (!finish && status === ZipStatus.ok);
  if (keep && continues) options.contexts!.set(key, stream);
  else if (keep) options.contexts!.delete(key);
  return { sqe: complete(sqe, consumed, produced, status as ZipStatusCode) };
}
