/**
 * The char-device design for user-space accelerator queues (seed 001: a reviewer's
 * counter-proposal to sdmdev, "open the device file, the driver makes a per-open context, an
 * ioctl binds a queue, mmap it, close releases everything"), in the shape upstream later merged
 * as uacce (drivers/misc/uacce, include/uapi/misc/uacce/uacce.h), with the HiSilicon QM as the
 * parent driver.
 *
 * Intended behaviour, and the decisions where upstream is silent or differs:
 * - `uacce.register {parent, qpNum, sva}`: the QM function `parent` is probed with `qpNum`
 *   queue pairs and registers its char device. A requested `UACCE_DEV_SVA` is kept only when the
 *   parent's IOMMU can do SVA (the topology's `svaParents`); otherwise it is dropped and the
 *   device works without it (`uacce_alloc` clears the flag when enabling the IOMMU feature
 *   fails; the caller reads the negotiated flags). ok({dev, flags}); device ids count up from 1
 *   and are never reused (upstream's xarray hands out the lowest free minor: a model choice, so
 *   a file always names the device it was opened on).
 * - `uacce.open {parent, by}`: process `by` opens the parent's char device and gets a file with
 *   its own queue in state INIT, holding one queue pair (the lowest free) and its DMA memory
 *   (the DUS region: the queue's SQ and CQ). On an SVA device the process is bound first and the
 *   queue carries its PASID (one per process, the lowest free from 1, kept for the process's
 *   life in this model); without SVA the PASID is 0. ENODEV with no registered device (also for
 *   an open that found the device while its remove was running: upstream answers EINVAL there,
 *   once `uacce->parent` is cleared, but a device being removed is no device to the spec);
 *   EBUSY with no free queue pair (`get_queue`).
 * - `uacce.startQ {file}` (`UACCE_CMD_START_Q`): INIT → STARTED, the hardware runs the queue.
 *   EBADF without an open fd; ENXIO for a ZOMBIE queue (upstream's ioctl refuses any queue that
 *   is not INIT or STARTED); EINVAL when already STARTED.
 * - `uacce.putQ {file}` (`UACCE_CMD_PUT_Q`): the queue stops (the hardware is quiesced) and
 *   becomes ZOMBIE. Its queue pair and DMA memory are given back at once, as upstream's PUT_Q
 *   intends ("free queue resource immediately"), but only when the file maps neither region:
 *   a DUS mapping reaches that memory and an MMIO mapping rings that queue pair's doorbell, so
 *   while either exists they stay reserved until the file is released (upstream's PUT_Q calls
 *   `put_queue` unconditionally; see quirk `putQueueFreesMapped`). EBADF, ENXIO as for
 *   START_Q.
 * - `uacce.mmap {file, pgoff, size}`: region `pgoff` 0 is MMIO (the queue's doorbell page,
 *   {@link UACCE_MMIO_SIZE}), 1 is DUS (the queue's DMA memory, {@link UACCE_DUS_SIZE}).
 *   ok(mapping id, the lowest free from 1 in the file). In upstream's order: EBADF; EINVAL for
 *   another pgoff; ENXIO unless INIT or STARTED; EEXIST when the region is mapped already (it is
 *   free again once that mapping is unmapped); EINVAL unless `size` is exactly the region's
 *   size (the QM's mmap insists on the exact DUS size and, here, on the exact MMIO size too).
 *   Mappings are `VM_DONTCOPY | VM_WIPEONFORK` (no child inherits them; fork is not modelled).
 * - `uacce.munmap {file, map}` and `uacce.close {file}`: a mapping holds the file as its fd does;
 *   the file is released when the last of them goes: the queue stops (if STARTED) and its queue
 *   pair and DMA memory are freed. EINVAL for no such mapping; EBADF when the fd is closed.
 * - `uacce.access {file, map}`: the process touches its mapping (a doorbell-page read, a write
 *   into the DUS memory): ok(0); EFAULT once the mapping was zapped (SIGBUS); EINVAL for no
 *   such mapping.
 * - `uacce.remove {parent}` (the PCI remove, `uacce_remove`): cannot fail on a registered device
 *   and does not wait for users: every queue of the device is stopped, its mappings zapped
 *   (`unmap_mapping_range`; the VMAs stay until unmapped), its queue pair and DMA memory freed,
 *   and it becomes ZOMBIE; the device is gone (opens fail ENODEV); its files stay until closed
 *   and unmapped, and every call on them fails (ENXIO, EFAULT). ok(0); ENODEV when not
 *   registered. Upstream puts the queues before zapping: its QM's DMA memory outlives the uacce
 *   device, so the order is harmless there; here the DUS memory is the queue's, so the zap
 *   comes first.
 * - `uacce.readAttrs {parent}`: the sysfs attributes `api`, `flags`, `available_instances` (free
 *   queue pairs), `algorithms`, `region_mmio_size`, `region_dus_size`. ENODEV when not
 *   registered.
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import {
  checkInvariants,
  type CommandSchema,
  fail,
  type Invariant,
  type MachineSpec,
  ok,
  PAGE_SIZE,
  type ResultsOf,
  type ResultTable,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

/** `UACCE_DEV_SVA`: the device shares process address spaces (PASIDs, I/O page faults). */
export const UACCE_DEV_SVA = 1;

