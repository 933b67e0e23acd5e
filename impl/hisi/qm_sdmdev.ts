/**
 * The HiSilicon QM as an sdmdev vendor (RFCv2 6/7: `hisi_qm_get_queue`, `hisi_qm_put_queue`,
 * `hisi_qm_start_queue`, `hisi_qm_stop_queue`, `hisi_qm_mmap`, `qm_register_sdmdev`) over a
 * minimal stand-in for the QM driver's qp allocator and queue control (RFCv2 4/7:
 * `hisi_qm_create_qp`, `hisi_qm_start_qp`, `hisi_qm_release_qp`) and for the device running
 * a started qp. The stand-in keeps only what sdmdev's outcomes depend on: first-free qp
 * allocation, one SQ+CQ ring per started qp, the PASID, the pending update, and in-flight
 * ring accesses of the hardware so that a stop can quiesce them.
 *
 * Quirks: `stopQueueNoop` (v1 `hisi_qm_stop_queue` is empty), `waitWithoutMaskNotify` and
 * `availableInstancesAlwaysZero` (the v1 `qm_ops` lack `mask_notify` and
 * `get_available_instances`). A start on a running qp (sdmdev's `reopenRestartsQueue`)
 * allocates a new ring and leaks the old one, as `hisi_qm_start_qp` does.
 *
 * @module
 */
import { type QpOwner, RING_SIZE } from "../../spec/sdmdev.ts";
import { type Errno, PAGE_SIZE, type Ret } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import type { Frame } from "../mem/phys.ts";
import type { SdmdevQueue, SdmdevVendorOps } from "../sdmdev/queue.ts";

/** An SQ+CQ ring buffer (`qp->scqe`, `dma_alloc_coherent`). */
export class RingBuffer {
  /** Buffer id, never reused. */
  readonly id: number;
  /** Bytes. */
  readonly size: number;
  /** Its pages. */
  readonly frames: readonly Frame[];

  /** A ring over `frames`. */
  constructor(id: number, size: number, frames: readonly Frame[]) {
    this.id = id;
    this.size = size;
    this.frames = frames;
  }
}

/** Ring buffer memory of every QM (`qm_init_q_buffer`/`qm_uninit_q_buffer`); ids never reused. */
export class RingAllocator {
  /** Id of the next ring. */
  next = 1;
  #k: Kernel;

  /** An allocator over the kernel's memory. */
  constructor(kernel: Kernel) {
    this.#k = kernel;
  }

  /** Allocates a zeroed ring of {@link RING_SIZE} bytes. */
  alloc(): RingBuffer {
    const id = this.next++;
    const frames = Array.from(
      { length: Math.ceil(RING_SIZE / PAGE_SIZE) },
      (_, i) => this.#k.phys.alloc({ kind: "kernel", buffer: id, offset: i * PAGE_SIZE }),
    );
    return new RingBuffer(id, RING_SIZE, frames);
  }

  /** Frees a ring's pages. */
  free(ring: RingBuffer): void {
    for (const f of ring.frames) this.#k.phys.free(f.pfn);
  }
}

/**
 * The stand-in pool's `struct hisi_qp`, as far as sdmdev and the kernel users need it (not
 * `spec/qm.ts`'s `QmQp`, the QM driver's state).
 */
export class PoolQp {
  /** `queue_id`. */
  readonly qn: number;
  /** Ghost: who took it. */
  readonly owner: QpOwner;
  /** `scqe`: the ring while started. */
  ring: RingBuffer | null = null;
  /** The PASID in its SQC while started. */
  pasid: number | null = null;
  /** The hardware runs the queue (fetches SQEs, writes CQEs). */
  running = false;
  /** Ring accesses of the hardware in flight. */
  inflight = 0;
  /** An update was reported and not yet consumed (`is_q_updated`). */
  updated = false;
  /** The queue's notification is masked (`mask_notify`). */
  masked = false;

  /** A qp just taken from the bitmap. */
  constructor(qn: number, owner: QpOwner) {
    this.qn = qn;
    this.owner = owner;
  }
}

/** One QM's queue pairs: `qp_bitmap`/`qp_array` and the queue control of RFCv2 4/7. */
export class QmQueues {
  /** `qp_num`. */
  readonly qpNum: number;
  /** `qp_array`: taken qps by number. */
  readonly qps: Map<number, PoolQp> = new Map();
  #k: Kernel;
  #rings: RingAllocator;

  /** A QM with `qpNum` free qps. */
  constructor(kernel: Kernel, rings: RingAllocator, qpNum: number) {
    this.#k = kernel;
    this.#rings = rings;
    this.qpNum = qpNum;
  }

  /** Free qps. */
  get free(): number {
    return this.qpNum - this.qps.size;
  }

  /** `hisi_qm_create_qp`: the first free qp, or EBUSY. */
  createQp(owner: QpOwner): PoolQp | Errno {
    for (let qn = 0; qn < this.qpNum; qn++) {
      if (this.qps.has(qn)) continue;
      const qp = new PoolQp(qn, owner);
      this.qps.set(qn, qp);
      return qp;
    }
    return "EBUSY";
  }

