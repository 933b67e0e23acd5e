/**
 * The QM view's adapter (model side): PCI function 1 of a {@link Platform} (its QM device in
 * its own group, the kernel driver), and the user queues of the processes that own them
 * (`impl/hisi/qm_user.ts`). {@link QmAdapter.exec} hands each `spec/qm.ts` command to the
 * actor that performs it; {@link QmAdapter.observe} is the abstraction function
 * to the spec's {@link QmState}.
 *
 * Argument checks a caller meets before reaching the driver (a queue number that names
 * nothing, a queue that is not the caller's, a bad tag) are made here, in the spec's order.
 * Two things are left to the implementation instead, so that its encodings are exercised: a
 * doorbell no driver has a use for (a field that is not a u16, a cmd the hardware does not
 * know) is written through the caller's register mapping by the drivers' encoder, and every
 * request's SQE carries bytes in the slot the device writes its status into
 * ({@link requestSqe}).
 *
 * @module
 */
import {
  createdQp,
  type Doorbell,
  DOORBELL_CMD,
  encodeDoorbell,
  MAILBOX_CMD,
  type QmCommand,
  type QmConfig,
  type QmOwner,
  type QmQp,
  type QmState,
} from "../../spec/qm.ts";
import type { Errno, Ret } from "../../spec/types.ts";
import {
  cqePhase,
  cqeSqHead,
  eqeCqn,
  eqePhase,
  QM_DOORBELL,
  QM_EQE_SIZE,
  QM_SQE_SIZE,
  type QmDevice,
  type QmEngine,
  type QpRings,
  sqeStatus,
  writeDoorbell,
} from "../../impl/device/qm_device.ts";
import type { HisiQm, HisiQp } from "../../impl/hisi/qm.ts";
import type { HisiZipCrypto } from "../../impl/hisi/zip.ts";
import type { IommuCore } from "../../impl/iommu/core.ts";
import { COMPLETE_ALL, type Platform, type QmFunction } from "../../impl/platform.ts";
import type { Kernel, Outcome } from "../../impl/kernel.ts";
import { andThen, type MaybeAsync } from "../../impl/sched.ts";
import type { HisiQmQueue } from "../../impl/wd/hisi_qm_udrv.ts";
import { userQueue } from "../../impl/hisi/qm_user.ts";

/** The QM's PCI function and group. */
const QM_GROUP = 1;

const MAILBOX_CMDS: readonly number[] = Object.values(MAILBOX_CMD);
const DOORBELL_CMDS: readonly number[] = Object.values(DOORBELL_CMD);

/**
 * The SQE a request with `tag` is sent in. A caller builds its message in a buffer it reuses
 * (the sample's `msg`), so the SQE is not zero where the device writes its results: byte `i`
 * is `(tag + i) & 0xff`, which puts every value into the status byte (`dw3 & 0xff`) across
 * the generated tags. The status the view observes is then the device's only if the device
 * replaces that byte.
 */
export function requestSqe(tag: number): Uint8Array {
  const sqe = new Uint8Array(QM_SQE_SIZE);
  for (let i = 0; i < sqe.length; i++) sqe[i] = (tag + i) & 0xff;
  return sqe;
}