/** `UACCE_QFRT_MMIO`, `UACCE_QFRT_DUS`: the mmap regions, by `vm_pgoff`. */
export const UACCE_QFRT = { MMIO: 0, DUS: 1 } as const;

/** `region_mmio_size`: the queue's doorbell page. */
export const UACCE_MMIO_SIZE: number = PAGE_SIZE;

/**
 * `region_dus_size`: the queue's DMA memory, its SQ and CQ (32 SQEs of 128 bytes and 32 CQEs
 * of 16 bytes: 4608 bytes, two pages).
 */
export const UACCE_DUS_SIZE: number = 2 * PAGE_SIZE;

/** The `api` attribute of the QM's char devices. */
export const UACCE_API = "hisi_qm_v2";

/** The `algorithms` attribute of the ZIP engine's char devices. */
export const UACCE_ALGORITHMS = "zlib\ngzip";

/** The most queue pairs a parent is probed with. */
export const UACCE_MAX_QPS = 8;

/** A registered char device. */
export interface UacceDevice {
  /** Its id (the minor), from 1, never reused. */
  readonly dev: number;
  /** The QM function it belongs to. */
  readonly parent: number;
  /** Negotiated flags ({@link UACCE_DEV_SVA} or 0). */
  readonly flags: number;
  /** Queue pairs of the parent. */
  readonly qpNum: number;
  /** What `available_instances` reads: queue pairs no queue holds. */
  readonly available: number;
  /**
   * The parent's taken queue pairs: the file whose queue holds each, whether the hardware
   * runs it, and whether its DMA memory (the DUS region) is allocated.
   */
  readonly qps: ReadonlyMap<number, UacceQp>;
}

/** One taken queue pair of a device. */
export interface UacceQp {
  /** The file whose queue holds it. */
  readonly file: number;
  /** The hardware runs it. */
  readonly running: boolean;
  /** Its DMA memory is allocated. */
  readonly dus: boolean;
}

/** One mapping of a file. */
export interface UacceMap {
  /** Id within its file, the lowest free from 1. */
  readonly id: number;
  /** {@link UACCE_QFRT}: 0 MMIO, 1 DUS. */
  readonly region: 0 | 1;
  /** Length in bytes. */
  readonly size: number;
  /** Its pages were zapped by the parent's removal: an access faults. */
  readonly zapped: boolean;
}

/**
 * A queue's lifecycle (uacce's `UACCE_Q_INIT`, `UACCE_Q_STARTED`, `UACCE_Q_ZOMBIE`). A ZOMBIE
 * queue is stopped; it still holds its queue pair and DMA memory (`held`) when its user put it
 * while something mapped it (they go at release), and holds nothing once they were freed (a
 * PUT_Q of an unmapped queue, or the parent's removal).
 */
export type UacceQueueLife =
  | { readonly state: "INIT"; readonly qn: number }
  | { readonly state: "STARTED"; readonly qn: number }
  | { readonly state: "ZOMBIE"; readonly held: true; readonly qn: number }
  | { readonly state: "ZOMBIE"; readonly held: false };

