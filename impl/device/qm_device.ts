/**
 * The HiSilicon QM hardware (RFCv2 4/7 `qm.c`/`qm.h`): one MMIO register page (mailbox at
 * 0x300, doorbell at 0x340, EQ interrupt source and mask), the queue contexts it loads through
 * the mailbox, and the device side of every queue pair's SQ and CQ and of the one EQ. Also the
 * programming model both drivers share (memory formats, ring positions, the driver's view of a
 * queue pair's rings), as `qm.h` and `hisi_qm_udrv.h` do for the seed.
 *
 * Rings live in real memory (frames of `PhysMem`); the device reaches them only through IOMMU
 * translation of the IOVAs its contexts name. On a function with PASIDs enabled (its group
 * has a PASID table) the engine's reads and writes for a queue whose SQC carries a PASID are
 * tagged with it and walk that PASID's address space; ring accesses stay untagged. What a
 * request does is the {@link QmEngine}'s business (the ZIP engine plugs in there); the device
 * writes the status it returns into the SQE (`dw3 & 0xff`), a CQE `{sq_head, phase}` at its
 * CQ tail and an EQE `{cqn, phase}` at its EQ tail, then raises the interrupt unless masked. It
 * never overwrites a CQE or EQE the consumer has not released: with `depth - 1` unreleased
 * entries it stalls.
 *
 * Mailbox: a context load (op 0: SQC, CQC, EQC, SQC_BT, CQC_BT) is taken as it is written, so
 * the busy bit `qm_mb` polls for is clear again by its first poll; a context read-back (op 1,
 * the dump upstream's debugfs posts) stays busy until the device services it
 * ({@link QmDevice.serviceMailbox}, the spec's `qm.mailboxDone`). The base-table loads carry
 * nothing this model needs: SQC and CQC loads name their context's address themselves.
 *
 * Doorbells are per queue: the device knows each queue's owner from the `pasid` field of its
 * SQC (the kernel is 0, a user process its pid, low 16 bits) and drops a user's doorbell for a
 * queue that is not its own. The v1 hardware shared one doorbell page between all queues
 * (RFCv2 6/7 `hisi_qm_mmap` L3944, quirk `sharedDoorbellPage`): then it accepts the doorbell.
 * A doorbell the device accepted from someone other than the queue's owner (the kernel's page
 * reaches every queue) is counted in `foreignDoorbells`.
 *
 * Ring positions are slot indices and phase bits ({@link RingPos}); each also carries a lap
 * counter that is observation-only ghost state: it turns the index into the spec's absolute
 * counter in `observe()` and never influences behaviour.
 *
 * @module
 */
import {
  decodeDoorbell,
  DOORBELL_CMD,
  MAILBOX_CMD,
  type Phase,
  type QmOwner,
} from "../../spec/qm.ts";
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import type { IommuCore, IommuGroup } from "../iommu/core.ts";
import { type Kernel, Mutex } from "../kernel.ts";
import { afterPoint, type MaybeAsync } from "../sched.ts";
import type { Frame, PhysMem } from "../mem/phys.ts";

// ---------------------------------------------------------------------------------------------
// Registers and memory formats

/** Mailbox register (`MAILBOX_CMD_SEND_BASE`): a 128-bit write posts, bit 13 of w0 is busy. */
export const QM_MAILBOX = 0x300;
/** Doorbell register (`DOORBELL_CMD_SEND_BASE`): one 64-bit write. */
export const QM_DOORBELL = 0x340;
/** EQ interrupt source (`QM_VF_EQ_INT_SOURCE`): reads 1 while an interrupt is pending, write 1 acks. */
export const QM_EQ_INT_SOURCE = 0x8;
/** EQ interrupt mask (`QM_VF_EQ_INT_MASK`): 1 masks. */
export const QM_EQ_INT_MASK = 0xc;
/**
 * Queue stop register: writing a queue number stops that queue and forgets its contexts. The
 * v1 hardware has none (RFCv2 6/7 `hisi_qm_stop_queue` is empty); the spec's `qm.release`
 * states the queue stopped, as later hardware does with its per-queue stop.
 */
export const QM_QUEUE_STOP = 0x100070;
/**
 * Executing queue (read only): 1 + the number of the queue whose SQE the device is executing
 * (read, not yet written back), 0 when idle. A driver that stops a queue polls it first, so
 * the request in flight completes before the stop (what later hardware's queue drain does).
 */
export const QM_EXEC_QUEUE = 0x100074;

/** Bytes of one SQE (`struct hisi_qm_msg`, RFCv2 7/7). */
export const QM_SQE_SIZE = 128;
/** Bytes of one CQE (`struct cqe`). */
export const QM_CQE_SIZE = 16;
/** Bytes of one EQE (`struct eqe`). */
export const QM_EQE_SIZE = 4;
/** Bytes of one SQC, CQC or EQC (`struct sqc`/`cqc`/`eqc`, padded to 32). */
export const QM_QC_SIZE = 32;

