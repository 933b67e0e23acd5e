/**
 * The HiSilicon QM queue manager and its ring protocol, as a pure state machine
 * (RFCv2 4/7 `qm.c`/`qm.h`, 6/7 the sdmdev glue, 7/7 the user driver `hisi_qm_udrv.c`).
 *
 * What is modelled: the queue-pair allocator, the mailbox busy bit, every queue pair's
 * submission queue (SQ) and completion queue (CQ), the device-wide event queue (EQ), the
 * 64-bit doorbell, the EQ interrupt, the device as an actor that consumes SQEs, and the two
 * consumers: the user driver's poll and the kernel IRQ thread.
 *
 * Representation. Every ring position is an absolute counter that starts at 0 when the queue
 * is started (for the EQ: when the QM is started) and only grows. The slot index the hardware
 * sees is `counter % depth`, and the phase bit written with an entry is the parity of the
 * lap, {@link ringPhase}: 1 on the first lap, 0 on the second, and so on. A ring stores only
 * the entries it still needs (written and not yet released), so a step never copies a
 * depth-sized array.
 *
 * Full versus empty: a ring of depth `d` holds at most `d - 1` entries. A doorbell carries
 * only a 16-bit slot index, so the device learns the producer's tail (or the consumer's head)
 * modulo `d`; if all `d` slots could be in use, a full ring would publish the same index as an
 * empty one and the device could not tell them apart. Reserving one slot makes every doorbell
 * unambiguous; it is also where the later upstream driver settled (`used == depth - 1` means
 * full). So a producer may have at most `sqDepth - 1` requests outstanding, and the device
 * stalls when `cqDepth - 1` (or `eqDepth - 1`) entries are unreleased.
 *
 * The spec states the intended behaviour. Where the seed code differs (DOMAIN.md §5: the
 * never-cleared `is_sq_full`, the user driver's `sq_head = cq_head`, the kernel consuming a
 * user queue's CQ, the shared doorbell page, ...) that is a quirk of the implementation, never
 * a branch here. No command of this module emits events: the intended QM logs nothing.
 *
 * @module
 */

// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import {
  checkInvariants,
  type CommandSchema,
  type Errno,
  type Event,
  fail,
  type Invariant,
  type MachineSpec,
  ok,
  type ResultsOf,
  type ResultTable,
  type Ret,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

export type { Errno, Event, Invariant, Ret, StepResult } from "./types.ts";

// ---------------------------------------------------------------------------------------------
// Configuration and constants

/** Sizes of one QM function (`qm_info.qp_num`, `QM_Q_DEPTH`, RFCv2 4/7 qm.h). */
export interface QmConfig {
  /** Number of queue pairs the allocator hands out (`qp_num`). */
  readonly qpNum: number;
  /** Slots in every SQ. At most `sqDepth - 1` requests are outstanding per queue pair. */
  readonly sqDepth: number;
  /** Slots in every CQ. The device keeps at most `cqDepth - 1` CQEs unreleased. */
  readonly cqDepth: number;
  /** Slots in the device's one EQ. The device keeps at most `eqDepth - 1` EQEs unreleased. */
  readonly eqDepth: number;
}

/**
 * The default sizes: 64 queue pairs on the physical function and depth 1024 for every ring
 * (`QM_Q_DEPTH`, RFCv2 4/7 qm.h). Tests use depths of 2 to 16.
 */
export const DEFAULT_QM_CONFIG: QmConfig = {
  qpNum: 64,
  sqDepth: 1024,
  cqDepth: 1024,
  eqDepth: 1024,
};

/**
 * The `cmd` field of a doorbell (`DOORBELL_CMD_SQ/CQ/EQ/AEQ`, RFCv2 4/7 qm.c): SQ publishes a
 * new SQ tail, CQ releases CQEs up to a new head, EQ releases EQEs up to a new head, AEQ does
 * the same for the asynchronous event queue (not modelled: accepted and ignored).
 */
export const DOORBELL_CMD: { readonly SQ: 0; readonly CQ: 1; readonly EQ: 2; readonly AEQ: 3 } = {
  SQ: 0,
  CQ: 1,
  EQ: 2,
  AEQ: 3,
};

/**
 * Mailbox commands (`MAILBOX_CMD_*`, RFCv2 4/7 qm.c): load an SQ context, a CQ context, the EQ
 * context, or the base tables of SQ and CQ contexts.
 */
export const MAILBOX_CMD: {
  readonly SQC: 0;
  readonly CQC: 1;
  readonly EQC: 2;
  readonly SQC_BT: 4;
  readonly CQC_BT: 5;
} = { SQC: 0, CQC: 1, EQC: 2, SQC_BT: 4, CQC_BT: 5 };

// ---------------------------------------------------------------------------------------------
// Doorbell encoding

/** The four fields of one doorbell write (`struct doorbell`, RFCv2 4/7 qm.c). */
export interface Doorbell {
  /** Queue number, 16 bits. Ignored by the device for EQ and AEQ doorbells (the seed uses 0). */
  readonly qn: number;
  /** One of {@link DOORBELL_CMD}, 16 bits. */
  readonly cmd: number;
  /** The new tail (SQ) or head (CQ, EQ) as a slot index, 16 bits. */
  readonly index: number;
  /** Priority, 16 bits; the seed writes 0, and 1 for the second CQ doorbell (`c_flag`). */
  readonly priority: number;
}

const U16 = 0xffff;

function isU16(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= U16;
}

/**
 * Packs a doorbell into the 64-bit value written to the doorbell register:
 * `qn | cmd << 16 | (index | priority << 16) << 32` (RFCv2 4/7 `qm_db`, 7/7 `hacc_db`).
 * Throws a RangeError when a field is not a 16-bit unsigned integer.
 */
export function encodeDoorbell(db: Doorbell): bigint {
  for (const key of ["qn", "cmd", "index", "priority"] as const) {
    if (!isU16(db[key])) throw new RangeError(`doorbell ${key} ${db[key]} is not a u16`);
  }
  return BigInt(db.qn) | (BigInt(db.cmd) << 16n) |
    ((BigInt(db.index) | (BigInt(db.priority) << 16n)) << 32n);
}

/**
 * Unpacks a 64-bit doorbell value into its fields, the inverse of {@link encodeDoorbell}
 * (RFCv2 4/7 `qm_db`). Throws a RangeError when the value is not an unsigned 64-bit integer.
 */
