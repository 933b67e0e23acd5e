/**
 * The QM kernel driver (RFCv2 4/7 `qm.c`): boot (`hisi_qm_start`), the queue-pair allocator,
 * start and release of a queue pair, the kernel send path, the IRQ thread, the interrupt mask,
 * and the mailbox. Callers validate arguments (the spec's EINVAL/ENOENT/EPERM); what is here
 * is what the driver itself decides.
 *
 * Memory: the EQ, the EQC, the SQC and CQC base tables, a mailbox scratch buffer and every
 * queue pair's SQ+CQ buffer (`scqe`) are coherent DMA buffers of the QM's PCI group; the CPU
 * reaches them directly ({@link QmMemory}), the device through the IOMMU.
 *
 * @module
 */
import {
  type Doorbell,
  DOORBELL_CMD,
  encodeDoorbell,
  MAILBOX_CMD,
  type QmCompletion,
  type QmConfig,
  type QmIrqOk,
  type QmOwner,
} from "../../spec/qm.ts";
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import {
  encodeContext,
  encodeMailbox,
  ownerPasid,
  QM_CQE_SIZE,
  QM_DOORBELL,
  QM_EQ_INT_MASK,
  QM_EQ_INT_SOURCE,
  QM_EQE_SIZE,
  QM_EXEC_QUEUE,
  QM_MAILBOX,
  QM_MB_BUSY,
  QM_QC_SIZE,
  QM_QUEUE_STOP,
  QM_SQE_SIZE,
  type QmDevice,
  QmMemory,
  type QmMmio,
  QpRings,
  ringForward,
  RingPos,
  writeDoorbell,
} from "../device/qm_device.ts";
import type { IommuCore, IommuGroup } from "../iommu/core.ts";
import { type Kernel, Mutex } from "../kernel.ts";
import { loopGuard } from "../runaway.ts";

/** Polls of the mailbox busy bit before giving up (`qm_mb`: 10 tries). */
const MB_RETRIES = 10;
/** Polls `hisi_qp_send` waits for its completion (`wait_for_completion_timeout`, 100 jiffies). */
const SEND_TIMEOUT_POLLS = 100;

/** A `dma_alloc_coherent` buffer of the QM's device: its IOVA and the memory behind it. */
export interface CoherentBuffer {
  /** IOVA in the device's default domain. */
  readonly iova: number;
  /** The IOMMU core's id of the allocation. */
  readonly buffer: number;
  /** The memory, as the CPU sees it. */
  readonly mem: QmMemory;
}

/**
 * Who a queue pair serves: the kernel (a crypto user, `req_cb`), a user process that drives
 * it directly, or the sdmdev queue of an mdev (`event_cb`; its opener changes, so the PASID
 * comes with each start).
 */
export type QpUser = QmOwner | { readonly mdev: string };

/** The PASID a queue pair's contexts carry by default: its owner's; 0 for an mdev's queue. */
function userPasid(user: QpUser): number {
  return typeof user === "object" ? 0 : ownerPasid(user);
}

/** A queue pair (`struct hisi_qp`). */
export class HisiQp {
  /** Queue number (`queue_id`). */
  readonly qn: number;
  /** Who it serves. */
  readonly owner: QpUser;
  /** `alg_type`: what the engine does with this queue's SQEs (ZIP: 0 compress, 1 decompress). */
  readonly algType: number;
  /** The SQ+CQ buffer (`scqe`), once started. */
  scqe: CoherentBuffer | null = null;
  /**
   * The queue's own SQ+CQ memory, allocated by its user before the start (uacce's DUS region,
   * upstream's `qp->qdma`): the start runs the queue on it, and stop and release leave it to
   * the user to free. Null: the start allocates `scqe` and stop or release free it.
   */
  qdma: CoherentBuffer | null = null;
  /** The kernel's ring status over `scqe` (`qp_status`), once started. */
  rings: QpRings | null = null;
  /** Times the IRQ thread woke this user queue's waiters (`vfio_sdmdev_wake_up`). */
  wakeups = 0;
  /** `is_sq_full`, the seed's latched full flag (quirk `kernelSqFullNeverCleared`). */
  isSqFull = false;
  /** `qp->completion`'s done count (quirk `sendIgnoresCompletionTimeout`). */
  completion = 0;
  /** `qp_lock`: serializes senders on this queue pair (as later upstream code does). */
  readonly lock: Mutex = new Mutex();
  /** Freed by `hisi_qm_release_qp`: any later use is a use-after-free. */
  freed = false;
  /** Starts of this queue pair under way (waiting for or holding `qps_lock`). */
  starts = 0;
  /** `event_cb` of a user queue: what the IRQ thread calls when the queue has an event. */
  onEvent: (() => void) | null = null;

