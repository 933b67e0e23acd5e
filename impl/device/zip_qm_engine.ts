/**
 * The ZIP engine behind the QM device (RFCv2 5/7): the QM hands each SQE of a ZIP queue to
 * {@link executeZipSqe}, with DMA through the queue's IOMMU translation and the queue's
 * alg_type (0 compress, 1 decompress); consumed, produced and the status are written back into
 * the SQE, and a DMA fault is logged as the device would report it.
 *
 * @module
 */
import type { Kernel } from "../kernel.ts";
import type { CompressStream } from "../zip/compress.ts";
import type { DecompressStream } from "../zip/decompress.ts";
import type { EnginePort, QmEngine } from "./qm_device.ts";
import { decodeZipSqe, encodeZipSqe, executeZipSqe, zipSqeStatus } from "./zip_engine.ts";

/** A {@link QmEngine} that runs ZIP SQEs. */
export class ZipQmEngine implements QmEngine {
  readonly #k: Kernel;
  readonly #level: number | undefined;
  readonly #contexts = new Map<number, CompressStream | DecompressStream>();

  /** An engine logging its faults to `kernel`, compressing at `level` (0-9, default 6). */
  constructor(kernel: Kernel, level?: number) {
    this.#k = kernel;
    this.#level = level;
  }

  /** Executes one ZIP SQE in place (stateful SQEs on the engine's contexts); its status. */
  execute(sqe: Uint8Array, port: EnginePort): number {
    const r = executeZipSqe(decodeZipSqe(sqe), port.dma, {
      algType: port.algType,
      level: this.#level,
      contexts: this.#contexts,
    });
    sqe.set(encodeZipSqe(r.sqe));
    if (r.fault) this.#k.emit({ fault: "zip-dma", detail: r.fault });
    return zipSqeStatus(r.sqe);
  }
}