export function decodeDoorbell(value: bigint): Doorbell {
  if (value < 0n || value >= 1n << 64n) {
    throw new RangeError(`doorbell value ${value} is not a u64`);
  }
  const m = 0xffffn;
  return {
    qn: Number(value & m),
    cmd: Number((value >> 16n) & m),
    index: Number((value >> 32n) & m),
    priority: Number((value >> 48n) & m),
  };
}

// ---------------------------------------------------------------------------------------------
// State

/** A phase bit as written in a CQE or EQE (`CQE_PHASE`, `EQE_PHASE`, RFCv2 4/7 qm.c). */
export type Phase = 0 | 1;

/**
 * Who owns a queue pair: the kernel (a crypto user of `hisi_qp_send`) or a user process (a
 * WarpDrive queue handed out by `hisi_qm_get_queue`, RFCv2 6/7), named by its process id.
 */
export type QmOwner = "kernel" | number;

/**
 * One occupied SQ slot (`struct hisi_qm_msg`, RFCv2 7/7): the request is abstracted to a tag;
 * `status` is the result the device wrote back (`dw3 & 0xff`), null until it consumed it.
 */
export interface Sqe {
  /** Submission number within the queue pair, from 0 at start; its slot is `seq % sqDepth`. */
  readonly seq: number;
  /** The caller's request tag (stands for the SQE payload). */
  readonly tag: number;
  /** Result written back by the device; 0 is success. */
  readonly status: number | null;
}

/** One CQE as the device wrote it (`struct cqe`, RFCv2 4/7 qm.c): SQ index and phase bit. */
export interface Cqe {
  /** Slot of the completed SQE (`sq_head`). */
  readonly sqIndex: number;
  /** Phase bit, the parity of the device's CQ lap when it wrote the entry (`w7 & 1`). */
  readonly phase: Phase;
}

/** One EQE as the device wrote it (`struct eqe`, RFCv2 4/7 qm.c): CQ number and phase bit. */
export interface Eqe {
  /** The completion queue that got a CQE (`dw0 & 0xffff`). */
  readonly cqn: number;
  /** Phase bit, the parity of the device's EQ lap when it wrote the entry (`dw0 >> 16 & 1`). */
  readonly phase: Phase;
}

/**
 * A queue pair `hisi_qm_create_qp` allocated and `hisi_qm_start_qp` has not started: its
 * SQC and CQC are not loaded, so it has no rings (RFCv2 4/7 qm.c).
 */
export interface CreatedQp {
  /** The lifecycle state. */
  readonly state: "created";
  /** Queue number, the index in the allocator's bitmap (`queue_id`). */
  readonly qn: number;
  /** Who allocated it; only the owner may start it, ring its doorbells, send and poll. */
  readonly owner: QmOwner;
}

/**
 * A started queue pair (`struct hisi_qp` and its `hisi_acc_qp_status`, RFCv2 4/7 qm.h): its
 * SQC and CQC are loaded and its rings live. Counters are absolute (see the module doc); they
 * satisfy `cqDoorbell <= cqHead <= cqTail == sqHead <= sqDoorbell <= sqTail`.
 */
export interface StartedQp {
  /** The lifecycle state. */
  readonly state: "started";
  /** Queue number, the index in the allocator's bitmap (`queue_id`). */
  readonly qn: number;
  /** Who allocated it; only the owner may ring its doorbells, send and poll. */
  readonly owner: QmOwner;
  /** Producer: SQEs written (`sq_tail`). */
  readonly sqTail: number;
  /** SQ tail published by the last SQ doorbell: the device may consume up to here. */
  readonly sqDoorbell: number;
  /** Device: SQEs consumed (the SQ head in the SQC). */
  readonly sqHead: number;
  /** Device: CQEs written (the CQ tail in the CQC). */
  readonly cqTail: number;
  /** Consumer: CQEs accepted (`cq_head`). */
  readonly cqHead: number;
  /** CQ head published by the last CQ doorbell: the device may overwrite slots before it. */
  readonly cqDoorbell: number;
  /** Consumer's expected phase (`cqc_phase`): 1 at start, flipped each time `cqHead` wraps. */
  readonly phase: Phase;
  /** The occupied SQ slots, oldest first: SQEs `cqHead .. sqTail - 1`. */
  readonly sq: readonly Sqe[];
  /** The unreleased CQEs, oldest first: CQEs `cqDoorbell .. cqTail - 1`. */
  readonly cq: readonly Cqe[];
  /** `seq` of the last completion delivered to the consumer, -1 before the first. */
  readonly lastCompleted: number;
  /** How often the IRQ thread woke this user queue's waiters (`vfio_sdmdev_wake_up`). */
  readonly wakeups: number;
  /** Doorbells for this queue the device accepted from someone not its owner (must stay 0). */
  readonly foreignDoorbells: number;
}

/**
 * One allocated queue pair, in one of its named lifecycle states: {@link CreatedQp} (no
 * rings) or {@link StartedQp}. Released queue pairs leave the allocator (`qps` holds null).
 */
export type QmQp = CreatedQp | StartedQp;

/** The whole QM function (`struct qm_info`, RFCv2 4/7 qm.h) plus the device-side state. */
export interface QmState {
  /** The sizes, fixed at creation. */
  readonly config: QmConfig;
  /** `qp_array`, one slot per queue number; null means the bitmap bit is clear. */
  readonly qps: readonly (QmQp | null)[];
  /** Device: EQEs written. */
  readonly eqTail: number;
  /** Kernel IRQ thread: EQEs handled (`eq_head`). */
  readonly eqHead: number;
  /** EQ head published by the last EQ doorbell. */
  readonly eqDoorbell: number;
  /** The kernel's expected EQ phase (the EQC phase bit): 1 at start, flips on each wrap. */
  readonly eqPhase: Phase;
  /** The unreleased EQEs, oldest first: EQEs `eqDoorbell .. eqTail - 1`. */
  readonly eq: readonly Eqe[];
  /** The EQ interrupt mask (`QM_VF_EQ_INT_MASK`); the seed unmasks it in `hisi_qm_start`. */
  readonly irqMasked: boolean;
  /** An EQ interrupt has been raised and the IRQ thread has not yet run for it. */
  readonly irqPending: boolean;
  /** The mailbox busy bit: set by a post, cleared by the device when it has taken it. */
  readonly mailboxBusy: boolean;
  /**
   * Coherent DMA buffers the driver holds in its function's default domain:
   * {@link QM_PROBE_BUFFERS} from probe and one SQ+CQ buffer per started queue pair. Part of
   * the state so that a leaked or double-freed ring shows in the abstraction.
   */
  readonly dmaBuffers: number;
}

