/**
 * The ZIP sample (RFCv2 7/7 `test_hisi_zip.c`) through the whole simulated stack: a process
 * requests a queue, shares an input and an output buffer with the device, sends one ZIP SQE
 * for the whole input, the QM device runs the ZIP engine (DMA through the IOMMU), the process
 * receives the completion and writes the output out, then releases everything.
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
import type { QmMachine } from "../qm/machine.ts";
import { WdQueue } from "./wd.ts";

/** Largest input the sample takes (its 16 MiB limit). */
export const SAMPLE_MAX_INPUT = 16 * 1024 * 1024;

/** Output room of a decompression (twice the sample's 8 MiB `dest_avail_out`). */
export const SAMPLE_MAX_OUTPUT = 16 * 1024 * 1024;

/** The sample's process and where it maps its buffers. */
const PID = 1;
const SRC = 0x4000_0000;
const DST = 0x8000_0000;

/** What a run asks for. */
export interface SampleJob {
  /** The bytes to compress or decompress. */
  readonly input: Uint8Array;
  /** Framing. */
  readonly format: "zlib" | "gzip";
  /** Decompress instead of compress. */
  readonly decompress: boolean;
}

/**
 * Runs the sample on `machine` (whose device runs the ZIP engine): the output bytes, or EINVAL
 * (empty or oversized input, invalid stream), ENOSPC (output past its room), or the errno of
 * a failed queue request or share.
 */
export async function runZipSample(
  machine: QmMachine,
  job: SampleJob,
): Promise<Uint8Array | Errno> {
  const { input, format, decompress } = job;
  if (input.length === 0 || input.length > SAMPLE_MAX_INPUT) return "EINVAL";
  const headerOnly = !decompress && format === "zlib" && machine.kernel.quirks.sampleZlibHeaderOnly;
  const algType = decompress ? ZipAlgType.decompress : ZipAlgType.compress;
  const q = await WdQueue.request(machine, PID, algType);
  if (typeof q === "string") return q;
  try {
    const room = decompress ? SAMPLE_MAX_OUTPUT : compressBound(input.length, "gzip");
    q.write(SRC, input);
    const shared = q.memShare(SRC, input.length) ?? q.memShare(DST, room);
    if (shared !== undefined) return shared;
    const sqe = encodeZipSqe({
      ...emptyZipSqe,
      inputDataLength: input.length,
      dw9: headerOnly ? ZipRequestType.deflate : ZipRequestType[format],
      destAvailOut: room,
      sourceAddr: SRC,
      destAddr: DST,
    });
    const sent = await q.send(sqe);
    if (typeof sent === "string") return sent;
    await machine.device.step(q.qn);
    await machine.qm.irqThread(); // the interrupt: the kernel drains the EQ, wakes the waiter
    const done = await q.recv();
    if (typeof done === "string") return done;
    const status = done.status;
    const ok = decompress ? status === ZipStatus.decompressEnd : isZipSuccess(status);
    if (!ok) return status === ZipStatus.destInsufficient ? "ENOSPC" : "EINVAL";
    const output = q.read(DST, decodeZipSqe(done.sqe).produced);
    return headerOnly ? Uint8Array.of(0x78, 0x9c, ...output) : output;
  } finally {
    await q.release();
  }
}