  /** `hisi_qm_start_qp`: a fresh ring, the SQC/CQC through the mailbox, the hardware runs it. */
  startQp(qp: PoolQp, pasid: number): void {
    qp.ring = this.#rings.alloc();
    qp.pasid = pasid;
    qp.updated = false;
    qp.running = true;
  }

  /** Stops the hardware on `qp`, waits for its ring accesses in flight, then frees the ring. */
  async stopQp(qp: PoolQp): Promise<void> {
    qp.running = false;
    const idle = () => qp.inflight === 0;
    if (!idle()) await this.#k.sched.waitUntil("qm.stop:drain", idle);
    this.#freeRing(qp);
  }

  /** `hisi_qm_release_qp`: back to the bitmap, its ring freed (`qm_uninit_q_buffer`). */
  releaseQp(qp: PoolQp): void {
    if (this.qps.get(qp.qn) === qp) this.qps.delete(qp.qn);
    qp.running = false;
    this.#freeRing(qp);
  }

  #freeRing(qp: PoolQp): void {
    if (qp.ring) this.#rings.free(qp.ring);
    qp.ring = null;
    qp.pasid = null;
    qp.updated = false;
  }

  /**
   * The device completes one request on sdmdev queue `qn` and raises its event (`event_cb`
   * → `vfio_sdmdev_wake_up`): it reads the ring, then marks the queue updated. EINVAL when
   * `qn` is not a running sdmdev queue (a stopped queue's hardware reports nothing). A ring
   * access to freed memory is logged as a fault.
   */
  async complete(qn: number): Promise<Ret> {
    const qp = this.qps.get(qn);
    if (!qp || !("mdev" in qp.owner) || !qp.running || !qp.ring) return { err: "EINVAL" };
    const ring = qp.ring;
    qp.inflight++;
    await this.#k.sched.point("qm.hw:sqe-fetch");
    qp.inflight--;
    if (ring.frames[0].owner === null) {
      this.#k.emit({ fault: "dma-to-freed-frame", pfn: ring.frames[0].pfn, qp: qn });
    }
    qp.updated = true;
    return { ok: 0 };
  }

  /** The device reports an update on qp `qn` (the interrupt path of a WAIT's device future). */
  report(qn: number): void {
    const qp = this.qps.get(qn);
    if (qp) qp.updated = true;
  }

  /** Ghost: owners of the taken qps. */
  owners(): Map<number, QpOwner> {
    const out = new Map<number, QpOwner>();
    for (const qp of this.qps.values()) out.set(qp.qn, qp.owner);
    return out;
  }
}

/** A callback of `qm_ops` a test may leave out to reach sdmdev's handling of its absence. */
export type QmOptionalOp = "putQueue" | "startQueue";

function qpOf(q: SdmdevQueue): PoolQp {
  if (!(q.priv instanceof PoolQp)) throw new Error(`sdmdev ${q.mdev.uuid} has no QM qp`);
  return q.priv;
}

/**
 * `qm_ops` (RFCv2 6/7) for one QM: the vendor callbacks sdmdev calls. `omit` leaves
 * callbacks out (tests of sdmdev's checks for absent callbacks); quirks leave out what v1
 * left out.
 */
export function qmSdmdevOps(
  kernel: Kernel,
  qm: QmQueues,
  omit: readonly QmOptionalOp[] = [],
): SdmdevVendorOps {
  const { quirks } = kernel;
  const ops: SdmdevVendorOps = {
    getQueue(q) {
      const qp = qm.createQp({ mdev: q.mdev.uuid });
      if (typeof qp === "string") return qp;
      q.priv = qp;
      return undefined;
    },
    putQueue: (q) => qm.releaseQp(qpOf(q)),
    startQueue(q) {
      qm.startQp(qpOf(q), q.pasid);
      return undefined;
    },
    stopQueue: (q) => quirks.stopQueueNoop ? Promise.resolve() : qm.stopQp(qpOf(q)),
    isQUpdated(q) {
      const qp = qpOf(q);
      const updated = qp.updated;
      qp.updated = false;
      return updated;
    },
    ...(!quirks.waitWithoutMaskNotify && {
      maskNotify(q: SdmdevQueue, mask: number) {
        qpOf(q).masked = mask !== 0;
      },
    }),
    mmap(q, pgoff, len) {
      const region = pgoff & 0xf;
      if (region === 0) return len > PAGE_SIZE ? "EINVAL" : { region, ring: null };
      const ring = qpOf(q).ring;
      if (region !== 1 || len > (ring?.size ?? 0)) return "EINVAL";
      return { region, ring: ring!.id };
    },
    ...(!quirks.availableInstancesAlwaysZero && { getAvailableInstances: () => qm.free }),
    hw(q) {
      const qp = qpOf(q);
      return { qn: qp.qn, ring: qp.ring?.id ?? null, pasid: qp.pasid, updated: qp.updated };
    },
    pool: () => ({ qpNum: qm.qpNum, owners: qm.owners() }),
  };
  for (const name of omit) delete ops[name];
  return ops;
}