/**
 * The DMA buffers the QM driver allocates at probe and keeps: the EQ context, the EQ, the SQC
 * and CQC tables, and the mailbox's read-back buffer.
 */
export const QM_PROBE_BUFFERS = 5;

/**
 * The phase bit of ring position `counter` in a ring of `depth` slots: 1 on the first lap,
 * then alternating (`CQC_PHASE_BIT`/`EQC_PHASE_BIT` flips in `qm_cq_head_update` and
 * `qm_irq_thread`, RFCv2 4/7).
 */
export function ringPhase(counter: number, depth: number): Phase {
  return (Math.floor(counter / depth) & 1) === 0 ? 1 : 0;
}

/**
 * Requests a queue pair may have outstanding (sent, completion not yet accepted): `depth - 1`
 * (see the module doc; RFCv2 4/7 `qm_get_avail_sqe`, 7/7 `hisi_qm_add_to_dio_q`).
 */
export function sqLimit(config: QmConfig): number {
  return config.sqDepth - 1;
}

/** Requests outstanding on a queue pair: sent and not yet completed (RFCv2 4/7 `hisi_qp_send`). */
export function outstanding(qp: StartedQp): number {
  return qp.sqTail - qp.cqHead;
}

/** A queue pair just allocated (`hisi_qm_create_qp`). */
export function createdQp(qn: number, owner: QmOwner): CreatedQp {
  return { state: "created", qn, owner };
}

/** A queue pair just started, its rings empty (`hisi_qm_start_qp`). */
export function startedQp(qn: number, owner: QmOwner): StartedQp {
  return {
    state: "started",
    qn,
    owner,
    sqTail: 0,
    sqDoorbell: 0,
    sqHead: 0,
    cqTail: 0,
    cqHead: 0,
    cqDoorbell: 0,
    phase: 1,
    sq: [],
    cq: [],
    lastCompleted: -1,
    wakeups: 0,
    foreignDoorbells: 0,
  };
}

/**
 * The state right after `hisi_qm_init` + `hisi_qm_start` (RFCv2 4/7): no queue pair
 * allocated, the EQ configured and empty with expected phase 1, the EQ interrupt unmasked, the
 * mailbox idle. Missing config fields take {@link DEFAULT_QM_CONFIG}. Throws a RangeError for
 * sizes the hardware cannot have (depth outside 2..65536, qpNum outside 1..65536).
 */
export function initialQmState(config: Partial<QmConfig> = {}): QmState {
  const c: QmConfig = { ...DEFAULT_QM_CONFIG, ...config };
  for (const key of ["sqDepth", "cqDepth", "eqDepth"] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 2 || c[key] > 0x10000) {
      throw new RangeError(`${key} ${c[key]} is not in 2..65536`);
    }
  }
  if (!Number.isInteger(c.qpNum) || c.qpNum < 1 || c.qpNum > 0x10000) {
    throw new RangeError(`qpNum ${c.qpNum} is not in 1..65536`);
  }
  return {
    config: c,
    qps: new Array<QmQp | null>(c.qpNum).fill(null),
    eqTail: 0,
    eqHead: 0,
    eqDoorbell: 0,
    eqPhase: 1,
    eq: [],
    irqMasked: false,
    irqPending: false,
    mailboxBusy: false,
    dmaBuffers: QM_PROBE_BUFFERS,
  };
}

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * The QM commands. Kernel side: `qm.alloc` (`hisi_qm_create_qp`), `qm.start`
 * (`hisi_qm_start_qp`), `qm.release` (`hisi_qm_release_qp`), `qm.send` (`hisi_qp_send`),
 * `qm.irq` (`qm_irq_thread`), `qm.setIrqMask`, `qm.mailbox` (`qm_mb`). User driver
 * (RFCv2 7/7): `qm.userSend` (`hisi_qm_add_to_dio_q`), `qm.poll` (`hisi_qm_get_from_dio_q`).
 * Anyone: `qm.doorbell`, a raw doorbell write. The hardware: `qm.deviceStep`,
 * `qm.mailboxDone`. See {@link step} for what each returns.
 */
export type QmCommand =
  | { readonly op: "qm.alloc"; readonly owner: QmOwner }
  | { readonly op: "qm.start"; readonly qn: number }
  | { readonly op: "qm.release"; readonly qn: number }
  | { readonly op: "qm.send"; readonly qn: number; readonly tag: number }
  | {
    readonly op: "qm.userSend";
    readonly qn: number;
    readonly by: number;
    readonly tag: number;
    /** Ring the SQ doorbell after writing the SQE (default true); false batches. */
    readonly ring?: boolean;
  }
  | {
    readonly op: "qm.doorbell";
    readonly by: QmOwner;
    readonly qn: number;
    readonly cmd: number;
    readonly index: number;
    readonly priority: number;
  }
  | {
    readonly op: "qm.deviceStep";
    readonly qn: number;
    /** The result the device writes back into the SQE (0..255, default 0 = success). */
    readonly status?: number;
  }
  | { readonly op: "qm.poll"; readonly qn: number; readonly by: number }
  | { readonly op: "qm.irq" }
  | { readonly op: "qm.setIrqMask"; readonly masked: boolean }
  | { readonly op: "qm.mailbox"; readonly cmd: number; readonly queue: number }
  | { readonly op: "qm.mailboxDone" }
  | { readonly op: "qm.deviceBadEqe"; readonly cqn: number };

/** Every QM op and its argument fields (public API: validates traces, generates commands). */
export const qmCommandSchema: CommandSchema<QmCommand["op"]> = {
  "qm.alloc": { owner: "owner" },
  "qm.start": { qn: "int" },
  "qm.release": { qn: "int" },
  "qm.send": { qn: "int", tag: "int" },
  "qm.userSend": { qn: "int", by: "int", tag: "int", ring: "bool?" },
  "qm.doorbell": { by: "owner", qn: "int", cmd: "int", index: "int", priority: "int" },
  "qm.deviceStep": { qn: "int", status: "int?" },
  "qm.poll": { qn: "int", by: "int" },
  "qm.irq": {},
  "qm.setIrqMask": { masked: "bool" },
  "qm.mailbox": { cmd: "int", queue: "int" },
  "qm.mailboxDone": {},
  "qm.deviceBadEqe": { cqn: "int" },
};

const COMPLETION = { record: { qn: "int", seq: "int", tag: "int", status: "int" } } as const;

