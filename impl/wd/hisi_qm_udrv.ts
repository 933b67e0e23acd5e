/**
 * The user-space QM driver of the WarpDrive sample (RFCv2 7/7 `hisi_qm_udrv.c`): one queue a
 * process got from the sdmdev, with its SQ+CQ buffer and the doorbell page mapped. Sending
 * writes an SQE into the mapped SQ and rings the SQ doorbell with the queue's own number;
 * receiving checks the phase of the CQE at the head, retires the SQE it names and rings the
 * CQ doorbell.
 *
 * Quirks: `userSqHeadFromCqHead` (L4543), `userBadStatusNotConsumed`, `userSqnNeverSet`
 * (L4378).
 *
 * @module
 */
import { type Doorbell, DOORBELL_CMD, type QmCompletion, type QmConfig } from "../../spec/qm.ts";
import type { Errno } from "../../spec/types.ts";
import { type QmMemory, type QmMmio, QpRings, writeDoorbell } from "../device/qm_device.ts";
import { type Kernel, Mutex } from "../kernel.ts";
import { afterPoint, type MaybeAsync } from "../sched.ts";

/** Statuses the sample accepts as success (`hisi_qm_recv_sqe`: 0 and 0x0d). */
const GOOD_STATUS: readonly number[] = [0, 0x0d];

/** One user queue (`struct hisi_qm_queue_info`). */
export class HisiQmQueue {
  /** The owning process. */
  readonly pid: number;
  /** The queue number the sdmdev handed out. */
  readonly qn: number;
  /** The queue number its doorbells carry (`sqn`; 0 with quirk `userSqnNeverSet`). */
  readonly sqn: number;
  /** Ring status over the mapped SQ+CQ. */
  readonly rings: QpRings;
  readonly #k: Kernel;
  /** The queue's lock (later upstream's `sd_lock`/`rv_lock`): one sender or receiver at a time. */
  readonly #lock = new Mutex();
  readonly #mmio: QmMmio;
  readonly #touch: () => Errno | undefined;
  /** Closed by {@link close}: the mappings are about to go. */
  #closed = false;

  /**
   * `hisi_qm_set_queue_dio`: `mem` is the mmap of the queue's SQ+CQ buffer, `mmio` of its
   * doorbell page; `touch` is the process's access through those mappings (EFAULT once the
   * kernel zapped them: the SIGBUS the real load or store would take), asked before a send
   * stores its SQE and before a receive loads its CQE and stores the CQ doorbell (a send's
   * doorbell after a zap is lost, as a request in flight at the removal).
   */
  constructor(
    kernel: Kernel,
    pid: number,
    qn: number,
    mem: QmMemory,
    mmio: QmMmio,
    config: QmConfig,
    touch: () => Errno | undefined = () => undefined,
  ) {
    this.#k = kernel;
    this.#touch = touch;
    this.pid = pid;
    this.qn = qn;
    this.sqn = kernel.quirks.userSqnNeverSet ? 0 : qn;
    this.#mmio = mmio;
    this.rings = new QpRings(mem, config.sqDepth, config.cqDepth);
  }

  /**
   * `hisi_qm_add_to_dio_q`: fills the SQE at the tail and, with `ring`, rings the SQ doorbell;
   * returns the request's seq, or EBUSY when `sqDepth - 1` are outstanding.
   */
  send(tag: number, ring: boolean, sqe?: Uint8Array): MaybeAsync<number | Errno> {
    return this.#lock.holdNow(
      this.#k.sched,
      "udrv.send:lock",
      () => this.#sendLocked(tag, ring, sqe),
    );
  }

  #sendLocked(tag: number, ring: boolean, sqe?: Uint8Array): MaybeAsync<number | Errno> {
    const rings = this.rings;
    if (this.#closed) return "EINVAL";
    const fault = this.#touch();
    if (fault) return fault;
    if (rings.full()) return "EBUSY";
    const req = rings.fill(tag, sqe);
    return afterPoint(this.#k.sched, "udrv.send:sqe-written", () => {
      if (ring) this.#ring(DOORBELL_CMD.SQ, rings.sqTail.index, 0);
      return req.seq;
    });
  }

  /**
   * `hisi_qm_get_from_dio_q`: the completion at the CQ head if its phase is the expected one
   * (whatever its status), else EAGAIN; retires its SQE and rings the CQ doorbell.
   */
  recv(): MaybeAsync<QmCompletion | Errno> {
    return this.#lock.holdNow(this.#k.sched, "udrv.recv:lock", () => this.#recvLocked());
  }

  #recvLocked(): MaybeAsync<QmCompletion | Errno> {
    const rings = this.rings;
    if (this.#closed) return "EINVAL";
    const fault = this.#touch();
    if (fault) return fault;
    const c = rings.next();
    if (c === undefined) return "EAGAIN";
    if (this.#k.quirks.userBadStatusNotConsumed && !GOOD_STATUS.includes(c.status)) return "EIO";
    return afterPoint(this.#k.sched, "udrv.recv:cqe-read", () => {
      const fault = this.#touch();
      if (fault) return fault;
      const fromCqHead = this.#k.quirks.userSqHeadFromCqHead;
      const req = rings.accept(fromCqHead ? rings.cqHead.index : c.sqSlot);
      if (fromCqHead) rings.sqHead.index = rings.cqHead.index;
      this.#ring(DOORBELL_CMD.CQ, rings.cqHead.index, 0);
      return { qn: this.qn, seq: req.seq, tag: req.tag, status: c.status };
    });
  }

  /**
   * `hacc_db` for this queue's SQ or CQ (its `qn` field is ignored: the doorbell carries
   * `sqn`): EINVAL if it would publish an unfilled SQE or release an unread CQE.
   */
  doorbell(db: Doorbell): Errno | undefined {
    return this.#ring(db.cmd, db.index, db.priority);
  }

  #ring(cmd: number, index: number, priority: number): Errno | undefined {
    if (!this.rings.publish(cmd, index)) return "EINVAL";
    writeDoorbell(this.#mmio, this.sqn, cmd, index, priority);
    return undefined;
  }

  /** `hisi_qm_unset_queue_dio`: the requests still cached, which will never complete. */
  release(): number {
    return this.rings.pending();
  }

  /**
   * Like {@link release} once a send or receive in progress is done (under the queue's lock,
   * as a thread-safe library must before it unmaps the rings): the tags of the requests still
   * cached, in slot order. Later sends and receives are EINVAL.
   */
  close(): MaybeAsync<number[]> {
    return this.#lock.holdNow(this.#k.sched, "udrv.close:lock", () => {
      this.#closed = true;
      return this.rings.reqs.flatMap((r) => (r === null ? [] : [r.tag]));
    });
  }
}