/** The mailbox busy bit in w0 (`MAILBOX_BUSY_SHIFT`). */
export const QM_MB_BUSY = 1 << 13;
const MB_OP_SHIFT = 14;
const SQE_DW3 = 12;
const SQE_TAG = 52;
const CQE_SQ_HEAD = 8;
const CQE_W7 = 14;
const QC_BASE_L = 4;
const QC_BASE_H = 8;
const QC_QES = 16;
const QC_PASID = 20;
const QC_W12 = 24;
/** SQC word 13 (`QM_MK_SQC_W13(priority, orders, alg_type)`): the queue's alg_type. */
const QC_W13 = 26;
const EQC_PHASE_SHIFT = 16;

// Little-endian fields, byte by byte (no DataView per access).

function readU16(b: Uint8Array, off: number): number {
  return b[off] | b[off + 1] << 8;
}

function readU32(b: Uint8Array, off: number): number {
  return (b[off] | b[off + 1] << 8 | b[off + 2] << 16 | b[off + 3] << 24) >>> 0;
}

function writeU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
}

function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}

function readAddr(b: Uint8Array): number {
  return readU32(b, QC_BASE_H) * 2 ** 32 + readU32(b, QC_BASE_L);
}

function writeAddr(b: Uint8Array, off: number, addr: number): void {
  writeU32(b, off, addr % 2 ** 32);
  writeU32(b, off + 4, Math.floor(addr / 2 ** 32));
}

/** The `pasid` a queue owner's doorbells carry: 0 for the kernel, else the pid's low 16 bits. */
export function ownerPasid(owner: QmOwner): number {
  return owner === "kernel" ? 0 : owner & 0xffff;
}

/**
 * Writes the doorbell `qn, cmd, index, priority` to `mmio`: {@link encodeDoorbell}'s 64-bit
 * layout as two 32-bit halves (no BigInt), with its RangeError for a field that is not a u16.
 */
export function writeDoorbell(
  mmio: QmMmio,
  qn: number,
  cmd: number,
  index: number,
  priority: number,
): void {
  checkU16("qn", qn);
  checkU16("cmd", cmd);
  checkU16("index", index);
  checkU16("priority", priority);
  mmio.writeq32(QM_DOORBELL, qn | cmd << 16, index | priority << 16);
}

function checkU16(key: string, v: number): void {
  if ((v & 0xffff) !== v) throw new RangeError(`doorbell ${key} ${v} is not a u16`);
}

/** A queue context as a driver fills it before posting it (`INIT_QC` and friends). */
export interface QueueContext {
  /** IOVA of the ring. */
  readonly base: number;
  /** Slots in the ring (`qes + 1`). */
  readonly depth: number;
  /** Owner's pasid (SQC and CQC). */
  readonly pasid: number;
  /** SQC: the CQ its completions go to; CQC: the start phase (1); EQC: the start phase (1). */
  readonly w12: number;
  /** SQC: the queue's alg_type (what its SQEs ask the engine to do); 0 elsewhere. */
  readonly algType?: number;
}

/** Encodes an SQC, CQC or EQC (head and tail 0). */
export function encodeContext(kind: "sqc" | "cqc" | "eqc", qc: QueueContext): Uint8Array {
  const b = new Uint8Array(QM_QC_SIZE);
  writeAddr(b, QC_BASE_L, qc.base);
  if (kind === "eqc") {
    writeU32(b, QC_W12, (qc.depth - 1) | (qc.w12 << EQC_PHASE_SHIFT));
    return b;
  }
  writeU16(b, QC_QES, qc.depth - 1);
  writeU16(b, QC_PASID, qc.pasid);
  if (kind === "sqc") {
    writeU16(b, QC_W12, qc.w12);
    writeU16(b, QC_W13, qc.algType ?? 0);
  } else {
    writeU32(b, QC_W12, qc.w12);
  }
  return b;
}

function decodeContext(kind: number, b: Uint8Array): QueueContext {
  if (kind === MAILBOX_CMD.EQC) {
    const dw6 = readU32(b, QC_W12);
    return { base: readAddr(b), depth: (dw6 & 0xffff) + 1, pasid: 0, w12: dw6 >>> 16 & 1 };
  }
  const sqc = kind === MAILBOX_CMD.SQC;
  const w12 = sqc ? readU16(b, QC_W12) : readU32(b, QC_W12) & 1;
  const algType = sqc ? readU16(b, QC_W13) : 0;
  return {
    base: readAddr(b),
    depth: readU16(b, QC_QES) + 1,
    pasid: readU16(b, QC_PASID),
    w12,
    algType,
  };
}

/** Encodes a mailbox command (`struct mailbox`): w0 = cmd | busy | op, queue, address. */
export function encodeMailbox(cmd: number, queue: number, addr: number, read: boolean): Uint8Array {
  const b = new Uint8Array(16);
  writeU16(b, 0, cmd | QM_MB_BUSY | (read ? 1 << MB_OP_SHIFT : 0));
  writeU16(b, 2, queue);
  writeAddr(b, 4, addr);
  return b;
}

/** The status the device wrote back into an SQE (`dw3 & 0xff`). */
export function sqeStatus(sqe: Uint8Array): number {
  return readU32(sqe, SQE_DW3) & 0xff;
}