/** The shape of every QM op's success value ({@link QmCompletion}, {@link QmIrqOk}, …). */
export const qmResults = {
  "qm.alloc": "int",
  "qm.start": "int",
  "qm.release": { record: { dropped: "int" } },
  "qm.send": "int",
  "qm.userSend": "int",
  "qm.doorbell": "null",
  "qm.deviceStep": {
    record: { sqIndex: "int", cqIndex: "int", phase: { oneOf: [{ const: 0 }, { const: 1 }] } },
  },
  "qm.poll": COMPLETION,
  "qm.irq": { record: { eqes: "int", completions: { list: COMPLETION }, woken: { list: "int" } } },
  "qm.setIrqMask": "null",
  "qm.mailbox": "null",
  "qm.mailboxDone": "null",
  "qm.deviceBadEqe": "null",
} as const satisfies ResultTable<QmCommand["op"]>;

/** Every `op` of {@link QmCommand}, for validating traces. */
export const QM_OPS: readonly QmCommand["op"][] = Object.keys(
  qmCommandSchema,
) as QmCommand["op"][];

/** A completion delivered to a consumer (`req_cb` in the kernel, a response in user space). */
export interface QmCompletion {
  /** The queue pair. */
  readonly qn: number;
  /** The request's submission number within the queue pair. */
  readonly seq: number;
  /** The request's tag. */
  readonly tag: number;
  /** The status the device wrote back (0 is success; a bad status still completes). */
  readonly status: number;
}

/** The `ok` value of `qm.deviceStep`: where the device put the CQE (RFCv2 4/7 `struct cqe`). */
export interface QmDeviceStepOk {
  /** The SQ slot consumed. */
  readonly sqIndex: number;
  /** The CQ slot written. */
  readonly cqIndex: number;
  /** The phase bit written with the CQE. */
  readonly phase: Phase;
}

/** The `ok` value of one `qm.irq` pass (RFCv2 4/7 `qm_irq_thread`). */
export interface QmIrqOk {
  /** EQEs handled. */
  readonly eqes: number;
  /** Per-CQE completions of kernel queue pairs, in the order the callbacks ran. */
  readonly completions: readonly QmCompletion[];
  /** User queue pairs whose waiters were woken, once per EQE naming them. */
  readonly woken: readonly number[];
}

// ---------------------------------------------------------------------------------------------
// Step

const NO_EVENTS: readonly Event[] = Object.freeze([]);

function done(state: QmState, ret: Ret): StepResult<QmState> {
  return { state, ret, events: NO_EVENTS };
}

function putQp(s: QmState, qn: number, qp: QmQp | null): QmState {
  const qps = s.qps.slice();
  qps[qn] = qp;
  return { ...s, qps };
}

/** The queue pair `qn` names, or an errno: EINVAL for a bad number, ENOENT if unallocated. */
function lookup(s: QmState, qn: number): QmQp | Errno {
  if (!Number.isInteger(qn) || qn < 0 || qn >= s.qps.length) return "EINVAL";
  return s.qps[qn] ?? "ENOENT";
}

/** Like {@link lookup}, and the queue pair must be started (EINVAL otherwise). */
function lookupStarted(s: QmState, qn: number): StartedQp | Errno {
  const qp = lookup(s, qn);
  if (typeof qp === "string") return qp;
  return qp.state === "started" ? qp : "EINVAL";
}

function isOwner(v: unknown): v is QmOwner {
  return v === "kernel" || (typeof v === "number" && Number.isSafeInteger(v) && v > 0);
}

/**
 * The phase bit a reader finds in the slot of ring position `at`. Positions in
 * `base .. tail - 1` hold an entry of the window; any later position holds whatever the
 * device wrote there one lap earlier, or zeroed memory on the first lap, and either way its
 * phase is the opposite of the one a reader at `at` expects.
 */
function slotPhase(
  window: readonly { readonly phase: Phase }[],
  base: number,
  tail: number,
  at: number,
  depth: number,
): Phase {
  if (at < tail) return window[at - base].phase;
  return ringPhase(at, depth) === 1 ? 0 : 1;
}

/** Distance from `from` forward to slot `index` in a ring of `depth` slots. */
function forward(from: number, index: number, depth: number): number {
  return ((index - (from % depth)) % depth + depth) % depth;
}

function alloc(s: QmState, owner: QmOwner): StepResult<QmState> {
  if (!isOwner(owner)) return fail(s, "EINVAL");
  const qn = s.qps.indexOf(null);
  if (qn < 0) return fail(s, "EBUSY");
  return done(putQp(s, qn, createdQp(qn, owner)), ok(qn));
}

function start(s: QmState, qn: number): StepResult<QmState> {
  const qp = lookup(s, qn);
  if (typeof qp === "string") return fail(s, qp);
  if (qp.state === "started") return fail(s, "EINVAL");
  if (s.mailboxBusy) return fail(s, "EBUSY");
  const next = putQp(s, qn, startedQp(qn, qp.owner));
  return done({ ...next, dmaBuffers: s.dmaBuffers + 1 }, ok(qn));
}

function release(s: QmState, qn: number): StepResult<QmState> {
  const qp = lookup(s, qn);
  if (typeof qp === "string") return fail(s, qp);
  const started = qp.state === "started";
  const next = putQp(s, qn, null);
  return done(
    { ...next, dmaBuffers: s.dmaBuffers - (started ? 1 : 0) },
    ok({ dropped: started ? qp.sq.length : 0 }),
  );
}

function submit(
  s: QmState,
  qn: number,
  by: QmOwner,
  tag: number,
  ring: boolean,
  full: Errno,
): StepResult<QmState> {
  const qp = lookup(s, qn);
  if (typeof qp === "string") return fail(s, qp);
  if (qp.owner !== by) return fail(s, "EPERM");
  if (qp.state !== "started" || !Number.isSafeInteger(tag)) return fail(s, "EINVAL");
  if (qp.sqTail - qp.cqHead >= s.config.sqDepth - 1) return fail(s, full);
  const seq = qp.sqTail;
  const sq = qp.sq.slice();
  sq.push({ seq, tag, status: null });
  const sqTail = seq + 1;
  const next: StartedQp = { ...qp, sq, sqTail, sqDoorbell: ring ? sqTail : qp.sqDoorbell };
  return done(putQp(s, qn, next), ok(seq));
}

