/**
 * The HiSilicon QM as a uacce parent driver (upstream `hisi_qm_uacce_get_queue`,
 * `_put_queue`, `_start_queue`, `_stop_queue`, `_mmap`, `qm_alloc_uacce`), over the QM driver
 * itself ({@link HisiQm}), as qm_sdmdev.ts plugs the same driver into sdmdev: a uacce queue is
 * one of the QM's queue pairs, its DMA memory (the DUS region: SQ and CQ, upstream's
 * `qp->qdma`) allocated with the queue pair at `get_queue` and run by the hardware from
 * `start_queue` on, its doorbell page the MMIO region.
 *
 * @module
 */
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import { UACCE_ALGORITHMS, UACCE_API, UACCE_DEV_SVA } from "../../spec/uacce.ts";
import type { QmDevice } from "../device/qm_device.ts";
import type { IommuCore } from "../iommu/core.ts";
import type { Kernel } from "../kernel.ts";
import type { Frame } from "../mem/phys.ts";
import type { QmFunction } from "../platform.ts";
import type { UacceBacking, UacceInterface, UacceOps, UacceQueue } from "../uacce/queue.ts";
import type { HisiQm, HisiQp } from "./qm.ts";

function qpOf(q: UacceQueue): HisiQp {
  const qp = q.priv as HisiQp | undefined;
  if (!qp?.qdma) throw new Error(`uacce queue of process ${q.by} has no QM queue pair`);
  return qp;
}

/** Bytes of a queue's DUS region: its SQ+CQ memory in whole pages. */
export function dusBytes(qm: HisiQm): number {
  return Math.ceil(qm.ringBytes / PAGE_SIZE) * PAGE_SIZE;
}

/** The QM's `uacce_ops`: queues from `qm`, doorbell pages from `device`. */
export function qmUacceOps(
  kernel: Kernel,
  iommu: IommuCore,
  qm: HisiQm,
  device: QmDevice,
): UacceOps {
  /** The pages of each queue pair's DMA memory, as `dma_alloc_coherent` returned them. */
  const pages = new WeakMap<HisiQp, readonly Frame[]>();
  const dusPages = (qp: HisiQp) => pages.get(qp)!;
  /** Queue pairs an event arrived for that `is_q_updated` has not consumed. */
  const updated = new WeakSet<HisiQp>();
  return {
    async getQueue(q) {
      const qdma = qm.allocCoherent(qm.ringBytes);
      if (typeof qdma === "string") return qdma;
      const qp = qm.createQp(q.by);
      if (typeof qp === "string") {
        await qm.freeCoherent(qdma);
        return qp;
      }
      qp.qdma = qdma;
      qp.onEvent = () => updated.add(qp);
      pages.set(qp, iommu.buffers.get(qdma.buffer)!.frames);
      q.priv = qp;
      return undefined;
    },
    async putQueue(q) {
      const qp = qpOf(q);
      if (qp.freed) {
        kernel.emit({ fault: "use-after-free", where: "hisi_qm_uacce_put_queue", qn: qp.qn });
        return;
      }
      await qm.releaseQp(qp);
      await qm.freeCoherent(qp.qdma!);
    },
    startQueue: (q) => qm.startQp(qpOf(q), q.pasid),
    stopQueue: (q) => qm.stopQp(qpOf(q)),
    isQUpdated: (q) => updated.delete(qpOf(q)),
    setQpCtx(q, qcType) {
      const qp = qpOf(q);
      return qcType === qp.algType ? qp.qn : "EINVAL"; // qc_type is fixed at get_queue here
    },
    mmap(q, region, size): UacceBacking | Errno {
      const qp = qpOf(q);
      if (region === 0) {
        if (size !== PAGE_SIZE) return "EINVAL";
        return { kind: "mmio", regs: device.queueMmio(qp.qn) };
      }
      if (size !== dusBytes(qm)) return "EINVAL";
      return { kind: "pages", frames: dusPages(qp) };
    },
    getAvailableInstances: () => qm.freeQps,
    hw(q) {
      const qp = qpOf(q);
      return { qn: qp.qn, running: qp.started, dus: dusPages(qp).every((f) => f.owner !== null) };
    },
  };
}

/**
 * `qm_alloc_uacce` for QM function `fn`: the interface it registers (`hisi_zip`, SVA asked for
 * if `sva`, the QM's api and algorithms, one doorbell page, the queue's DUS).
 */
export function qmUacceInterface(
  kernel: Kernel,
  iommu: IommuCore,
  fn: QmFunction,
  sva: boolean,
): UacceInterface {
  return {
    name: "hisi_zip",
    flags: sva ? UACCE_DEV_SVA : 0,
    api: UACCE_API,
    algorithms: UACCE_ALGORITHMS,
    mmioSize: PAGE_SIZE,
    dusSize: dusBytes(fn.qm),
    ops: qmUacceOps(kernel, iommu, fn.qm, fn.device),
  };
}