  /** A fresh, not started queue pair (`hisi_qm_create_qp`). */
  constructor(qn: number, owner: QpUser, algType = 0) {
    this.qn = qn;
    this.owner = owner;
    this.algType = algType;
  }

  /** Whether `hisi_qm_start_qp` loaded its contexts. */
  get started(): boolean {
    return this.rings !== null;
  }
}

/** One QM function's driver state (`struct qm_info`). */
export class HisiQm {
  /** Sizes. */
  readonly config: QmConfig;
  /** Allocated queue pairs by number (`qp_bitmap` with the objects). */
  readonly qps: (HisiQp | null)[];
  /** Started queue pairs by number (`qp_array`), what the IRQ thread looks EQEs up in. */
  readonly qpArray: (HisiQp | null)[];
  /** The IRQ thread's EQ head; its phase is the expected one (`eq_head`, EQC phase bit). */
  readonly eqHead: RingPos;
  /** The EQ (`qm->eqe`). */
  readonly eqe: CoherentBuffer;
  #eqPublished = 0;
  readonly #k: Kernel;
  /** `qps_lock`: queue pair start and release. */
  readonly #qpsLock = new Mutex();
  /** `mailbox_lock`: one mailbox command at a time. */
  readonly #mbLock = new Mutex();
  /** The threaded IRQ handler runs one instance at a time. */
  readonly #irqLock = new Mutex();
  readonly #iommu: IommuCore;
  readonly #group: IommuGroup;
  readonly #mmio: QmMmio;
  readonly #sqcBt: CoherentBuffer;
  readonly #cqcBt: CoherentBuffer;
  readonly #scratch: CoherentBuffer;

  /**
   * `hisi_qm_init` + `hisi_qm_start`: allocates EQ, EQC, the context base tables and a mailbox
   * scratch buffer, loads EQC and base tables through the mailbox (idle at boot), unmasks the
   * EQ interrupt.
   */
  constructor(
    kernel: Kernel,
    iommu: IommuCore,
    group: IommuGroup,
    device: QmDevice,
    config: QmConfig,
  ) {
    this.#k = kernel;
    this.#iommu = iommu;
    this.#group = group;
    this.config = config;
    this.#mmio = device.mmio("kernel");
    this.qps = new Array<HisiQp | null>(config.qpNum).fill(null);
    this.qpArray = new Array<HisiQp | null>(config.qpNum).fill(null);
    this.eqHead = new RingPos(config.eqDepth);
    const boot = (bytes: number) => {
      const b = this.allocCoherent(bytes);
      if (typeof b === "string") throw new Error(`QM boot: dma_alloc_coherent failed: ${b}`);
      return b;
    };
    const eqc = boot(QM_QC_SIZE);
    this.eqe = boot(QM_EQE_SIZE * config.eqDepth);
    this.#sqcBt = boot(QM_QC_SIZE * config.qpNum);
    this.#cqcBt = boot(QM_QC_SIZE * config.qpNum);
    this.#scratch = boot(QM_QC_SIZE);
    const ctx = { base: this.eqe.iova, depth: config.eqDepth, pasid: 0, w12: 1 };
    eqc.mem.write(0, encodeContext("eqc", ctx));
    this.#mbWrite(MAILBOX_CMD.EQC, 0, eqc.iova, false);
    this.#mbWrite(MAILBOX_CMD.SQC_BT, 0, this.#sqcBt.iova, false);
    this.#mbWrite(MAILBOX_CMD.CQC_BT, 0, this.#cqcBt.iova, false);
    this.#mmio.writel(QM_EQ_INT_MASK, 0);
  }

  /** The queue pair `qn` names: EINVAL for a bad number, ENOENT if not allocated. */
  lookup(qn: number): HisiQp | Errno {
    if (!Number.isInteger(qn) || qn < 0 || qn >= this.qps.length) return "EINVAL";
    return this.qps[qn] ?? "ENOENT";
  }

  /** Queue pairs not allocated. */
  get freeQps(): number {
    return this.qps.filter((q) => q === null).length;
  }