function doorbell(
  s: QmState,
  by: QmOwner,
  db: Doorbell,
): StepResult<QmState> {
  if (!isOwner(by) || !isU16(db.qn) || !isU16(db.index) || !isU16(db.priority)) {
    return fail(s, "EINVAL");
  }
  const { eqDepth, sqDepth, cqDepth } = s.config;
  switch (db.cmd) {
    case DOORBELL_CMD.EQ: {
      if (by !== "kernel") return fail(s, "EPERM");
      const head = s.eqDoorbell + forward(s.eqDoorbell, db.index, eqDepth);
      if (head > s.eqHead) return fail(s, "EINVAL");
      return done({ ...s, eqDoorbell: head, eq: s.eq.slice(head - s.eqDoorbell) }, ok(null));
    }
    case DOORBELL_CMD.AEQ:
      return by === "kernel" ? done(s, ok(null)) : fail(s, "EPERM");
    case DOORBELL_CMD.SQ:
    case DOORBELL_CMD.CQ: {
      const qp = lookup(s, db.qn);
      if (typeof qp === "string") return fail(s, qp);
      if (qp.owner !== by) return fail(s, "EPERM");
      if (qp.state !== "started") return fail(s, "EINVAL");
      if (db.cmd === DOORBELL_CMD.SQ) {
        const tail = qp.sqDoorbell + forward(qp.sqDoorbell, db.index, sqDepth);
        if (tail > qp.sqTail) return fail(s, "EINVAL");
        return done(putQp(s, qp.qn, { ...qp, sqDoorbell: tail }), ok(null));
      }
      const head = qp.cqDoorbell + forward(qp.cqDoorbell, db.index, cqDepth);
      if (head > qp.cqHead) return fail(s, "EINVAL");
      const cq = qp.cq.slice(head - qp.cqDoorbell);
      return done(putQp(s, qp.qn, { ...qp, cqDoorbell: head, cq }), ok(null));
    }
    default:
      return fail(s, "EINVAL");
  }
}

function deviceStep(s: QmState, qn: number, status: number): StepResult<QmState> {
  const qp = lookupStarted(s, qn);
  if (typeof qp === "string") return fail(s, qp);
  if (!Number.isInteger(status) || status < 0 || status > 0xff) return fail(s, "EINVAL");
  if (qp.sqHead === qp.sqDoorbell) return fail(s, "EAGAIN");
  const { sqDepth, cqDepth, eqDepth } = s.config;
  if (qp.cqTail - qp.cqDoorbell >= cqDepth - 1) return fail(s, "EBUSY");
  if (s.eqTail - s.eqDoorbell >= eqDepth - 1) return fail(s, "EBUSY");
  const k = qp.sqHead - qp.cqHead;
  const sq = qp.sq.slice();
  sq[k] = { ...sq[k], status };
  const sqIndex = qp.sqHead % sqDepth;
  const cqIndex = qp.cqTail % cqDepth;
  const phase = ringPhase(qp.cqTail, cqDepth);
  const cq = qp.cq.slice();
  cq.push({ sqIndex, phase });
  const eq = s.eq.slice();
  eq.push({ cqn: qn, phase: ringPhase(s.eqTail, eqDepth) });
  const qps = s.qps.slice();
  qps[qn] = { ...qp, sq, cq, sqHead: qp.sqHead + 1, cqTail: qp.cqTail + 1 };
  const ret: QmDeviceStepOk = { sqIndex, cqIndex, phase };
  return done({
    ...s,
    qps,
    eq,
    eqTail: s.eqTail + 1,
    irqPending: s.irqPending || !s.irqMasked,
  }, ok(ret));
}

/**
 * Accepts every CQE at the consumer's head whose phase matches the expected one, then rings
 * the CQ doorbell once for all of them. Returns the new queue pair and the completions.
 */
function drainCq(
  qp: StartedQp,
  cqDepth: number,
  limit: number,
): [StartedQp, QmCompletion[]] {
  const out: QmCompletion[] = [];
  let head = qp.cqHead;
  let phase = qp.phase;
  while (
    out.length < limit && slotPhase(qp.cq, qp.cqDoorbell, qp.cqTail, head, cqDepth) === phase
  ) {
    const sqe = qp.sq[head - qp.cqHead];
    out.push({ qn: qp.qn, seq: sqe.seq, tag: sqe.tag, status: sqe.status ?? 0 });
    head++;
    if (head % cqDepth === 0) phase = phase === 1 ? 0 : 1;
  }
  if (out.length === 0) return [qp, out];
  const next: StartedQp = {
    ...qp,
    cqHead: head,
    cqDoorbell: head,
    phase,
    sq: qp.sq.slice(head - qp.cqHead),
    cq: qp.cq.slice(head - qp.cqDoorbell),
    lastCompleted: out[out.length - 1].seq,
  };
  return [next, out];
}

function poll(s: QmState, qn: number, by: number): StepResult<QmState> {
  const qp = lookup(s, qn);
  if (typeof qp === "string") return fail(s, qp);
  if (qp.owner !== by) return fail(s, "EPERM");
  if (qp.state !== "started") return fail(s, "EINVAL");
  const [next, got] = drainCq(qp, s.config.cqDepth, 1);
  if (got.length === 0) return fail(s, "EAGAIN");
  return done(putQp(s, qn, next), ok(got[0]));
}

function irq(s: QmState): StepResult<QmState> {
  if (!s.irqPending) return fail(s, "EAGAIN");
  const events: Event[] = [];
  const { eqDepth, cqDepth } = s.config;
  const qps = s.qps.slice();
  const completions: QmCompletion[] = [];
  const woken: number[] = [];
  let head = s.eqHead;
  let phase = s.eqPhase;
  while (slotPhase(s.eq, s.eqDoorbell, s.eqTail, head, eqDepth) === phase) {
    const { cqn } = s.eq[head - s.eqDoorbell];
    if (cqn >= qps.length) events.push({ warn: "eqe-cqn-out-of-range", cqn });
    const qp = cqn < qps.length ? qps[cqn] : null;
    if (qp !== null && qp.state === "started") {
      if (qp.owner === "kernel") {
        const [next, got] = drainCq(qp, cqDepth, Infinity);
        qps[cqn] = next;
        for (const c of got) completions.push(c);
      } else {
        qps[cqn] = { ...qp, wakeups: qp.wakeups + 1 };
        woken.push(cqn);
      }
    }
    head++;
    if (head % eqDepth === 0) phase = phase === 1 ? 0 : 1;
  }
  const ret: QmIrqOk = { eqes: head - s.eqHead, completions, woken };
  const next: QmState = {
    ...s,
    qps,
    eqHead: head,
    eqDoorbell: head,
    eqPhase: phase,
    eq: s.eq.slice(head - s.eqDoorbell),
    irqPending: false,
  };
  return { state: next, ret: ok(ret), events: events.length ? events : NO_EVENTS };
}

