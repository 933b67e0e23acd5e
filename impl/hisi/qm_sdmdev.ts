/**
 * The HiSilicon QM as an sdmdev vendor (RFCv2 6/7: `hisi_qm_get_queue`, `hisi_qm_put_queue`,
 * `hisi_qm_start_queue`, `hisi_qm_stop_queue`, `hisi_qm_is_q_updated`, `hisi_qm_mmap`,
 * `qm_register_sdmdev`), over the QM driver itself ({@link HisiQm}): an sdmdev's queue is one
 * of the QM's queue pairs, taken from the same bitmap as the kernel crypto users', started
 * with the opener's PASID, its SQ+CQ buffer allocated by the QM and reached by the device
 * through the IOMMU. The IRQ thread's `event_cb` for the queue marks it updated.
 *
 * Quirks: `stopQueueNoop` (v1 `hisi_qm_stop_queue` is empty: the queue keeps running after
 * the file is released), `waitWithoutMaskNotify` and `availableInstancesAlwaysZero` (the v1
 * `qm_ops` lack `mask_notify` and `get_available_instances`).
 *
 * @module
 */
import type { QpOwner } from "../../spec/sdmdev.ts";
import { PAGE_SIZE } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import type { SdmdevQueue, SdmdevVendorOps } from "../sdmdev/queue.ts";
import type { QmDevice } from "../device/qm_device.ts";
import type { CoherentBuffer, HisiQm, HisiQp } from "./qm.ts";
import type { HisiZipCrypto } from "./zip.ts";

/**
 * Ghost names of the SQ+CQ buffers sdmdev queues were started with, in start order from 1
 * across every QM (the spec's ring ids): observation only, they never influence behaviour.
 */
export class RingNames {
  /** The name the next started ring gets. */
  next = 1;
  readonly #names = new WeakMap<CoherentBuffer, number>();

  /** Names a ring just started. */
  add(ring: CoherentBuffer): void {
    this.#names.set(ring, this.next++);
  }

  /** The name of a ring, or null. */
  of(ring: CoherentBuffer | null): number | null {
    return ring === null ? null : this.#names.get(ring) ?? null;
  }
}

/** What `q->priv` holds: the queue pair and the queue's notification state. */
class SdmdevQp {
  /** The QM's queue pair. */
  readonly qp: HisiQp;
  /** The PASID it was last started with. */
  pasid = 0;
  /** An event arrived and was not yet consumed by `is_q_updated`. */
  updated = false;
  /** The queue's notification is masked (`mask_notify`). */
  masked = false;

  /** The priv of a queue that took `qp`. */
  constructor(qp: HisiQp) {
    this.qp = qp;
  }
}

function privOf(q: SdmdevQueue): SdmdevQp {
  if (!(q.priv instanceof SdmdevQp)) throw new Error(`sdmdev ${q.mdev.uuid} has no QM qp`);
  return q.priv;
}

/** A callback of `qm_ops` a test may leave out to reach sdmdev's handling of its absence. */
export type QmOptionalOp = "putQueue" | "startQueue";

/** The QM of one parent: its driver, its kernel crypto users, and the ring names. */
export interface QmVendor {
  /** The QM driver. */
  readonly qm: HisiQm;
  /** The hardware (its doorbell pages are what region 0 maps). */
  readonly device: QmDevice;
  /** The ZIP driver's crypto transforms on the same queue pairs. */
  readonly crypto: HisiZipCrypto;
  /** Ghost ring names, shared by every QM of the machine. */
  readonly rings: RingNames;
}

/**
 * `qm_ops` (RFCv2 6/7) for one QM: the vendor callbacks sdmdev calls. `omit` leaves
 * callbacks out (tests of sdmdev's checks for absent callbacks); quirks leave out what v1
 * left out.
 */
export function qmSdmdevOps(
  kernel: Kernel,
  { qm, device, crypto, rings }: QmVendor,
  omit: readonly QmOptionalOp[] = [],
): SdmdevVendorOps {
  const { quirks } = kernel;
  const ops: SdmdevVendorOps = {
    getQueue(q) {
      const qp = qm.createQp({ mdev: q.mdev.uuid });
      if (typeof qp === "string") return qp;
      const priv = new SdmdevQp(qp);
      qp.onEvent = () => priv.updated = true;
      q.priv = priv;
      return undefined;
    },
    putQueue: (q) =>
      quirks.removeWhileOpenFreesRing
        ? qm.releaseQpUnstopped(privOf(q).qp)
        : qm.releaseQp(privOf(q).qp),
    async startQueue(q) {
      const priv = privOf(q);
      const r = await qm.startQp(priv.qp, q.pasid);
      if (r !== undefined) return r;
      priv.pasid = q.pasid;
      priv.updated = false;
      rings.add(priv.qp.scqe!);
      return undefined;
    },
    stopQueue: (q) => quirks.stopQueueNoop ? Promise.resolve() : qm.stopQp(privOf(q).qp),
    isQUpdated(q) {
      const priv = privOf(q);
      const updated = priv.updated;
      priv.updated = false;
      return updated;
    },
    ...(!quirks.waitWithoutMaskNotify && {
      maskNotify(q: SdmdevQueue, mask: number) {
        privOf(q).masked = mask !== 0;
      },
    }),
    mmap(q, pgoff, len) {
      const region = pgoff & 0xf;
      const qp = privOf(q).qp;
      if (region === 0) {
        return len > PAGE_SIZE
          ? "EINVAL"
          : { region, ring: null, backing: device.queueMmio(qp.qn) };
      }
      const scqe = qp.scqe;
      const ringPages = Math.ceil(qm.ringBytes / PAGE_SIZE) * PAGE_SIZE;
      if (region !== 1 || scqe === null || len > ringPages) return "EINVAL";
      return { region, ring: rings.of(scqe), backing: scqe.mem };
    },
    ...(!quirks.availableInstancesAlwaysZero && { getAvailableInstances: () => qm.freeQps }),
    hw(q) {
      const { qp, pasid, updated } = privOf(q);
      const ring = rings.of(qp.scqe);
      return { qn: qp.qn, ring, pasid: ring === null ? null : pasid, updated };
    },
    pool() {
      const owners = new Map<number, QpOwner>();
      for (const qp of qm.qps) {
        if (qp === null) continue;
        const { owner } = qp;
        if (typeof owner === "object") owners.set(qp.qn, owner);
        else owners.set(qp.qn, { tfm: crypto.tfmOf(qp.qn) ?? 0 }); // 0: no transform's
      }
      return { qpNum: qm.config.qpNum, owners };
    },
  };
  for (const name of omit) delete ops[name];
  return ops;
}