  /** `hisi_qm_create_qp`: the first free queue number, or EBUSY. */
  createQp(owner: QpUser, algType = 0): HisiQp | "EBUSY" {
    const qn = this.qps.indexOf(null);
    if (qn < 0) return "EBUSY";
    const qp = new HisiQp(qn, owner, algType);
    this.qps[qn] = qp;
    return qp;
  }

  /** Bytes of one queue pair's SQ+CQ buffer (`scqe`). */
  get ringBytes(): number {
    return QM_SQE_SIZE * this.config.sqDepth + QM_CQE_SIZE * this.config.cqDepth;
  }

  /**
   * `hisi_qm_start_qp`: allocates the SQ+CQ buffer, loads SQC and CQC through the mailbox
   * (EBUSY when its busy bit stays set; the buffer is freed and the queue stays stopped).
   * The contexts carry `pasid` (default: the owner's; an mdev's queue passes its opener's).
   * A start of a started queue pair allocates a new buffer and leaks the old one, as the
   * seed's does.
   */
  async startQp(qp: HisiQp, pasid?: number): Promise<Errno | undefined> {
    qp.starts++;
    try {
      return await this.#qpsLock.hold(
        this.#k.sched,
        "qm.start:qps-lock",
        () => this.#startQpLocked(qp, pasid ?? userPasid(qp.owner)),
      );
    } finally {
      qp.starts--;
    }
  }

  async #startQpLocked(qp: HisiQp, pasid: number): Promise<Errno | undefined> {
    const { sqDepth, cqDepth } = this.config;
    const scqe = qp.qdma ?? this.allocCoherent(this.ringBytes);
    if (typeof scqe === "string") return scqe;
    const at = qp.qn * QM_QC_SIZE;
    const sqc = { base: scqe.iova, depth: sqDepth, pasid, w12: qp.qn, algType: qp.algType };
    this.#sqcBt.mem.write(at, encodeContext("sqc", sqc));
    let err = await this.#qmMb(MAILBOX_CMD.SQC, this.#sqcBt.iova + at, qp.qn);
    if (err === undefined) {
      await this.#k.sched.point("qm.start:sqc-loaded");
      const cqc = { base: scqe.iova + QM_SQE_SIZE * sqDepth, depth: cqDepth, pasid, w12: 1 };
      this.#cqcBt.mem.write(at, encodeContext("cqc", cqc));
      err = await this.#qmMb(MAILBOX_CMD.CQC, this.#cqcBt.iova + at, qp.qn);
    }
    if (err !== undefined) {
      this.#stopQueue(qp.qn);
      if (scqe !== qp.qdma) await this.#iommu.dmaFree(this.#group, scqe.iova);
      return err;
    }
    qp.scqe = scqe;
    qp.rings = new QpRings(scqe.mem, sqDepth, cqDepth);
    this.qpArray[qp.qn] = qp;
    return undefined;
  }

  /**
   * Stops a started queue pair and frees its SQ+CQ buffer; it stays allocated (what an sdmdev
   * queue's `stop_queue` needs, and later upstream's `hisi_qm_stop_qp`). The request the
   * device is executing on it completes first ({@link QM_EXEC_QUEUE}); once the device is
   * told to stop, a pending interrupt's IRQ thread pass runs.
   */
  stopQp(qp: HisiQp): Promise<void> {
    if (this.#idle(qp)) return Promise.resolve();
    return this.#qpsLock.hold(this.#k.sched, "qm.stop:qps-lock", async () => {
      const scqe = qp.scqe;
      if (scqe === null) return;
      const idle = () => this.#mmio.readl(QM_EXEC_QUEUE) !== qp.qn + 1;
      if (!idle()) await this.#k.sched.waitUntil("qm.stop:drain", idle);
      this.#stopQueue(qp.qn);
      // flush_workqueue (upstream's qm_stop_qp_nolock): an event the device raised for this
      // queue is handled now, not by a pass after the qp number is started again.
      if (this.#mmio.readl(QM_EQ_INT_SOURCE) !== 0) await this.irqThread();
      this.qpArray[qp.qn] = null;
      qp.scqe = null;
      qp.rings = null;
      if (scqe !== qp.qdma) await this.#iommu.dmaFree(this.#group, scqe.iova);
    });
  }

  /**
   * `hisi_qm_release_qp` of each of `qps`, with the queue stopped first: all off `qp_array`
   * and the bitmap together (a user of two queue pairs gives both back at once), then each
   * one's device queue told to stop and its SQ+CQ buffer freed.
   */
  releaseQp(...qps: HisiQp[]): Promise<void> {
    return this.#release(qps, true);
  }

  /**
   * `hisi_qm_release_qp` as the seed wrote it (RFCv2 4/7): off `qp_array` and the bitmap,
   * SQ+CQ buffer freed, the device queue never told to stop. Only quirk
   * `removeWhileOpenFreesRing` reaches it with a started qp (a put_queue of an open sdmdev).
   */
  releaseQpUnstopped(qp: HisiQp): Promise<void> {
    return this.#release([qp], false);
  }

  #release(qps: readonly HisiQp[], stop: boolean): Promise<void> {
    if (qps.every((qp) => this.#idle(qp))) return this.#releaseQpLocked(qps, stop);
    return this.#qpsLock.hold(
      this.#k.sched,
      "qm.release:qps-lock",
      () => this.#releaseQpLocked(qps, stop),
    );
  }

  /**
   * Whether `qp` is neither started nor being started: then stopping or releasing it changes
   * only the bitmap and does not wait for `qps_lock` (a spinning rwlock in the seed, held
   * only for the bitmap and `qp_array` updates).
   */
  #idle(qp: HisiQp): boolean {
    return qp.scqe === null && qp.starts === 0;
  }

  async #releaseQpLocked(qps: readonly HisiQp[], stop: boolean): Promise<void> {
    for (const qp of qps) {
      this.qps[qp.qn] = null;
      this.qpArray[qp.qn] = null;
      qp.freed = true;
    }
    for (const qp of qps) {
      const scqe = qp.scqe;
      if (scqe === null) continue;
      if (stop) this.#stopQueue(qp.qn);
      qp.scqe = null;
      qp.rings = null;
      if (scqe !== qp.qdma) await this.#iommu.dmaFree(this.#group, scqe.iova);
    }
  }

  /**
   * `hisi_qp_send` for a started kernel queue pair: fills the SQE, rings the SQ doorbell and
   * returns the request's seq; ENOSPC when `sqDepth - 1` requests are outstanding, EINVAL when
   * `rings` are no longer the queue pair's (stopped or released since the caller read them, as
   * later upstream's send refuses a stopped qp: its ring is freed). The
   * completion arrives through the IRQ thread. Quirks: `kernelSqFullNeverCleared` (the seed's
   * latched `is_sq_full`), `sendIgnoresCompletionTimeout` (the seed's blind wait).
   */
  send(
    qp: HisiQp,
    rings: QpRings,
    tag: number,
    sqe?: Uint8Array,
  ): Promise<number | Errno> {
    return qp.lock.hold(
      this.#k.sched,
      "qm.send:qp-lock",
      () => this.#sendLocked(qp, rings, tag, sqe),
    );
  }

  async #sendLocked(
    qp: HisiQp,
    rings: QpRings,
    tag: number,
    sqe?: Uint8Array,
  ): Promise<number | Errno> {
    if (qp.rings !== rings) return "EINVAL";
    const latched = this.#k.quirks.kernelSqFullNeverCleared;
    if (latched ? qp.isSqFull : rings.full()) return "ENOSPC";
    const req = rings.fill(tag, sqe);
    await this.#k.sched.point("qm.send:sqe-written");
    rings.publish(DOORBELL_CMD.SQ, rings.sqTail.index);
    this.#db(qp.qn, DOORBELL_CMD.SQ, rings.sqTail.index);
    if (latched && rings.sqTail.index === rings.sqHead.index) qp.isSqFull = true;
    if (this.#k.quirks.sendIgnoresCompletionTimeout) await this.#waitForCompletion(qp);
    return req.seq;
  }

  /**
   * `qm_irq` + `qm_irq_thread`: EAGAIN without a pending interrupt; else acks it and walks the
   * EQ. A pass is atomic in this model (the thread is preempted between passes, not between
   * EQEs): an EQE written during a real pass leaves a spurious pending interrupt, which the
   * spec's atomic `qm.irq` does not describe. Then it walks the
   * EQ while the phase matches: a kernel queue's CQ is drained (`qm_poll_qp`, one `req_cb`
   * per CQE, then the CQ doorbell), a user queue's waiters are woken (`event_cb`) and its CQ
   * left to the user driver; then the EQ head advances and the EQ doorbell is rung.
   */
  irqThread(): Promise<QmIrqOk | "EAGAIN"> {
    return this.#irqLock.hold(this.#k.sched, "qm.irq:thread", () => this.#irqThreadLocked());
  }

  #irqThreadLocked(): QmIrqOk | "EAGAIN" {
    if (this.#mmio.readl(QM_EQ_INT_SOURCE) === 0) return "EAGAIN";
    this.#mmio.writel(QM_EQ_INT_SOURCE, 1);
    const completions: QmCompletion[] = [];
    const woken: number[] = [];
    let eqes = 0;
    const spin = loopGuard("qm_irq_thread");
    for (;;) {
      spin();
      const dw0 = this.eqe.mem.u32(this.eqHead.index * QM_EQE_SIZE);
      if ((dw0 >>> 16 & 1) !== this.eqHead.phase) break;
      const qp = this.#toHisiQp(dw0 & 0xffff);
      if (qp?.rings && qp.owner === "kernel") this.#pollQp(qp, qp.rings, completions);
      else if (qp?.rings) this.#wakeUp(qp, qp.rings, woken);
      this.eqHead.step();
      eqes++;
      this.#eqPublished = this.eqHead.index;
      this.#db(0, DOORBELL_CMD.EQ, this.eqHead.index);
    }
    return { eqes, completions, woken };
  }

  /** Writes the EQ interrupt mask (`QM_VF_EQ_INT_MASK`). */
  setIrqMask(masked: boolean): void {
    this.#mmio.writel(QM_EQ_INT_MASK, masked ? 1 : 0);
  }

  /**
   * Posts a context read-back of `cmd`/`queue` into the scratch buffer (the first half of
   * `qm_mb`, as upstream's debugfs dump does) without waiting: the device clears busy when it
   * services it. EBUSY when the busy bit stays set.
   */
  postMailbox(cmd: number, queue: number): Promise<Errno | undefined> {
    return this.#mbLock.hold(
      this.#k.sched,
      "qm.mb:lock",
      () => this.#postMailboxLocked(cmd, queue),
    );
  }

  async #postMailboxLocked(cmd: number, queue: number): Promise<Errno | undefined> {
    if (!(await this.#mailboxIdle())) return "EBUSY";
    this.#mbWrite(cmd, queue, this.#scratch.iova, true);
    return undefined;
  }

  /**
   * A kernel doorbell write for the EQ or AEQ: EINVAL for an EQ head past the IRQ thread's
   * (it would release unread EQEs); AEQ doorbells are written and ignored by the device.
   */
  eqDoorbell(db: Doorbell): Errno | undefined {
    if (db.cmd === DOORBELL_CMD.EQ) {
      const d = this.config.eqDepth;
      const reach = ringForward(this.#eqPublished, db.index, d);
      if (reach > ringForward(this.#eqPublished, this.eqHead.index, d)) return "EINVAL";
      this.#eqPublished = db.index % d;
    }
    this.#mmio.writeq(QM_DOORBELL, encodeDoorbell(db));
    return undefined;
  }

  /**
   * A kernel doorbell write for a started kernel queue pair's SQ or CQ: EINVAL if it would
   * publish an unfilled SQE or release an unread CQE.
   */
  qpDoorbell(rings: QpRings, db: Doorbell): Errno | undefined {
    if (!rings.publish(db.cmd, db.index)) return "EINVAL";
    this.#mmio.writeq(QM_DOORBELL, encodeDoorbell(db));
    return undefined;
  }

  /**
   * `to_hisi_qp`: the started queue pair an EQE names. The device is not trusted: a queue
   * number past `qp_array` is logged and skipped (quirk `eqeCqnUnchecked`: read out of bounds,
   * an oops).
   */
  #toHisiQp(cqn: number): HisiQp | null {
    if (cqn < this.qpArray.length) return this.qpArray[cqn];
    if (this.#k.quirks.eqeCqnUnchecked) {
      this.#k.emit({ fault: "oops", where: "qm_irq_thread", cqn });
    } else {
      this.#k.emit({ warn: "eqe-cqn-out-of-range", cqn });
    }
    return null;
  }

  /** `qm_poll_qp` with `req_cb`: every new CQE of a kernel queue, then the CQ doorbell. */
  #pollQp(qp: HisiQp, rings: QpRings, out: QmCompletion[]): void {
    const spin = loopGuard("qm_poll_qp");
    for (let c = rings.next(); c !== undefined; c = rings.next()) {
      spin();
      const req = rings.accept(c.sqSlot);
      if (this.#k.quirks.sendIgnoresCompletionTimeout) qp.completion++;
      else out.push({ qn: qp.qn, seq: req.seq, tag: req.tag, status: c.status });
    }
    if (rings.publish(DOORBELL_CMD.CQ, rings.cqHead.index)) {
      this.#db(qp.qn, DOORBELL_CMD.CQ, rings.cqHead.index);
    }
  }

  /**
   * `qm_poll_qp` with `event_cb` (`qm_qp_event_notifier`): wakes the user queue's waiters.
   * Quirk `kernelConsumesUserCq`: also advances the kernel's own CQ head over the user's CQ
   * and rings the CQ doorbell with it, as the seed does.
   */
  #wakeUp(qp: HisiQp, rings: QpRings, woken: number[]): void {
    qp.wakeups++;
    woken.push(qp.qn);
    qp.onEvent?.();
    if (!this.#k.quirks.kernelConsumesUserCq) return;
    rings.cqHead.step();
    rings.publish(DOORBELL_CMD.CQ, rings.cqHead.index);
    this.#db(qp.qn, DOORBELL_CMD.CQ, rings.cqHead.index);
  }

  /** `wait_for_completion_timeout` on `qp->completion`, result ignored (the seed's send). */
  async #waitForCompletion(qp: HisiQp): Promise<void> {
    for (let i = 0; i < SEND_TIMEOUT_POLLS; i++) {
      if (qp.completion > 0) {
        qp.completion--;
        return;
      }
      await this.#k.sched.point("qm.send:wait-completion");
    }
  }

  /**
   * Tells the device to stop queue `qn` and forget its contexts. Quirk `stopQueueNoop`: the
   * v1 hardware has no per-queue stop (RFCv2 6/7 `hisi_qm_stop_queue` is empty, and
   * `hisi_qm_release_qp` frees the ring without stopping anything): the device keeps running
   * the queue from its old contexts.
   */
  #stopQueue(qn: number): void {
    if (!this.#k.quirks.stopQueueNoop) this.#mmio.writel(QM_QUEUE_STOP, qn);
  }

  /** `qm_db`. */
  #db(qn: number, cmd: number, index: number): void {
    writeDoorbell(this.#mmio, qn, cmd, index, 0);
  }

  /** `qm_mb`: waits for an idle mailbox, posts a context load, waits for it to be taken. */
  #qmMb(cmd: number, addr: number, queue: number): Promise<Errno | undefined> {
    return this.#mbLock.hold(this.#k.sched, "qm.mb:lock", () => this.#qmMbLocked(cmd, addr, queue));
  }

  async #qmMbLocked(cmd: number, addr: number, queue: number): Promise<Errno | undefined> {
    if (!(await this.#mailboxIdle())) return "EBUSY";
    this.#mbWrite(cmd, queue, addr, false);
    return (await this.#mailboxIdle()) ? undefined : "EBUSY";
  }

  /** `hacc_qm_mb_is_busy` polled up to {@link MB_RETRIES} times: whether the busy bit cleared. */
  async #mailboxIdle(): Promise<boolean> {
    for (let i = 0; i < MB_RETRIES; i++) {
      if ((this.#mmio.readl(QM_MAILBOX) & QM_MB_BUSY) === 0) return true;
      await this.#k.sched.point("qm.mb:busy");
    }
    return false;
  }

  /** `qm_mb_write`: the 128-bit store of a mailbox command. */
  #mbWrite(cmd: number, queue: number, addr: number, read: boolean): void {
    this.#mmio.write128(QM_MAILBOX, encodeMailbox(cmd, queue, addr, read));
  }

  /** `dma_alloc_coherent` for the QM's device (rings, contexts, a kernel user's buffers). */
  allocCoherent(bytes: number): CoherentBuffer | Errno {
    const r = this.#iommu.dmaAlloc(this.#group, Math.ceil(bytes / PAGE_SIZE));
    if (typeof r === "string") return r;
    const frames = this.#iommu.buffers.get(r.buffer)!.frames;
    return { iova: r.iova, buffer: r.buffer, mem: new QmMemory(this.#k.phys, frames) };
  }

  /** `dma_free_coherent`. */
  freeCoherent(buffer: CoherentBuffer): Promise<Errno | undefined> {
    return this.#iommu.dmaFree(this.#group, buffer.iova);
  }
}