function setIrqMask(s: QmState, masked: boolean): StepResult<QmState> {
  if (typeof masked !== "boolean") return fail(s, "EINVAL");
  const irqPending = masked ? false : s.irqPending || s.eqHead < s.eqTail;
  return done({ ...s, irqMasked: masked, irqPending }, ok(null));
}

const MAILBOX_CMDS: readonly number[] = Object.values(MAILBOX_CMD);

function mailbox(s: QmState, cmd: number, queue: number): StepResult<QmState> {
  if (!MAILBOX_CMDS.includes(cmd) || !isU16(queue)) return fail(s, "EINVAL");
  if (s.mailboxBusy) return fail(s, "EBUSY");
  return done({ ...s, mailboxBusy: true }, ok(null));
}

/** A faulty device writes an EQE naming `cqn` (16 bits, possibly past `qpNum`). */
function deviceBadEqe(s: QmState, cqn: number): StepResult<QmState> {
  if (!isU16(cqn)) return fail(s, "EINVAL");
  const { eqDepth } = s.config;
  if (s.eqTail - s.eqDoorbell >= eqDepth - 1) return fail(s, "EBUSY");
  const eq = s.eq.slice();
  eq.push({ cqn, phase: ringPhase(s.eqTail, eqDepth) });
  return done(
    { ...s, eq, eqTail: s.eqTail + 1, irqPending: s.irqPending || !s.irqMasked },
    ok(null),
  );
}

function mailboxDone(s: QmState): StepResult<QmState> {
  if (!s.mailboxBusy) return fail(s, "EAGAIN");
  return done({ ...s, mailboxBusy: false }, ok(null));
}

/**
 * Applies one command. What each returns (RFCv2 4/7 qm.c unless noted):
 *
 * - `qm.alloc {owner}` (`hisi_qm_create_qp`): ok(qn), the first free queue number; EBUSY when
 *   all `qpNum` are taken; EINVAL for an owner that is neither "kernel" nor a positive pid.
 * - `qm.start {qn}` (`hisi_qm_start_qp`): loads SQC and CQC through the mailbox and starts the
 *   rings empty with expected phase 1: ok(qn); ENOENT if not allocated; EINVAL if already
 *   started; EBUSY if the mailbox busy bit is set (the driver's retries run out, since the
 *   device clears it only in a later step).
 * - `qm.release {qn}` (`hisi_qm_release_qp`, with the queue stopped first: the device drops
 *   the queue's unconsumed SQEs and never touches its rings again): ok({dropped}), the
 *   number of requests that will never complete; ENOENT if not allocated. EQEs already in the
 *   EQ naming it stay and are skipped (or, after a reallocation, find nothing to poll).
 * - `qm.send {qn, tag}` (`hisi_qp_send`, kernel owners only): writes the SQE and rings the SQ
 *   doorbell: ok(seq); ENOSPC when `sqDepth - 1` are outstanding (nothing is lost); EPERM
 *   for a user queue; EINVAL if not started. The one completion arrives through `qm.irq`.
 * - `qm.userSend {qn, by, tag, ring?}` (RFCv2 7/7 `hisi_qm_add_to_dio_q`): the same for the
 *   user owner `by`, with EBUSY when full; with `ring: false` the doorbell is left to a later
 *   `qm.doorbell`.
 * - `qm.doorbell {by, qn, cmd, index, priority}` (`qm_db`): a raw doorbell write by `by`. SQ
 *   publishes the tail at slot `index`, CQ releases CQEs before slot `index`, EQ releases
 *   EQEs before slot `index`, AEQ is accepted and ignored; the priority is ignored. ok(null);
 *   EPERM unless `by` owns queue `qn` (SQ, CQ) or is the kernel (EQ, AEQ): doorbells are per
 *   queue, so nobody can ring another owner's queue; EINVAL for an unknown cmd, a queue not
 *   started, or an index that would publish unwritten SQEs or release unread CQEs or EQEs.
 * - `qm.deviceStep {qn, status?}` (the hardware): consumes the SQE at the device's SQ head,
 *   writes `status` back into it, writes a CQE (SQ index, the CQ lap's phase) at the CQ tail,
 *   an EQE naming the CQ at the EQ tail, and raises the interrupt unless masked:
 *   ok({@link QmDeviceStepOk}). EAGAIN when nothing is published past its head (idle). EBUSY
 *   when it stalls because the CQ or the EQ has no free slot: the device never overwrites an
 *   unreleased entry, and the SQE stays for a later step. ENOENT/EINVAL as for `qm.start`.
 * - `qm.poll {qn, by}` (RFCv2 7/7 `hisi_qm_get_from_dio_q`, user owners only): accepts the
 *   CQE at the head if its phase is the expected one, retires its SQE, flips the expected
 *   phase when the head wraps, and rings the CQ doorbell: ok({@link QmCompletion}), whatever
 *   the status; EAGAIN when the phase does not match (nothing new); EPERM if `by` is not the
 *   owner (so the kernel never polls a user queue).
 * - `qm.irq` (`qm_irq_thread` with `qm_poll_qp`): needs a pending interrupt, else EAGAIN.
 *   Walks the EQ while the phase matches; for each EQE: a started kernel queue gets one
 *   completion per CQE (`req_cb`) and its CQ doorbell rung; a started user queue only gets
 *   its waiters woken (`event_cb`), its CQ untouched; then the EQ head advances (flipping the
 *   expected phase on a wrap) and the EQ doorbell is rung. ok({@link QmIrqOk}).
 * - `qm.setIrqMask {masked}` (`QM_VF_EQ_INT_MASK`): ok(null). Masking drops a pending
 *   interrupt; unmasking raises one if EQEs are waiting.
 * - `qm.mailbox {cmd, queue}` (`qm_mb`): posts a mailbox command, setting the busy bit:
 *   ok(null); EBUSY if it is already set; EINVAL for an unknown command.
 * - `qm.mailboxDone` (the hardware): clears the busy bit: ok(null); EAGAIN if it was clear.
 * - `qm.deviceBadEqe {cqn}` (a faulty device or corrupted EQ memory): an EQE naming `cqn`,
 *   which may be past `qpNum`, written at the EQ tail with the interrupt raised: ok(null);
 *   EBUSY when the EQ is full; EINVAL for a value that is not 16 bits. The IRQ thread must not
 *   trust it: `qm.irq` skips such an EQE with an `eqe-cqn-out-of-range` warning.
 */