/** The tag the submitter wrote into an SQE (the driver's request cookie). */
export function sqeTag(sqe: Uint8Array): number {
  return readU32(sqe, SQE_TAG);
}

/** The phase bit of a CQE (`w7 & 1`). */
export function cqePhase(cqe: Uint8Array): Phase {
  return (readU16(cqe, CQE_W7) & 1) as Phase;
}

/** The SQ slot a CQE names (`sq_head`). */
export function cqeSqHead(cqe: Uint8Array): number {
  return readU16(cqe, CQE_SQ_HEAD);
}

/** The CQ number of an EQE (`dw0 & 0xffff`). */
export function eqeCqn(eqe: Uint8Array): number {
  return readU32(eqe, 0) & 0xffff;
}

/** The phase bit of an EQE (`dw0 >> 16 & 1`). */
export function eqePhase(eqe: Uint8Array): Phase {
  return (readU32(eqe, 0) >>> 16 & 1) as Phase;
}

/** Distance from slot `from` forward to slot `to` in a ring of `depth` slots. */
export function ringForward(from: number, to: number, depth: number): number {
  return ((to - from) % depth + depth) % depth;
}

// ---------------------------------------------------------------------------------------------
// Ring positions and memory

/**
 * One position in a ring: the slot index and the phase bit of its lap (1 on the first lap,
 * flipped on each wrap), as hardware and drivers keep them. `laps` is ghost state for
 * observation only: `absolute` is the spec's counter.
 */
export class RingPos {
  /** Slots in the ring. */
  readonly depth: number;
  /** Slot index. */
  index = 0;
  /** Phase bit of the current lap. */
  phase: Phase;
  /** Ghost: completed laps, for {@link RingPos.absolute} only. */
  #laps = 0;

  /** Position 0 of a ring of `depth` slots, with the given start phase. */
  constructor(depth: number, phase: Phase = 1) {
    this.depth = depth;
    this.phase = phase;
  }

  /** Advances one slot, flipping the phase on a wrap. */
  step(): void {
    this.index++;
    if (this.index === this.depth) {
      this.index = 0;
      this.phase = this.phase === 1 ? 0 : 1;
      this.#laps++;
    }
  }

  /** Advances forward to slot `index` (taken modulo the depth). */
  moveTo(index: number): void {
    for (let n = ringForward(this.index, index, this.depth); n > 0; n--) this.step();
  }

  /** Ghost: the absolute position (laps × depth + index), for observation. */
  get absolute(): number {
    return this.#laps * this.depth + this.index;
  }
}

/** The CPU's view of a coherent DMA buffer (the kernel's mapping, or a user's mmap of it). */
export class QmMemory {
  readonly #phys: PhysMem;
  readonly #frames: readonly Frame[];

  /** A view of `frames`, in order. */
  constructor(phys: PhysMem, frames: readonly Frame[]) {
    this.#phys = phys;
    this.#frames = frames;
  }