/** An open file of a char device: the per-open context and its queue. */
export interface UacceFile {
  /** Its id. */
  readonly file: number;
  /** The parent it was opened on. */
  readonly parent: number;
  /** The device it was opened on. */
  readonly dev: number;
  /** The process that opened it. */
  readonly by: number;
  /** The PASID the queue runs with (0 without SVA). */
  readonly pasid: number;
  /** The fd is still open (a mapping holds the file too). */
  readonly fd: boolean;
  /** Its mappings, by id. */
  readonly maps: readonly UacceMap[];
  /** Its queue. */
  readonly queue: UacceQueueLife;
}

/** The char-device world: devices, files, PASIDs. */
export interface UacceState {
  /** Parents whose IOMMU can do SVA (topology). */
  readonly svaParents: readonly number[];
  /** Registered devices, by parent. */
  readonly devices: ReadonlyMap<number, UacceDevice>;
  /** Files held by an fd or a mapping, by id. */
  readonly files: ReadonlyMap<number, UacceFile>;
  /** PASIDs bound so far, to their process. */
  readonly pasids: ReadonlyMap<number, number>;
  /**
   * Resources nothing accounts for (a queue pair or DMA memory of a removed parent, a queue
   * pair no file holds): empty in the intended system; the abstraction function lists what it
   * finds.
   */
  readonly leaks: readonly string[];
  /** The id the next registered device gets. */
  readonly nextDev: number;
  /** The id the next opened file gets. */
  readonly nextFile: number;
}

/** The char-device operations. */
export type UacceCommand =
  | {
    readonly op: "uacce.register";
    readonly parent: number;
    readonly qpNum: number;
    readonly sva: boolean;
  }
  | { readonly op: "uacce.remove"; readonly parent: number }
  | { readonly op: "uacce.open"; readonly parent: number; readonly by: number }
  | { readonly op: "uacce.startQ"; readonly file: number }
  | { readonly op: "uacce.putQ"; readonly file: number }
  | {
    readonly op: "uacce.mmap";
    readonly file: number;
    readonly pgoff: number;
    readonly size: number;
  }
  | { readonly op: "uacce.munmap"; readonly file: number; readonly map: number }
  | { readonly op: "uacce.access"; readonly file: number; readonly map: number }
  | { readonly op: "uacce.close"; readonly file: number }
  | { readonly op: "uacce.readAttrs"; readonly parent: number };

/** The parents whose IOMMU can do SVA in the default topology. */
export const UACCE_SVA_PARENTS: readonly number[] = [1];

/** The topology: which parents can do SVA (default {@link UACCE_SVA_PARENTS}). */
export interface UacceConfig {
  /** Parents whose IOMMU supports SVA. */
  readonly svaParents?: readonly number[];
}

/** No device registered, no file open. */
export function initialUacceState(config: UacceConfig = {}): UacceState {
  return {
    svaParents: config.svaParents ?? UACCE_SVA_PARENTS,
    devices: new Map(),
    files: new Map(),
    pasids: new Map(),
    leaks: [],
    nextDev: 1,
    nextFile: 1,
  };
}

/** The queue pair a queue holds, or undefined once its parent was removed. */
export function heldQp(q: UacceQueueLife): number | undefined {
  return "qn" in q ? q.qn : undefined;
}

/** Whether a queue accepts calls (uacce's `uacce_queue_is_valid`: INIT or STARTED). */
export function queueValid(q: UacceQueueLife): boolean {
  return q.state !== "ZOMBIE";
}

function lowestFree(used: Iterable<number>, first: number): number {
  const taken = new Set(used);
  let id = first;
  while (taken.has(id)) id++;
  return id;
}

/** The device records recomputed from the files: taken queue pairs and free instances. */
function settle(s: UacceState): UacceState {
  const devices = new Map<number, UacceDevice>();
  for (const d of s.devices.values()) {
    const qps = new Map<number, UacceQp>();
    for (const f of s.files.values()) {
      const qn = heldQp(f.queue);
      if (f.dev !== d.dev || qn === undefined) continue;
      qps.set(qn, { file: f.file, running: f.queue.state === "STARTED", dus: true });
    }
    const sorted = new Map([...qps].sort(([a], [b]) => a - b));
    devices.set(d.parent, { ...d, qps: sorted, available: d.qpNum - qps.size });
  }
  return { ...s, devices };
}

function withFile(s: UacceState, f: UacceFile | undefined, id: number): UacceState {
  const files = new Map(s.files);
  if (f === undefined || (!f.fd && f.maps.length === 0)) files.delete(id); // released
  else files.set(id, f);
  return settle({ ...s, files });
}