export function step<C extends QmCommand>(
  state: QmState,
  cmd: C,
): TypedStepResult<QmState, ResultsOf<typeof qmResults>[C["op"]]>;
/** step of any command, its success value untyped. */
export function step(state: QmState, cmd: QmCommand): StepResult<QmState> {
  // Matching on the op string (not an object pattern) keeps dispatch near 0.2 µs a step; the
  // arms narrow `cmd` with `as`, which is sound because the op was just matched. Hot first.
  const c = cmd;
  return match(cmd.op)
    .with("qm.deviceStep", (op) => {
      const d = as(c, op);
      return deviceStep(state, d.qn, d.status ?? 0);
    })
    .with("qm.userSend", (op) => {
      const u = as(c, op);
      return submit(state, u.qn, u.by, u.tag, u.ring ?? true, "EBUSY");
    })
    .with("qm.poll", (op) => poll(state, as(c, op).qn, as(c, op).by))
    .with("qm.send", (op) => submit(state, as(c, op).qn, "kernel", as(c, op).tag, true, "ENOSPC"))
    .with("qm.irq", () => irq(state))
    .with("qm.doorbell", (op) => doorbell(state, as(c, op).by, as(c, op)))
    .with("qm.alloc", (op) => alloc(state, as(c, op).owner))
    .with("qm.start", (op) => start(state, as(c, op).qn))
    .with("qm.release", (op) => release(state, as(c, op).qn))
    .with("qm.setIrqMask", (op) => setIrqMask(state, as(c, op).masked))
    .with("qm.mailbox", (op) => mailbox(state, as(c, op).cmd, as(c, op).queue))
    .with("qm.mailboxDone", () => mailboxDone(state))
    .with("qm.deviceBadEqe", (op) => deviceBadEqe(state, as(c, op).cqn))
    .exhaustive(unknownOp);
}

/** The command with op `K`. */
type QmCmd<K extends QmCommand["op"]> = Extract<QmCommand, { readonly op: K }>;

/** Narrows a command whose op has just been matched to `op`. */
function as<K extends QmCommand["op"]>(cmd: QmCommand, _op: K): QmCmd<K> {
  return cmd as QmCmd<K>;
}

// ---------------------------------------------------------------------------------------------
// Invariants

function eachQp(s: QmState, f: (qp: QmQp) => string | undefined): string | undefined {
  for (let qn = 0; qn < s.qps.length; qn++) {
    const qp = s.qps[qn];
    if (qp === null) continue;
    const msg = qp.qn === qn ? f(qp) : `slot holds qp ${qp.qn}`;
    if (msg !== undefined) return `qp ${qn}: ${msg}`;
  }
  return undefined;
}

/** Like {@link eachQp}, over the started queue pairs only (the ones with rings). */
function eachStartedQp(
  s: QmState,
  f: (qp: StartedQp) => string | undefined,
): string | undefined {
  return eachQp(s, (qp) => qp.state === "started" ? f(qp) : undefined);
}

/**
 * The QM invariants (DOMAIN.md §5), each a named predicate over {@link QmState}. Scope
 * `always` marks the safety properties, which must hold at every scheduling point of an
 * implementation, even in the middle of an operation; `between-ops` marks structural ones
 * relating fields an operation updates one after the other.
 *
 * - `qm.outstanding-limit` (always): `0 <= sqTail - cqHead <= sqDepth - 1`
 *   (`hisi_qp_send`, `hisi_qm_add_to_dio_q`).
 * - `qm.cq-no-overwrite` (always): at most `cqDepth - 1` CQEs unreleased: the device never
 *   overwrote a CQE the consumer had not released.
 * - `qm.eq-no-overwrite` (always): at most `eqDepth - 1` EQEs unreleased.
 * - `qm.doorbell-owner` (always): no queue accepted a doorbell from anyone but its owner.
 * - `qm.allocator`: `qps` has `qpNum` slots, slot `qn` holds queue pair `qn` (every invariant
 *   over queue pairs checks this) and owners are valid. (A queue pair that is not started
 *   has no rings by construction: {@link CreatedQp}.)
 * - `qm.ring-order`: `cqDoorbell <= cqHead <= cqTail == sqHead <= sqDoorbell <= sqTail`: the
 *   device consumes only published SQEs and writes one CQE per SQE; the consumer accepts only
 *   written CQEs and releases only accepted ones.
 * - `qm.windows`: `sq`, `cq` and `eq` hold exactly the entries their counters say.
 * - `qm.in-order-once`: the occupied SQ slots are submissions `cqHead, cqHead + 1, ...` in
 *   slot order, those before the device head carry a status and the rest do not, and the last
 *   completion delivered was submission `cqHead - 1`: every accepted SQE completes exactly
 *   once, in submission order.
 * - `qm.phase`: the consumer's expected phase is the phase of its head's lap, and every
 *   unreleased CQE carries its own lap's phase and names its SQE's slot: a reader following
 *   the phase rule never accepts a stale CQE (`qm_poll_qp`, `hisi_qm_get_from_dio_q`).
 * - `qm.eq`: `eqDoorbell <= eqHead <= eqTail`, every unreleased EQE carries its lap's phase
 *   and a 16-bit queue number (the device may name any; `qm.irq` skips those past `qpNum`), and the kernel's expected EQ phase is its head's lap
 *   phase (`qm_irq_thread`).
 * - `qm.irq`: a pending interrupt is never masked, and unhandled EQEs with the interrupt
 *   unmasked always have an interrupt pending (none is lost).
 */