function isU16(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

function isOwner(v: unknown): v is QmOwner {
  return v === "kernel" || (typeof v === "number" && Number.isSafeInteger(v) && v > 0);
}

function ret<T>(r: T | Errno): Ret {
  return typeof r === "string" ? { err: r as Errno } : { ok: r };
}

/** The owner of a queue pair of this view, which allocates only kernel and process ones. */
function ownerOf(qp: HisiQp): QmOwner {
  if (typeof qp.owner === "object") throw new Error(`qp ${qp.qn} belongs to mdev ${qp.owner.mdev}`);
  return qp.owner;
}

function done(r: Errno | undefined): Ret {
  return r === undefined ? { ok: null } : { err: r };
}

/** The simulated QM: device, kernel driver and user queues. */
export class QmAdapter {
  /** Shared kernel context. */
  readonly kernel: Kernel;
  /** Sizes. */
  readonly config: QmConfig;
  /** The platform's IOMMU. */
  readonly iommu: IommuCore;
  /** The hardware. */
  readonly device: QmDevice;
  /** The kernel driver. */
  readonly qm: HisiQm;
  /** The ZIP driver's crypto transforms on it. */
  readonly crypto: HisiZipCrypto;
  /** Started user queues by queue number. */
  readonly userQueues: Map<number, HisiQmQueue> = new Map();
  readonly #fn: QmFunction;

  /**
   * Boots the QM (`hisi_qm_init` + `hisi_qm_start`) as PCI function 1 of `platform`. Missing
   * sizes take the spec's defaults; sizes the hardware cannot have throw a RangeError.
   * `engine` executes requests.
   */
  constructor(platform: Platform, config: Partial<QmConfig> = {}, engine: QmEngine = COMPLETE_ALL) {
    const fn = platform.probeQm(QM_GROUP, config, engine);
    this.#fn = fn;
    this.kernel = platform.kernel;
    this.config = fn.qm.config;
    this.iommu = platform.iommu;
    this.device = fn.device;
    this.qm = fn.qm;
    this.crypto = fn.crypto;
  }

  /** Executes one command; its events are those its task logged meanwhile. */
  exec(cmd: QmCommand): Promise<Outcome> {
    return this.kernel.traced(() => this.#dispatch(cmd));
  }

  #dispatch(cmd: QmCommand): MaybeAsync<Ret> {
    switch (cmd.op) {
      case "qm.alloc":
        return this.#alloc(cmd.owner);
      case "qm.start":
        return this.#start(cmd.qn);
      case "qm.release":
        return this.#release(cmd.qn);
      case "qm.send":
        return this.#send(cmd.qn, "kernel", cmd.tag, true);
      case "qm.userSend":
        return this.#send(cmd.qn, cmd.by, cmd.tag, cmd.ring ?? true);
      case "qm.doorbell":
        return this.#doorbell(cmd.by, cmd);
      case "qm.deviceStep":
        return this.#deviceStep(cmd.qn, cmd.status);
      case "qm.poll":
        return this.#poll(cmd.qn, cmd.by);
      case "qm.irq":
        return this.qm.irqThread().then(ret);
      case "qm.setIrqMask":
        if (typeof cmd.masked !== "boolean") return { err: "EINVAL" };
        this.qm.setIrqMask(cmd.masked);
        return { ok: null };
      case "qm.mailbox":
        if (!MAILBOX_CMDS.includes(cmd.cmd) || !isU16(cmd.queue)) return { err: "EINVAL" };
        return this.qm.postMailbox(cmd.cmd, cmd.queue).then(done);
      case "qm.mailboxDone":
        return done(this.device.serviceMailbox());
      case "qm.deviceBadEqe":
        if (!isU16(cmd.cqn)) return { err: "EINVAL" };
        return this.device.writeBadEqe(cmd.cqn).then(done);
    }
  }

  #alloc(owner: QmOwner): Ret {
    if (!isOwner(owner)) return { err: "EINVAL" };
    const qp = this.qm.createQp(owner);
    return typeof qp === "string" ? { err: qp } : { ok: qp.qn };
  }

  async #start(qn: number): Promise<Ret> {
    const qp = this.qm.lookup(qn);
    if (typeof qp === "string") return { err: qp };
    if (qp.started) return { err: "EINVAL" };
    const err = await this.qm.startQp(qp);
    if (err !== undefined) return { err };
    const owner = ownerOf(qp);
    if (owner !== "kernel") this.userQueues.set(qn, userQueue(this.kernel, this.#fn, qp, owner));
    return { ok: qn };
  }

  /** The process drops its queue (`wd_release_queue`), then `hisi_qm_release_qp`. */
  async #release(qn: number): Promise<Ret> {
    const qp = this.qm.lookup(qn);
    if (typeof qp === "string") return { err: qp };
    const dropped = this.userQueues.get(qn)?.release() ?? qp.rings?.pending() ?? 0;
    this.userQueues.delete(qn);
    await this.qm.releaseQp(qp);
    return { ok: { dropped } };
  }

  /** The started queue pair `qn` if `by` owns it: else ENOENT/EINVAL/EPERM as the spec orders. */
  #owned(qn: number, by: QmOwner): HisiQp | Errno {
    const qp = this.qm.lookup(qn);
    if (typeof qp === "string") return qp;
    if (qp.owner !== by) return "EPERM";
    return qp.started ? qp : "EINVAL";
  }

  #send(qn: number, by: QmOwner, tag: number, ring: boolean): MaybeAsync<Ret> {
    const qp = this.#owned(qn, by);
    if (typeof qp === "string") return { err: qp };
    if (!Number.isSafeInteger(tag)) return { err: "EINVAL" };
    const user = this.userQueues.get(qn);
    const sqe = requestSqe(tag);
    return andThen(user ? user.send(tag, ring, sqe) : this.qm.send(qp, qp.rings!, tag, sqe), ret);
  }

  #poll(qn: number, by: number): MaybeAsync<Ret> {
    const qp = this.#owned(qn, by);
    if (typeof qp === "string") return { err: qp };
    return andThen(this.userQueues.get(qn)!.recv(), ret);
  }

  /**
   * A raw doorbell write by `by`. The EQ and AEQ doorbells are the kernel's. An SQ or CQ
   * doorbell goes through the owner's driver, which refuses an index its ring state cannot
   * back. Someone else has no doorbell page for the queue (EPERM); with quirk
   * `sharedDoorbellPage` a user's page reaches every queue, so the write goes straight to the
   * device. Any other doorbell is {@link QmAdapter.#strayDoorbell}.
   */
  #doorbell(by: QmOwner, db: Doorbell): Ret {
    if (!isOwner(by)) return { err: "EINVAL" };
    const fits = [db.qn, db.cmd, db.index, db.priority].every(isU16);
    if (!fits || !DOORBELL_CMDS.includes(db.cmd)) return this.#strayDoorbell(by, db, fits);
    if (db.cmd === DOORBELL_CMD.EQ || db.cmd === DOORBELL_CMD.AEQ) {
      return by === "kernel" ? done(this.qm.eqDoorbell(db)) : { err: "EPERM" };
    }
    const qp = this.qm.lookup(db.qn);
    if (typeof qp === "string") return { err: qp };
    if (qp.owner !== by) {
      if (by === "kernel" || !this.kernel.quirks.sharedDoorbellPage) return { err: "EPERM" };
      const { qn, cmd, index, priority } = db;
      this.device.mmio(by).writeq(QM_DOORBELL, encodeDoorbell({ qn, cmd, index, priority }));
      return { ok: null };
    }
    if (!qp.rings) return { err: "EINVAL" };
    const user = this.userQueues.get(db.qn);
    return done(user ? user.doorbell(db) : this.qm.qpDoorbell(qp.rings, db));
  }

  /**
   * A doorbell no driver has a use for: a field that is not a u16 (`fits` false), or a cmd
   * the hardware does not know; the spec answers both EINVAL. It goes through the caller's
   * register mapping (the kernel's, or that of a process with a user queue here; nobody else
   * has one) by the drivers' encoder ({@link writeDoorbell}), which must refuse a field that
   * is not a u16 with a RangeError; the device must ignore a cmd it does not know. EINVAL
   * when the encoder refused or the fields fit; ok(null) when the encoder let a bad field
   * through, a result the spec never gives.
   */
  #strayDoorbell(by: QmOwner, db: Doorbell, fits: boolean): Ret {
    const mapped = by === "kernel" || [...this.userQueues.values()].some((q) => q.pid === by);
    if (!mapped) return { err: "EINVAL" };
    try {
      writeDoorbell(this.device.mmio(by), db.qn, db.cmd, db.index, db.priority);
    } catch (e) {
      if (e instanceof RangeError) return { err: "EINVAL" };
      throw e;
    }
    return fits ? { err: "EINVAL" } : { ok: null };
  }

  /** The device's step; a command without a status lets the device's own engine decide. */
  #deviceStep(qn: number, status: number | undefined): MaybeAsync<Ret> {
    const qp = this.qm.lookup(qn);
    if (typeof qp === "string") return { err: qp };
    if (!qp.started) return { err: "EINVAL" };
    if (status !== undefined && (!Number.isInteger(status) || status < 0 || status > 0xff)) {
      return { err: "EINVAL" };
    }
    const engine = status === undefined ? undefined : { execute: () => status };
    return andThen(this.device.step(qn, engine), (r) => {
      // The device only knows "no queue context"; what that means is the allocator's, now.
      const now = this.qm.lookup(qn);
      return r === "EINVAL" && typeof now === "string" ? { err: now } : ret(r);
    });
  }

  /**
   * The abstraction function. Ring positions come from whoever keeps them: producer tail
   * (`submitted`) and consumer head from the queue's owner (kernel driver or user driver),
   * published and device positions from the device, the EQ head from the IRQ thread; the
   * absolute counters use the ghost lap counts of {@link RingPos}. SQ and CQ windows are read
   * from ring memory; an SQE's request (seq, tag) from its owner's request cache.
   */
  observe(): QmState {
    const flags = this.device.observeFlags();
    const eq = this.device.observeEq();
    const { eqDepth } = this.config;
    const eqes = [];
    for (let p = eq.doorbell; p < eq.tail; p++) {
      const eqe = this.qm.eqe.mem.read((p % eqDepth) * QM_EQE_SIZE, QM_EQE_SIZE);
      eqes.push({ cqn: eqeCqn(eqe), phase: eqePhase(eqe) });
    }
    return {
      config: this.config,
      qps: this.qm.qps.map((qp) => qp && this.#observeQp(qp)),
      eqTail: eq.tail,
      eqHead: this.qm.eqHead.absolute,
      eqDoorbell: eq.doorbell,
      eqPhase: this.qm.eqHead.phase,
      eq: eqes,
      ...flags,
      dmaBuffers: [...this.iommu.buffers.values()].filter((b) => b.group === QM_GROUP).length,
    };
  }

  #observeQp(qp: HisiQp): QmQp {
    const owner = ownerOf(qp);
    const hw = this.device.observeQueue(qp.qn);
    const rings: QpRings | null | undefined = this.userQueues.get(qp.qn)?.rings ?? qp.rings;
    if (!hw || !rings) return createdQp(qp.qn, owner);
    const { sqDepth, cqDepth } = this.config;
    const sqTail = rings.submitted;
    const cqHead = rings.cqHead.absolute;
    const sq = [];
    for (let p = cqHead; p < sqTail; p++) {
      const slot = p % sqDepth;
      const req = rings.reqs[slot] ?? { seq: -1, tag: -1 };
      const status = p < hw.sqHead ? sqeStatus(rings.sqe(slot)) : null;
      sq.push({ seq: req.seq, tag: req.tag, status });
    }
    const cq = [];
    for (let p = hw.cqDoorbell; p < hw.cqTail; p++) {
      const cqe = rings.cqe(p % cqDepth);
      cq.push({ sqIndex: cqeSqHead(cqe), phase: cqePhase(cqe) });
    }
    return {
      state: "started",
      qn: qp.qn,
      owner,
      sqTail,
      sqDoorbell: hw.sqDoorbell,
      sqHead: hw.sqHead,
      cqTail: hw.cqTail,
      cqHead,
      cqDoorbell: hw.cqDoorbell,
      phase: rings.cqHead.phase,
      sq,
      cq,
      lastCompleted: rings.lastCompleted,
      wakeups: qp.wakeups,
      foreignDoorbells: hw.foreignDoorbells,
    };
  }
}