function done(s: UacceState, value: unknown = 0): StepResult<UacceState> {
  return { state: s, ret: ok(value), events: [] };
}

function isInt(v: number, min: number, max = Number.MAX_SAFE_INTEGER): boolean {
  return Number.isSafeInteger(v) && v >= min && v <= max;
}

/** The file `id` if its fd is open. */
function openFile(s: UacceState, id: number): UacceFile | undefined {
  const f = s.files.get(id);
  return f?.fd ? f : undefined;
}

function open(s: UacceState, parent: number, by: number): StepResult<UacceState> {
  if (!isInt(by, 1)) return fail(s, "EINVAL");
  const d = s.devices.get(parent);
  if (!d) return fail(s, "ENODEV");
  let pasids = s.pasids;
  let pasid = 0;
  if (d.flags & UACCE_DEV_SVA) {
    const own = [...s.pasids].find(([, mm]) => mm === by);
    pasid = own ? own[0] : lowestFree(s.pasids.keys(), 1);
    if (!own) pasids = new Map([...s.pasids, [pasid, by]]);
  }
  // The bind comes first, and the model's SVA layer never frees a PASID: it stays on EBUSY.
  if (d.available === 0) return fail({ ...s, pasids }, "EBUSY");
  const qn = lowestFree(d.qps.keys(), 0);
  const file: UacceFile = {
    file: s.nextFile,
    parent,
    dev: d.dev,
    by,
    pasid,
    fd: true,
    maps: [],
    queue: { state: "INIT", qn },
  };
  const next = withFile({ ...s, pasids, nextFile: s.nextFile + 1 }, file, file.file);
  return done(next, file.file);
}

function mmap(s: UacceState, id: number, pgoff: number, size: number): StepResult<UacceState> {
  const f = openFile(s, id);
  if (!f) return fail(s, "EBADF");
  if (pgoff !== UACCE_QFRT.MMIO && pgoff !== UACCE_QFRT.DUS) return fail(s, "EINVAL");
  if (!queueValid(f.queue)) return fail(s, "ENXIO");
  if (f.maps.some((m) => m.region === pgoff)) return fail(s, "EEXIST");
  if (size !== (pgoff === UACCE_QFRT.MMIO ? UACCE_MMIO_SIZE : UACCE_DUS_SIZE)) {
    return fail(s, "EINVAL");
  }
  const map: UacceMap = {
    id: lowestFree(f.maps.map((m) => m.id), 1),
    region: pgoff,
    size,
    zapped: false,
  };
  const maps = [...f.maps, map].sort((a, b) => a.id - b.id);
  return done(withFile(s, { ...f, maps }, id), map.id);
}

/** The parent's removal: every queue of the device stopped, zapped, freed, ZOMBIE. */
function remove(s: UacceState, parent: number): StepResult<UacceState> {
  const d = s.devices.get(parent);
  if (!d) return fail(s, "ENODEV");
  const files = new Map(s.files);
  for (const f of s.files.values()) {
    if (f.dev !== d.dev) continue;
    const maps = f.maps.map((m) => ({ ...m, zapped: true }));
    files.set(f.file, { ...f, maps, queue: { state: "ZOMBIE", held: false } });
  }
  const devices = new Map(s.devices);
  devices.delete(parent);
  return done(settle({ ...s, files, devices }));
}

/**
 * Executes one operation (see the module comment for each op's results and errnos).
 */