export const qmInvariants: readonly Invariant<QmState>[] = [
  {
    name: "qm.dma-buffers",
    scope: "between-ops",
    check: (s) => {
      const started = s.qps.filter((qp) => qp?.state === "started").length;
      const want = QM_PROBE_BUFFERS + started;
      return s.dmaBuffers === want
        ? undefined
        : `${s.dmaBuffers} DMA buffers held, ${want} expected (probe + ${started} rings)`;
    },
  },
  {
    name: "qm.outstanding-limit",
    scope: "always",
    check: (s) =>
      eachStartedQp(s, (qp) => {
        const n = outstanding(qp);
        return n < 0 || n > sqLimit(s.config)
          ? `${n} outstanding, limit ${sqLimit(s.config)}`
          : undefined;
      }),
  },
  {
    name: "qm.cq-no-overwrite",
    scope: "always",
    check: (s) =>
      eachStartedQp(s, (qp) => {
        const n = qp.cqTail - qp.cqDoorbell;
        return n > s.config.cqDepth - 1
          ? `${n} CQEs unreleased in a CQ of depth ${s.config.cqDepth}`
          : undefined;
      }),
  },
  {
    name: "qm.eq-no-overwrite",
    scope: "always",
    check: (s) => {
      const n = s.eqTail - s.eqDoorbell;
      return n > s.config.eqDepth - 1
        ? `${n} EQEs unreleased in an EQ of depth ${s.config.eqDepth}`
        : undefined;
    },
  },
  {
    name: "qm.doorbell-owner",
    scope: "always",
    check: (s) =>
      eachStartedQp(
        s,
        (qp) =>
          qp.foreignDoorbells === 0
            ? undefined
            : `${qp.foreignDoorbells} doorbells from someone other than ${qp.owner}`,
      ),
  },
  {
    name: "qm.allocator",
    scope: "between-ops",
    check: (s) => {
      if (s.qps.length !== s.config.qpNum) {
        return `${s.qps.length} qp slots, qpNum is ${s.config.qpNum}`;
      }
      return eachQp(
        s,
        (qp) => isOwner(qp.owner) ? undefined : `owner ${qp.owner} is neither the kernel nor a pid`,
      );
    },
  },
  {
    name: "qm.ring-order",
    scope: "between-ops",
    check: (s) =>
      eachStartedQp(
        s,
        (qp) =>
          qp.cqDoorbell <= qp.cqHead && qp.cqHead <= qp.cqTail && qp.cqTail === qp.sqHead &&
            qp.sqHead <= qp.sqDoorbell && qp.sqDoorbell <= qp.sqTail && qp.cqDoorbell >= 0
            ? undefined
            : `counters out of order: cqDoorbell ${qp.cqDoorbell} cqHead ${qp.cqHead} ` +
              `cqTail ${qp.cqTail} sqHead ${qp.sqHead} sqDoorbell ${qp.sqDoorbell} ` +
              `sqTail ${qp.sqTail}`,
      ),
  },
  {
    name: "qm.windows",
    scope: "between-ops",
    check: (s) => {
      if (s.eq.length !== s.eqTail - s.eqDoorbell) {
        return `${s.eq.length} EQEs stored for ${s.eqTail - s.eqDoorbell} unreleased`;
      }
      return eachStartedQp(s, (qp) => {
        const held = qp.sqTail - qp.cqHead;
        if (qp.sq.length !== held) return `${qp.sq.length} SQ slots stored for ${held} held`;
        const unreleased = qp.cqTail - qp.cqDoorbell;
        if (qp.cq.length !== unreleased) {
          return `${qp.cq.length} CQEs stored for ${unreleased} unreleased`;
        }
        return undefined;
      });
    },
  },
  {
    name: "qm.in-order-once",
    scope: "between-ops",
    check: (s) =>
      eachStartedQp(s, (qp) => {
        if (qp.lastCompleted !== qp.cqHead - 1) {
          return `last completion was #${qp.lastCompleted}, ${qp.cqHead} accepted`;
        }
        for (let i = 0; i < qp.sq.length; i++) {
          const sqe = qp.sq[i];
          const seq = qp.cqHead + i;
          if (sqe.seq !== seq) return `SQ slot ${i} holds #${sqe.seq}, expected #${seq}`;
          if ((sqe.status !== null) !== (seq < qp.sqHead)) {
            return `#${seq} status ${sqe.status} with device head ${qp.sqHead}`;
          }
        }
        return undefined;
      }),
  },
  {
    name: "qm.phase",
    scope: "between-ops",
    check: (s) =>
      eachStartedQp(s, (qp) => {
        const { cqDepth, sqDepth } = s.config;
        if (qp.phase !== ringPhase(qp.cqHead, cqDepth)) {
          return `expects phase ${qp.phase} at CQ position ${qp.cqHead}`;
        }
        for (let i = 0; i < qp.cq.length; i++) {
          const at = qp.cqDoorbell + i;
          const cqe = qp.cq[i];
          if (cqe.phase !== ringPhase(at, cqDepth)) {
            return `CQE ${at} has phase ${cqe.phase}`;
          }
          if (cqe.sqIndex !== at % sqDepth) return `CQE ${at} names SQ slot ${cqe.sqIndex}`;
        }
        return undefined;
      }),
  },
  {
    name: "qm.eq",
    scope: "between-ops",
    check: (s) => {
      const { eqDepth } = s.config;
      if (!(s.eqDoorbell <= s.eqHead && s.eqHead <= s.eqTail && s.eqDoorbell >= 0)) {
        return `EQ counters out of order: doorbell ${s.eqDoorbell} head ${s.eqHead} ` +
          `tail ${s.eqTail}`;
      }
      if (s.eqPhase !== ringPhase(s.eqHead, eqDepth)) {
        return `kernel expects EQ phase ${s.eqPhase} at position ${s.eqHead}`;
      }
      for (let i = 0; i < s.eq.length; i++) {
        const at = s.eqDoorbell + i;
        const eqe = s.eq[i];
        if (eqe.phase !== ringPhase(at, eqDepth)) return `EQE ${at} has phase ${eqe.phase}`;
        if (!isU16(eqe.cqn)) return `EQE ${at} names CQ ${eqe.cqn}, not a 16-bit number`;
      }
      return undefined;
    },
  },
  {
    name: "qm.irq",
    scope: "between-ops",
    check: (s) => {
      if (s.irqPending && s.irqMasked) return "interrupt pending while masked";
      if (!s.irqMasked && !s.irqPending && s.eqHead < s.eqTail) {
        return `${s.eqTail - s.eqHead} EQEs unhandled, interrupt unmasked, none pending`;
      }
      return undefined;
    },
  },
];

/**
 * The names of the violated {@link qmInvariants} with their messages, empty when all hold.
 * A convenience for runners (RFCv2 4/7 as a whole).
 */
export function checkQmInvariants(state: QmState): string[] {
  return checkInvariants(qmInvariants, state);
}

/** The QM ring protocol as one record (configured by a partial {@link QmConfig}). */
export const qmSpec: MachineSpec<QmState, QmCommand, Partial<QmConfig>> = {
  component: "qm",
  initial: initialQmState,
  step,
  invariants: qmInvariants,
  schema: qmCommandSchema,
  results: qmResults,
};