  /** Reads `length` bytes at `offset`. */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.#pages(offset, length, (frame, at, n, done) => {
      out.set(this.#phys.read(frame, at, n), done);
    });
    return out;
  }

  /** Writes `data` at `offset`. */
  write(offset: number, data: Uint8Array): void {
    this.#pages(offset, data.length, (frame, at, n, done) => {
      this.#phys.write(frame, at, n === data.length ? data : data.subarray(done, done + n));
    });
  }

  /** Zeroes `length` bytes at `offset`. */
  zero(offset: number, length: number): void {
    this.#pages(offset, length, (frame, at, n) => {
      this.#phys.contents(frame).fill(0, at, at + n);
    });
  }

  /** Reads the little-endian u16 at `offset`. */
  u16(offset: number): number {
    const at = offset % PAGE_SIZE;
    if (at > PAGE_SIZE - 2) return readU16(this.read(offset, 2), 0);
    const bytes = this.#frames[(offset - at) / PAGE_SIZE].bytes;
    return bytes ? readU16(bytes, at) : 0;
  }

  /** Reads the little-endian u32 at `offset`. */
  u32(offset: number): number {
    const at = offset % PAGE_SIZE;
    if (at > PAGE_SIZE - 4) return readU32(this.read(offset, 4), 0);
    const bytes = this.#frames[(offset - at) / PAGE_SIZE].bytes;
    return bytes ? readU32(bytes, at) : 0;
  }

  /** Writes the little-endian u32 `v` at `offset`. */
  setU32(offset: number, v: number): void {
    const at = offset % PAGE_SIZE;
    if (at > PAGE_SIZE - 4) {
      const b = new Uint8Array(4);
      writeU32(b, 0, v);
      this.write(offset, b);
      return;
    }
    writeU32(this.#phys.contents(this.#frames[(offset - at) / PAGE_SIZE]), at, v);
  }

  #pages(
    offset: number,
    length: number,
    f: (frame: Frame, at: number, n: number, done: number) => void,
  ): void {
    for (let done = 0; done < length;) {
      const at = (offset + done) % PAGE_SIZE;
      const n = Math.min(length - done, PAGE_SIZE - at);
      f(this.#frames[Math.floor((offset + done) / PAGE_SIZE)], at, n, done);
      done += n;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The driver's view of one queue pair

/** A request as its submitter keeps it until it completes (`req_cache`). */
export interface QmRequest {
  /** Submission number within the queue pair. */
  readonly seq: number;
  /** The caller's tag. */
  readonly tag: number;
}

/**
 * A driver's side of one queue pair's SQ and CQ in the `scqe` buffer (SQ first, then CQ):
 * producer tail, retired SQ head, consumer CQ head with its expected phase, the indices last
 * published by doorbells, and the request cache by SQ slot. The kernel driver (`qp_status`)
 * and the user driver (`hisi_qm_queue_info`) both keep one.
 */
export class QpRings {
  /** The buffer holding SQ and CQ. */
  readonly mem: QmMemory;
  /** Producer: next SQ slot to fill (`sq_tail`). */
  readonly sqTail: RingPos;
  /** Oldest SQ slot whose completion has not been accepted (`sq_head`). */
  readonly sqHead: RingPos;
  /** Consumer: next CQ slot to read; its phase is the expected one (`cq_head`, `cqc_phase`). */
  readonly cqHead: RingPos;
  /** SQ tail index the last SQ doorbell published. */
  sqPublished = 0;
  /** CQ head index the last CQ doorbell published. */
  cqPublished = 0;
  /** Requests by SQ slot (`req_cache`). */
  readonly reqs: (QmRequest | null)[];
  /** Requests submitted so far: the next request's `seq`. */
  submitted = 0;
  /** Ghost: `seq` of the last completion handed to the consumer, -1 before any. */
  lastCompleted: number = -1;

  /** An empty queue pair over `mem` (SQ at 0, CQ after `sqDepth` SQEs). */
  constructor(mem: QmMemory, sqDepth: number, cqDepth: number) {
    this.mem = mem;
    this.sqTail = new RingPos(sqDepth);
    this.sqHead = new RingPos(sqDepth);
    this.cqHead = new RingPos(cqDepth);
    this.reqs = new Array<QmRequest | null>(sqDepth).fill(null);
  }

  /** Requests outstanding by the slot count: filled and not yet retired. */
  used(): number {
    return ringForward(this.sqHead.index, this.sqTail.index, this.sqTail.depth);
  }

  /** Whether the SQ is full: `depth - 1` outstanding, one slot reserved (see spec/qm.ts). */
  full(): boolean {
    return this.used() >= this.sqTail.depth - 1;
  }

  /** Fills the SQE at the tail, caches the request, advances the tail; returns the request. */
  fill(tag: number, payload?: Uint8Array): QmRequest {
    const slot = this.sqTail.index;
    const req = { seq: this.submitted++, tag };
    const at = slot * QM_SQE_SIZE;
    this.mem.zero(at, QM_SQE_SIZE);
    if (payload) this.mem.write(at, payload.subarray(0, QM_SQE_SIZE));
    this.mem.setU32(at + SQE_TAG, tag % 2 ** 32);
    this.reqs[slot] = req;
    this.sqTail.step();
    return req;
  }

  /**
   * The completion at the CQ head if its CQE carries the expected phase (a new one): the SQ
   * slot the CQE names and the status the device wrote into that SQE. Undefined otherwise.
   */
  next(): { readonly sqSlot: number; readonly status: number } | undefined {
    const cqe = this.#cqeOffset(this.cqHead.index);
    if ((this.mem.u16(cqe + CQE_W7) & 1) !== this.cqHead.phase) return undefined;
    const sqSlot = this.mem.u16(cqe + CQE_SQ_HEAD);
    return { sqSlot, status: this.mem.u32(sqSlot * QM_SQE_SIZE + SQE_DW3) & 0xff };
  }

  /** The SQE in slot `slot`. */
  sqe(slot: number): Uint8Array {
    return this.mem.read(slot * QM_SQE_SIZE, QM_SQE_SIZE);
  }

  /** The CQE in slot `slot`. */
  cqe(slot: number): Uint8Array {
    return this.mem.read(this.#cqeOffset(slot), QM_CQE_SIZE);
  }

  /** Offset of CQ slot `slot` in the buffer. */
  #cqeOffset(slot: number): number {
    return this.sqTail.depth * QM_SQE_SIZE + slot * QM_CQE_SIZE;
  }

  /**
   * Accepts the CQE at the head: takes the request cached in `slot`, retires one SQ slot and
   * advances the CQ head (the expected phase flips on a wrap). A slot with no request yields
   * `seq`/`tag` -1.
   */
  accept(slot: number): QmRequest {
    const req = this.reqs[slot] ?? { seq: -1, tag: -1 };
    this.reqs[slot] = null;
    this.lastCompleted = req.seq;
    this.sqHead.step();
    this.cqHead.step();
    return req;
  }

  /** Requests still cached: those that will never complete if the queue goes away now. */
  pending(): number {
    return this.reqs.filter((r) => r !== null).length;
  }

  /**
   * Records an SQ doorbell (new tail) or CQ doorbell (new head) at slot `index` before the
   * driver rings it; false, recording nothing, when it would publish an SQE not filled or
   * release a CQE not accepted.
   */
  publish(cmd: number, index: number): boolean {
    if (cmd === DOORBELL_CMD.SQ) {
      const d = this.sqTail.depth;
      const ok = ringForward(this.sqPublished, index, d) <=
        ringForward(this.sqPublished, this.sqTail.index, d);
      if (ok) this.sqPublished = index % d;
      return ok;
    }
    const d = this.cqHead.depth;
    const ok = ringForward(this.cqPublished, index, d) <=
      ringForward(this.cqPublished, this.cqHead.index, d);
    if (ok) this.cqPublished = index % d;
    return ok;
  }
}

// ---------------------------------------------------------------------------------------------
// The device

/** What a request does: reads (and may rewrite) the SQE, returns the status byte. */
/** The device's DMA as an engine sees it: IOVAs of the queue's domain, any length. */
export interface EngineDma {
  /** Reads `length` bytes at `iova`, or the fault that stopped it. */
  read(iova: number, length: number): Uint8Array | { fault: string };
  /** Fills `out` with the bytes at `iova`; the fault that stopped it, if any. */
  readInto(iova: number, out: Uint8Array): { fault: string } | undefined;
  /** Writes `data` at `iova`; the fault that stopped it, if any. */
  write(iova: number, data: Uint8Array): { fault: string } | undefined;
}

/** What the device hands an engine with each request. */
export interface EnginePort {
  /** DMA through the IOMMU. */
  readonly dma: EngineDma;
  /** The queue's alg_type from its SQC. */
  readonly algType: number;
}

export interface QmEngine {
  /** Executes one request; the result's low 8 bits become the SQE status. */
  execute(sqe: Uint8Array, port: EnginePort): number;
}

/** One owner's mapping of the QM register page (the device sees writes as the owner's). */
export interface QmMmio {
  /** readl. */
  readl(offset: number): number;
  /** writel. */
  writel(offset: number, value: number): void;
  /** writeq (the doorbell). */
  writeq(offset: number, value: bigint): void;
  /** writeq of the 64-bit value `hi << 32 | lo`, given as its two 32-bit halves. */
  writeq32(offset: number, lo: number, hi: number): void;
  /** The 128-bit `ldp/stp` store of `qm_mb_write`. */
  write128(offset: number, data: Uint8Array): void;
}

/** Where the device put one completion (the spec's `QmDeviceStepOk`). */
export interface QmStepResult {
  /** SQ slot consumed. */
  readonly sqIndex: number;
  /** CQ slot written. */
  readonly cqIndex: number;
  /** Phase written with the CQE. */
  readonly phase: Phase;
}

/** A loaded SQC and the device's SQ positions. */
interface SqHw {
  readonly base: number;
  readonly pasid: number;
  readonly cqn: number;
  readonly algType: number;
  /** Next SQE to consume. */
  readonly head: RingPos;
  /** Tail published by the last SQ doorbell. */
  readonly tail: RingPos;
  /** Doorbells accepted from someone other than the owner. */
  foreign: number;
}

/** A loaded CQC and the device's CQ positions. */
interface CqHw {
  readonly base: number;
  /** Next CQ slot to write; its phase is the one written. */
  readonly tail: RingPos;
  /** Head released by the last CQ doorbell. */
  readonly head: RingPos;
}

/** The loaded EQC and the device's EQ positions. */
interface EqHw {
  readonly base: number;
  readonly tail: RingPos;
  readonly head: RingPos;
}

/** A mailbox read-back waiting for the device. */
interface PostedMailbox {
  readonly cmd: number;
  readonly queue: number;
  readonly addr: number;
}

/** The device's positions of one queue pair, as absolute counters (observation). */
export interface QmQueueObservation {
  /** SQEs consumed. */
  readonly sqHead: number;
  /** SQ tail published. */
  readonly sqDoorbell: number;
  /** CQEs written. */
  readonly cqTail: number;
  /** CQ head released. */
  readonly cqDoorbell: number;
  /** Foreign doorbells accepted. */
  readonly foreignDoorbells: number;
}

/** The QM device of one PCI function. */
export class QmDevice {
  readonly #k: Kernel;
  /** The device executes one SQE at a time. */
  readonly #lock = new Mutex();
  readonly #iommu: IommuCore;
  readonly #group: IommuGroup;
  readonly #engine: QmEngine;
  readonly #sq = new Map<number, SqHw>();
  readonly #cq = new Map<number, CqHw>();
  #eq: EqHw | null = null;
  /** 1 + the queue whose SQE is being executed, or 0 ({@link QM_EXEC_QUEUE}). */
  #executing = 0;
  #mailbox: PostedMailbox | null = null;
  #irqMasked = true;
  #irqPending = false;
  /**
   * The SQE being executed, and the CQE and EQE being written: reused by every step (steps are
   * serialized by the device lock). An engine must not keep the SQE past `execute`.
   */
  readonly #sqeBuf = new Uint8Array(QM_SQE_SIZE);
  readonly #cqeBuf = new Uint8Array(QM_CQE_SIZE);
  readonly #eqeBuf = new Uint8Array(QM_EQE_SIZE);

  /** A device behind `group` of `iommu`; `engine` executes requests. */
  constructor(kernel: Kernel, iommu: IommuCore, group: IommuGroup, engine: QmEngine) {
    this.#k = kernel;
    this.#iommu = iommu;
    this.#group = group;
    this.#engine = engine;
  }

  /** Maps the register page for `owner` (the kernel's ioremap, a user's mmap of region 0). */
  mmio(owner: QmOwner): QmMmio {
    return {
      readl: (offset) => this.#readl(offset),
      writel: (offset, value) => this.#writel(offset, value),
      writeq: (offset, value) => {
        if (offset !== QM_DOORBELL) return;
        const db = decodeDoorbell(value);
        this.#doorbell(owner, db.qn, db.cmd, db.index);
      },
      writeq32: (offset, lo, hi) => {
        if (offset === QM_DOORBELL) {
          this.#doorbell(owner, lo & 0xffff, lo >>> 16 & 0xffff, hi & 0xffff);
        }
      },
      write128: (offset, data) => {
        if (offset === QM_MAILBOX) this.#postMailbox(data);
      },
    };
  }

  /**
   * The doorbell page of queue `qn` alone, as a process maps it through its sdmdev (later
   * hardware has one page per queue; a queue of an mdev runs with PASID 0, so the page, not
   * the PASID, says whose doorbell it is): doorbells naming another queue are dropped and no
   * other register is there. Quirk `sharedDoorbellPage` (v1): the whole register page.
   */
  queueMmio(qn: number): QmMmio {
    if (this.#k.quirks.sharedDoorbellPage) return this.mmio("kernel");
    const ring = (db: { qn: number; cmd: number; index: number }) => {
      if (db.qn === qn) this.#doorbell("kernel", db.qn, db.cmd, db.index);
    };
    return {
      readl: () => 0,
      writel: () => {},
      write128: () => {},
      writeq: (offset, value) => {
        if (offset === QM_DOORBELL) ring(decodeDoorbell(value));
      },
      writeq32: (offset, lo, hi) => {
        if (offset === QM_DOORBELL) {
          ring({ qn: lo & 0xffff, cmd: lo >>> 16 & 0xffff, index: hi & 0xffff });
        }
      },
    };
  }

  /**
   * The hardware consumes the SQE at queue `qn`'s head: `engine` (default: the device's)
   * executes it, then status, CQE and EQE are written and the interrupt raised unless masked.
   * EAGAIN when nothing is published past the head, EBUSY when the CQ or EQ has no free slot,
   * EINVAL without loaded contexts, EFAULT when a ring access faults in the IOMMU.
   */
  step(qn: number, engine: QmEngine = this.#engine): MaybeAsync<QmStepResult | Errno> {
    return this.#lock.holdNow(this.#k.sched, "qm.device:busy", () => this.#stepLocked(qn, engine));
  }

  #stepLocked(qn: number, engine: QmEngine): MaybeAsync<QmStepResult | Errno> {
    const sq = this.#sq.get(qn);
    const cq = this.#cq.get(qn);
    const eq = this.#eq;
    if (!sq || !cq || !eq) return "EINVAL";
    if (sq.head.index === sq.tail.index) return "EAGAIN";
    if (ringForward(cq.head.index, cq.tail.index, cq.tail.depth) >= cq.tail.depth - 1) {
      return "EBUSY";
    }
    if (this.#eqFull(eq)) return "EBUSY";
    const sqIndex = sq.head.index;
    const sqe = this.#sqeBuf;
    if (!this.#dmaReadInto(sq.base + sqIndex * QM_SQE_SIZE, sqe)) return "EFAULT";
    const port = { dma: this.#enginePort(sq.pasid), algType: sq.algType };
    const status = engine.execute(sqe, port) & 0xff;
    this.#executing = qn + 1;
    return afterPoint(this.#k.sched, "qm.device:executed", () => {
      this.#executing = 0;
      return this.#complete(qn, sq, cq, eq, sqIndex, status);
    });
  }

  /** The rest of a step once SQE `sqIndex` executed: status, CQE and EQE written back. */
  #complete(
    qn: number,
    sq: SqHw,
    cq: CqHw,
    eq: EqHw,
    sqIndex: number,
    status: number,
  ): QmStepResult | Errno {
    if (this.#sq.get(qn) !== sq) return "EINVAL";
    const sqe = this.#sqeBuf;
    writeU32(sqe, SQE_DW3, (readU32(sqe, SQE_DW3) & ~0xff) | status);
    const cqIndex = cq.tail.index;
    const phase = cq.tail.phase;
    // Only these two fields of the CQE are ever written: the rest stays zero.
    const cqe = this.#cqeBuf;
    writeU16(cqe, CQE_SQ_HEAD, sqIndex);
    writeU16(cqe, CQE_W7, phase);
    const wrote = this.#dmaWrite(sq.base + sqIndex * QM_SQE_SIZE, sqe) &&
      this.#dmaWrite(cq.base + cqIndex * QM_CQE_SIZE, cqe) && this.#pushEqe(eq, sq.cqn);
    if (!wrote) return "EFAULT";
    sq.head.step();
    cq.tail.step();
    return { sqIndex, cqIndex, phase };
  }

  /**
   * A faulty device (or corrupted EQ memory): writes an EQE naming `cqn` whatever it is, and
   * raises the interrupt. EBUSY when the EQ is full, EINVAL without an EQ context.
   */
  writeBadEqe(cqn: number): Promise<Errno | undefined> {
    return this.#lock.hold(this.#k.sched, "qm.device:busy", () => {
      const eq = this.#eq;
      if (!eq) return "EINVAL";
      if (this.#eqFull(eq)) return "EBUSY";
      return this.#pushEqe(eq, cqn) ? undefined : "EFAULT";
    });
  }

  #eqFull(eq: EqHw): boolean {
    return ringForward(eq.head.index, eq.tail.index, eq.tail.depth) >= eq.tail.depth - 1;
  }

  /** Writes an EQE naming `cqn` at the EQ tail, advances it, raises the interrupt unless masked. */
  #pushEqe(eq: EqHw, cqn: number): boolean {
    const eqe = this.#eqeBuf;
    writeU32(eqe, 0, cqn | eq.tail.phase << 16);
    if (!this.#dmaWrite(eq.base + eq.tail.index * QM_EQE_SIZE, eqe)) return false;
    eq.tail.step();
    if (!this.#irqMasked) this.#irqPending = true;
    return true;
  }

  /** The device services a posted mailbox read-back and clears busy; EAGAIN if none. */
  serviceMailbox(): Errno | undefined {
    const mb = this.#mailbox;
    if (!mb) return "EAGAIN";
    this.#mailbox = null;
    this.#dmaWrite(mb.addr, this.#dumpContext(mb.cmd, mb.queue));
    return undefined;
  }

  /** Observation: the device's positions of queue `qn`, or undefined without contexts. */
  observeQueue(qn: number): QmQueueObservation | undefined {
    const sq = this.#sq.get(qn);
    const cq = this.#cq.get(qn);
    if (!sq || !cq) return undefined;
    return {
      sqHead: sq.head.absolute,
      sqDoorbell: sq.tail.absolute,
      cqTail: cq.tail.absolute,
      cqDoorbell: cq.head.absolute,
      foreignDoorbells: sq.foreign,
    };
  }

  /** Observation: EQEs written and EQ head released, as absolute counters. */
  observeEq(): { readonly tail: number; readonly doorbell: number } {
    return { tail: this.#eq?.tail.absolute ?? 0, doorbell: this.#eq?.head.absolute ?? 0 };
  }

  /** Observation: interrupt mask, pending interrupt, mailbox busy bit. */
  observeFlags(): { irqMasked: boolean; irqPending: boolean; mailboxBusy: boolean } {
    return {
      irqMasked: this.#irqMasked,
      irqPending: this.#irqPending,
      mailboxBusy: this.#mailbox !== null,
    };
  }

  #readl(offset: number): number {
    if (offset === QM_MAILBOX) return this.#mailbox ? QM_MB_BUSY : 0;
    if (offset === QM_EQ_INT_SOURCE) return this.#irqPending ? 1 : 0;
    if (offset === QM_EQ_INT_MASK) return this.#irqMasked ? 1 : 0;
    if (offset === QM_EXEC_QUEUE) return this.#executing;
    return 0;
  }

  #writel(offset: number, value: number): void {
    if (offset === QM_EQ_INT_SOURCE && value & 1) this.#irqPending = false;
    if (offset === QM_EQ_INT_MASK) {
      this.#irqMasked = (value & 1) === 1;
      const eq = this.#eq;
      const waiting = eq !== null && eq.head.index !== eq.tail.index;
      this.#irqPending = !this.#irqMasked && (this.#irqPending || waiting);
    }
    if (offset === QM_QUEUE_STOP) {
      this.#sq.delete(value);
      this.#cq.delete(value);
    }
  }

  #postMailbox(data: Uint8Array): void {
    if (this.#mailbox) return;
    const w0 = readU16(data, 0);
    const mb = { cmd: w0 & 0xff, queue: readU16(data, 2), addr: readAddr(data) };
    if (w0 >> MB_OP_SHIFT & 1) this.#mailbox = mb;
    else this.#loadContext(mb);
  }

  #loadContext(mb: PostedMailbox): void {
    if (mb.cmd === MAILBOX_CMD.SQC_BT || mb.cmd === MAILBOX_CMD.CQC_BT) return;
    const bytes = this.#dmaRead(mb.addr, QM_QC_SIZE);
    if (!bytes) return;
    const qc = decodeContext(mb.cmd, bytes);
    const phase = qc.w12 as Phase;
    if (mb.cmd === MAILBOX_CMD.SQC) {
      const head = new RingPos(qc.depth);
      this.#sq.set(mb.queue, {
        base: qc.base,
        pasid: qc.pasid,
        cqn: qc.w12,
        algType: qc.algType ?? 0,
        head,
        tail: new RingPos(qc.depth),
        foreign: 0,
      });
    } else if (mb.cmd === MAILBOX_CMD.CQC) {
      this.#cq.set(mb.queue, {
        base: qc.base,
        tail: new RingPos(qc.depth, phase),
        head: new RingPos(qc.depth, phase),
      });
    } else if (mb.cmd === MAILBOX_CMD.EQC) {
      this.#eq = {
        base: qc.base,
        tail: new RingPos(qc.depth, phase),
        head: new RingPos(qc.depth, phase),
      };
    }
  }

  /** The context a read-back returns: base and current head/tail slots (zeros if unloaded). */
  #dumpContext(cmd: number, queue: number): Uint8Array {
    const b = new Uint8Array(QM_QC_SIZE);
    const ring = cmd === MAILBOX_CMD.SQC
      ? this.#sq.get(queue)
      : cmd === MAILBOX_CMD.CQC
      ? this.#cq.get(queue)
      : cmd === MAILBOX_CMD.EQC
      ? this.#eq ?? undefined
      : undefined;
    if (ring) {
      writeU16(b, 0, ring.head.index);
      writeU16(b, 2, ring.tail.index);
      writeAddr(b, QC_BASE_L, ring.base);
    }
    return b;
  }

  /** A doorbell write's fields the device acts on (it ignores the priority). */
  #doorbell(writer: QmOwner, qn: number, cmd: number, index: number): void {
    if (cmd === DOORBELL_CMD.EQ) {
      this.#eq?.head.moveTo(index);
      return;
    }
    if (cmd !== DOORBELL_CMD.SQ && cmd !== DOORBELL_CMD.CQ) return;
    const sq = this.#sq.get(qn);
    const cq = this.#cq.get(qn);
    if (!sq || !cq) return;
    if (ownerPasid(writer) !== sq.pasid) {
      if (writer !== "kernel" && !this.#k.quirks.sharedDoorbellPage) return;
      sq.foreign++;
    }
    if (cmd === DOORBELL_CMD.SQ) sq.tail.moveTo(index);
    else cq.head.moveTo(index);
  }

  /**
   * The engine's DMA through the queues' domain (untagged): any length, page by page through
   * the IOMMU; a fault names the IOVA.
   */
  readonly #dmaPort: EngineDma = this.#port((iova) => this.#iommu.dma(this.#group, iova));
  /** The engine's DMA tagged with each PASID seen so far. */
  readonly #pasidPorts = new Map<number, EngineDma>();

  /**
   * The engine's DMA for a queue whose SQC carries `pasid`: tagged with it when the function
   * has PASIDs enabled (its reads walk that PASID's page table), untagged otherwise.
   */
  #enginePort(pasid: number): EngineDma {
    if (pasid === 0 || this.#group.pasidTable === null) return this.#dmaPort;
    let port = this.#pasidPorts.get(pasid);
    if (!port) {
      port = this.#port((va) => this.#iommu.dmaPasid(this.#group, pasid, va));
      this.#pasidPorts.set(pasid, port);
    }
    return port;
  }

  /** An engine DMA port over `translate`, page by page. */
  #port(translate: (address: number) => Frame | undefined): EngineDma {
    /**
     * Calls `f` with each page's piece of `buffer` at `iova` and where it lands: the first
     * address that does not translate, or undefined when every piece went through.
     */
    const pieces = (
      iova: number,
      buffer: Uint8Array,
      f: (frame: Frame, offset: number, piece: Uint8Array) => void,
    ): number | undefined => {
      for (let done = 0; done < buffer.length;) {
        const n = Math.min(buffer.length - done, PAGE_SIZE - ((iova + done) % PAGE_SIZE));
        const frame = translate(iova + done);
        if (!frame) return iova + done;
        f(frame, (iova + done) % PAGE_SIZE, buffer.subarray(done, done + n));
        done += n;
      }
      return undefined;
    };
    const port: EngineDma = {
      read: (iova, length) => {
        const out = new Uint8Array(length);
        return port.readInto(iova, out) ?? out;
      },
      readInto: (iova, out) => {
        const miss = pieces(
          iova,
          out,
          (frame, at, piece) => this.#k.phys.readInto(frame, at, piece),
        );
        return miss === undefined ? undefined : { fault: `iommu fault reading ${miss}` };
      },
      write: (iova, data) => {
        const miss = pieces(iova, data, (frame, at, piece) => this.#k.phys.write(frame, at, piece));
        return miss === undefined ? undefined : { fault: `iommu fault writing ${miss}` };
      },
    };
    return port;
  }

  #dmaRead(iova: number, length: number): Uint8Array | undefined {
    const frame = this.#iommu.dma(this.#group, iova);
    return frame && this.#k.phys.read(frame, iova % PAGE_SIZE, length);
  }

  /** Reads `out.length` bytes at `iova` into `out`; false on a fault. */
  #dmaReadInto(iova: number, out: Uint8Array): boolean {
    const frame = this.#iommu.dma(this.#group, iova);
    if (!frame) return false;
    this.#k.phys.readInto(frame, iova % PAGE_SIZE, out);
    return true;
  }

  #dmaWrite(iova: number, data: Uint8Array): boolean {
    const frame = this.#iommu.dma(this.#group, iova);
    if (!frame) return false;
    this.#k.phys.write(frame, iova % PAGE_SIZE, data);
    return true;
  }
}