export function stepUacce<C extends UacceCommand>(
  state: UacceState,
  cmd: C,
): TypedStepResult<UacceState, ResultsOf<typeof uacceResults>[C["op"]]>;
/** stepUacce of any command, its success value untyped. */
export function stepUacce(s: UacceState, cmd: UacceCommand): StepResult<UacceState> {
  return match(cmd)
    .with({ op: "uacce.register" }, (c): StepResult<UacceState> => {
      if (!isInt(c.parent, 1) || !isInt(c.qpNum, 1, UACCE_MAX_QPS)) return fail(s, "EINVAL");
      if (s.devices.has(c.parent)) return fail(s, "EEXIST");
      const flags = c.sva && s.svaParents.includes(c.parent) ? UACCE_DEV_SVA : 0;
      const d: UacceDevice = {
        dev: s.nextDev,
        parent: c.parent,
        flags,
        qpNum: c.qpNum,
        available: c.qpNum,
        qps: new Map(),
      };
      const devices = new Map([...s.devices, [c.parent, d]]);
      return done(settle({ ...s, devices, nextDev: s.nextDev + 1 }), { dev: d.dev, flags });
    })
    .with({ op: "uacce.remove" }, (c) => remove(s, c.parent))
    .with({ op: "uacce.open" }, (c) => open(s, c.parent, c.by))
    .with({ op: "uacce.startQ" }, (c): StepResult<UacceState> => {
      const f = openFile(s, c.file);
      if (!f) return fail(s, "EBADF");
      if (f.queue.state === "ZOMBIE") return fail(s, "ENXIO");
      if (f.queue.state === "STARTED") return fail(s, "EINVAL");
      return done(withFile(s, { ...f, queue: { state: "STARTED", qn: f.queue.qn } }, c.file));
    })
    .with({ op: "uacce.putQ" }, (c): StepResult<UacceState> => {
      const f = openFile(s, c.file);
      if (!f) return fail(s, "EBADF");
      if (f.queue.state === "ZOMBIE") return fail(s, "ENXIO");
      const queue: UacceQueueLife = f.maps.length > 0
        ? { state: "ZOMBIE", held: true, qn: f.queue.qn }
        : { state: "ZOMBIE", held: false };
      return done(withFile(s, { ...f, queue }, c.file));
    })
    .with({ op: "uacce.mmap" }, (c) => mmap(s, c.file, c.pgoff, c.size))
    .with({ op: "uacce.munmap" }, (c): StepResult<UacceState> => {
      const f = s.files.get(c.file);
      if (!f || !f.maps.some((m) => m.id === c.map)) return fail(s, "EINVAL");
      return done(withFile(s, { ...f, maps: f.maps.filter((m) => m.id !== c.map) }, c.file));
    })
    .with({ op: "uacce.access" }, (c): StepResult<UacceState> => {
      const m = s.files.get(c.file)?.maps.find((m) => m.id === c.map);
      if (!m) return fail(s, "EINVAL");
      return m.zapped ? fail(s, "EFAULT") : done(s);
    })
    .with({ op: "uacce.close" }, (c): StepResult<UacceState> => {
      const f = openFile(s, c.file);
      if (!f) return fail(s, "EBADF");
      return done(withFile(s, { ...f, fd: false }, c.file));
    })
    .with({ op: "uacce.readAttrs" }, (c): StepResult<UacceState> => {
      const d = s.devices.get(c.parent);
      if (!d) return fail(s, "ENODEV");
      return done(s, {
        api: UACCE_API,
        flags: d.flags,
        available_instances: d.available,
        algorithms: UACCE_ALGORITHMS,
        region_mmio_size: UACCE_MMIO_SIZE,
        region_dus_size: UACCE_DUS_SIZE,
      });
    })
    .otherwise(unknownOp);
}

function eachMap(s: UacceState, check: (f: UacceFile, m: UacceMap) => string | undefined) {
  for (const f of s.files.values()) {
    for (const m of f.maps) {
      const msg = check(f, m);
      if (msg !== undefined) return msg;
    }
  }
  return undefined;
}

/** What must hold of the char-device world. */
export const uacceInvariants: readonly Invariant<UacceState>[] = [
  {
    name: "uacce.noMappingOfFreedMemory",
    scope: "always",
    check: (s) =>
      eachMap(s, (f, m) => {
        if (m.zapped) return undefined;
        const qn = heldQp(f.queue);
        const qp = qn === undefined ? undefined : s.devices.get(f.parent)?.qps.get(qn);
        if (qp?.file === f.file && qp.dus) return undefined;
        return `file ${f.file} maps region ${m.region} (mapping ${m.id}) of a queue whose ` +
          `queue pair or DMA memory is freed`;
      }),
  },
  {
    name: "uacce.removedDeviceHasOnlyZombies",
    scope: "always",
    check: (s) => {
      for (const f of s.files.values()) {
        if (s.devices.get(f.parent)?.dev === f.dev) continue;
        if (f.queue.state !== "ZOMBIE") {
          return `file ${f.file}'s device ${f.dev} is removed but its queue is ${f.queue.state}`;
        }
        const live = f.maps.find((m) => !m.zapped);
        if (live) {
          return `file ${f.file}'s device ${f.dev} is removed but mapping ${live.id} is live`;
        }
      }
      return undefined;
    },
  },
  {
    name: "uacce.removedDeviceLeftNothing",
    scope: "between-ops",
    check: (s) => {
      for (const f of s.files.values()) {
        if (s.devices.get(f.parent)?.dev !== f.dev && f.queue.state === "ZOMBIE" && f.queue.held) {
          return `file ${f.file}'s device ${f.dev} is removed but its queue holds queue pair ` +
            `${f.queue.qn}`;
        }
      }
      return undefined;
    },
  },
  {
    name: "uacce.availableInstances",
    scope: "between-ops",
    check: (s) => {
      for (const d of s.devices.values()) {
        if (d.available !== d.qpNum - d.qps.size) {
          return `device ${d.dev} shows ${d.available} available instances with ` +
            `${d.qps.size} of ${d.qpNum} queue pairs taken`;
        }
      }
      return undefined;
    },
  },
  {
    name: "uacce.queuePairsHeldByFiles",
    scope: "between-ops",
    check: (s) => {
      for (const d of s.devices.values()) {
        for (const [qn, qp] of d.qps) {
          const f = s.files.get(qp.file);
          if (!f || f.dev !== d.dev || heldQp(f.queue) !== qn) {
            return `queue pair ${qn} of device ${d.dev} is taken for file ${qp.file}, ` +
              `which does not hold it`;
          }
          if (qp.running !== (f.queue.state === "STARTED")) {
            return `queue pair ${qn} ${qp.running ? "runs" : "is stopped"} while file ` +
              `${f.file}'s queue is ${f.queue.state}`;
          }
        }
      }
      for (const f of s.files.values()) {
        const qn = heldQp(f.queue);
        if (qn !== undefined && s.devices.get(f.parent)?.qps.get(qn)?.file !== f.file) {
          return `file ${f.file}'s queue holds queue pair ${qn}, which its device does not ` +
            `list as its`;
        }
      }
      return undefined;
    },
  },
  {
    name: "uacce.nothingLeaked",
    scope: "between-ops",
    check: (s) => s.leaks.length === 0 ? undefined : s.leaks.join("; "),
  },
];

/** Every violated invariant of `state`, as `name: message`. */
export function checkUacceInvariants(
  state: UacceState,
  scope?: Invariant<UacceState>["scope"],
): string[] {
  return checkInvariants(uacceInvariants, state, scope);
}

/** Every op and its argument fields (public API: validates traces, generates commands). */
export const uacceCommandSchema: CommandSchema<UacceCommand["op"]> = {
  "uacce.register": { parent: "int", qpNum: "int", sva: "bool" },
  "uacce.remove": { parent: "int" },
  "uacce.open": { parent: "int", by: "int" },
  "uacce.startQ": { file: "int" },
  "uacce.putQ": { file: "int" },
  "uacce.mmap": { file: "int", pgoff: "int", size: "int" },
  "uacce.munmap": { file: "int", map: "int" },
  "uacce.access": { file: "int", map: "int" },
  "uacce.close": { file: "int" },
  "uacce.readAttrs": { parent: "int" },
};

/** The shape of every char-device op's success value. */
export const uacceResults = {
  "uacce.register": { record: { dev: "int", flags: "int" } },
  "uacce.remove": "zero",
  "uacce.open": "int",
  "uacce.startQ": "zero",
  "uacce.putQ": "zero",
  "uacce.mmap": "int",
  "uacce.munmap": "zero",
  "uacce.access": "zero",
  "uacce.close": "zero",
  "uacce.readAttrs": {
    record: {
      api: "string",
      flags: "int",
      available_instances: "int",
      algorithms: "string",
      region_mmio_size: "int",
      region_dus_size: "int",
    },
  },
} as const satisfies ResultTable<UacceCommand["op"]>;

/** The char-device design as one record. */
export const uacceSpec: MachineSpec<UacceState, UacceCommand, UacceConfig> = {
  component: "uacce",
  initial: initialUacceState,
  step: stepUacce,
  invariants: uacceInvariants,
  schema: uacceCommandSchema,
  results: uacceResults,
};
