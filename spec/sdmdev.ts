/**
 * sdmdev, the WarpDrive kernel part, as a pure state machine (RFCv2 3/7
 * `drivers/vfio/sdmdev/vfio_sdmdev.c`, `include/linux/vfio_sdmdev.h`,
 * `include/uapi/linux/vfio_sdmdev.h`; RFCv2 6/7 the QM glue `hisi_qm_get_queue`,
 * `hisi_qm_put_queue`, `hisi_qm_mmap`, `hisi_qm_start_queue`, `hisi_qm_stop_queue`; RFCv2 5/7
 * `hisi_zip_alloc_comp_ctx` as the kernel user of the same queue pairs).
 *
 * An sdmdev parent is an mdev parent (vendor `"sdmdev"` in `mdev.ts`) whose mdevs each own one
 * hardware queue pair (qp) of the parent's QM. The world this module steps is the mdev core's
 * state plus its own ({@link SdmdevWorld}); every op keeps both in step.
 *
 * Intended behaviour stated here (DOMAIN.md §4); seed defects are implementation quirks:
 * - create takes a qp at once (`get_queue`); EBUSY when none is free. Remove gives it back
 *   (`put_queue`), and only then: remove is EBUSY while the device is open.
 * - open of a parent without PASID support starts the queue with PASID 0 (`start_queue`): a
 *   fresh SQ+CQ ring is allocated and the hardware runs it. With PASID support the queue is
 *   started by BIND_PASID instead, with a PASID of the caller's own address space.
 * - the device file lives while the opener's fd or any of its mmaps holds it (a VMA takes a
 *   reference on the file): closing the fd with mappings left keeps the queue open, and
 *   running; the device file is released (`vfio_sdmdev_mdev_release`) when the last of them
 *   goes, by `sdmdev.release` (close) or by the `sdmdev.munmap` of the last mapping. Release
 *   quiesces the hardware queue first (`stop_queue`: the device touches the queue no more),
 *   then frees the ring. The next start allocates a new ring. If the parent is being
 *   unregistered, the mdev and its qp go too (mdev.ts).
 * - a queue's lifecycle is a named state ({@link QueueLife}): `closed` (no file), `opened`
 *   (file alive, queue not started: a PASID-capable parent before BIND_PASID) and `started`
 *   (the hardware runs its ring), in the manner of uacce's INIT/STARTED.
 * - a running queue is never restarted: a second BIND_PASID is EBUSY, and open cannot start
 *   a queue twice because a second open is EBUSY.
 * - without PASID support one process at a time may use a parent: all its mdevs share the
 *   parent's IOMMU domain (and the kernel's). Opening an sdmdev of that parent from another
 *   process is EBUSY while any of its sdmdevs is open; the same process may open several
 *   (type1 then refuses the second domain share, see `type1.ts`).
 *
 * Decisions where the seeds are silent:
 * - **qp pool.** Each parent keeps a minimal, explicit pool: `qpNum` and the owner of every
 *   taken qp (an mdev or a kernel crypto transform), allocated first-free like
 *   `hisi_qm_create_qp`. It is not imported from `qm.ts`, whose qp records carry ring
 *   counters that do not change any outcome here; `system.ts` can relate the two (a qp owned
 *   here is allocated there). The mdev core sees the same pool as units: capacity `qpNum`,
 *   kernel-held qps as `reserved`, one type of cost 1, so `available_instances` is the number
 *   of free qps.
 * - **Ring buffers** get ids from a counter that never reuses a value, so a mapping of a
 *   freed ring can never be mistaken for one of its successor. Ring size is fixed at
 *   {@link RING_SIZE} (the QM's 1024 128-byte SQEs plus 1024 16-byte CQEs).
 * - **mmap length** is rounded up to whole pages, as the kernel does before the driver sees
 *   the VMA; zero length is EINVAL.
 * - **WAIT time model.** Time is abstract ticks. The command carries `timeout` (0 = forever)
 *   and `updateAt`: ticks from the start of the wait until the device next reports an update
 *   on the queue, or -1 for none. A notification that arrived before the wait (`updated`,
 *   set by `sdmdev.notify`) counts as `updateAt` 0. The notification is masked for the
 *   duration of the wait and unmasked after (not visible between ops), and a wake consumes
 *   it. Results: an update at `t <= timeout` returns ok(max(1, timeout - t)), the remaining
 *   ticks, at least 1 as `wait_event_interruptible_timeout` does; a bounded wait without an
 *   update in time returns ok(0) (an update after the timeout stays pending); a forever
 *   wait returns ok(0) on the update, and without one the caller sleeps until a signal,
 *   reported as EAGAIN (the errno vocabulary has no EINTR/ERESTARTSYS). WAIT on a queue that
 *   is not running is EINVAL: nothing could ever update it.
 * - **Callers.** Ops on an open device name the calling process (`by`); a process other than
 *   the one that opened it gets EPERM (it holds no fd for it), and so does the opener once it
 *   closed its fd, except for `sdmdev.munmap`, which needs only the mapping in its mm.
 * - **PASIDs** are the SVA layer's (`iommu_sva_find`): in a world with one (the stack's
 *   `spec/sva.ts`), {@link SdmdevWorld.pasidOwners} says whose each PASID is. Alone, sdmdev's
 *   view reduces that layer to its binds: `sdmdev.svaBind` gives a process its PASID, the
 *   same one on every call; as this view never unbinds, the IOASID allocator's rule (the
 *   lowest unused id from 1) is the lowest id not yet handed out.
 * - **Unregister** (`vfio_sdmdev_unregister`, called from the parent's PCI remove,
 *   `hisi_zip_remove` → `hisi_qm_stop`) cannot fail: a PCI remove returns `void`. It waits
 *   for the users to go, as the later upstream QM drivers do before tearing down: no create
 *   and no new transform from then on, closed sdmdevs removed at once, open sdmdevs removed
 *   when their file is released, transforms kept until they exit; the parent goes with the
 *   last of them. It returns the users it waits for (open sdmdevs plus transforms).
 * - **Sysfs** reads of a device that is not a registered sdmdev (or one being unregistered)
 *   are ENODEV.
 *
 * No command emits events.
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import { deleteIn, lowestFreeId, setIn } from "./iommu.ts";
import {
  availableInstances,
  beginUnregister,
  createDevice,
  initialMdevState,
  lookupDevice,
  type MdevDevice,
  mdevInvariants,
  type MdevState,
  openDevice,
  registerParent,
  releaseDevice,
  removeDevice,
  setReserved,
} from "./mdev.ts";
import {
  checkInvariants,
  type CommandSchema,
  type Errno,
  type Event,
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

export type { Errno, Event, Invariant, Ret, StepResult } from "./types.ts";
export type { MdevDevice, MdevParent, MdevState, MdevType } from "./mdev.ts";

// ---------------------------------------------------------------------------------------------
// Constants

/** Bytes of one queue's SQ+CQ ring: 1024 × 128-byte SQEs + 1024 × 16-byte CQEs (RFCv2 6/7, `scqe`). */
export const RING_SIZE: number = (128 + 16) * 1024;

/** `device_api` of every QM type (RFCv2 6/7, `qm_register_sdmdev`: `api_ver`). */
export const SDMDEV_DEVICE_API: string = "hisi_qm_v1";

/** `iommu_type` attribute: VFIO_TYPE1_IOMMU (RFCv2 6/7, `qm_register_sdmdev`). */
export const VFIO_TYPE1_IOMMU: number = 1;

/** `dma_flag` bits (RFCv2 3/7 uapi `VFIO_SDMDEV_DMA_*`): one process, or many via PASIDs. */
export const SDMDEV_DMA_FLAG: { readonly SINGLE_PROC_MAP: 1; readonly MULTI_PROC_MAP: 2 } = {
  SINGLE_PROC_MAP: 1,
  MULTI_PROC_MAP: 2,
};

/** Mask selecting the mmap region from `vm_pgoff` (RFCv2 3/7, `_VFIO_SDMDEV_REGION`). */
export const REGION_MASK: number = 0xf;

/** Largest `qpNum` a parent may declare (RFCv2 4/7 `qp_num`; 64 on the ZIP PF). */
export const MAX_QP_NUM: number = 1024;

// ---------------------------------------------------------------------------------------------
// State

/** Who holds a qp: an sdmdev (by UUID) or a kernel crypto transform (RFCv2 5/7, 6/7). */
export type QpOwner = { readonly mdev: string } | { readonly tfm: number };

/** A parent's queue-pair allocator (RFCv2 4/7 `qp_bitmap`/`qp_num`), kept minimal. */
export interface QpPool {
  /** Number of qps (`qp_num`). */
  readonly qpNum: number;
  /** Taken qps: queue number to owner. Absent means the bitmap bit is clear. */
  readonly owners: ReadonlyMap<number, QpOwner>;
}

/** A registered sdmdev parent (`struct vfio_sdmdev` + its QM, RFCv2 3/7 and 6/7). */
export interface SdmdevParent {
  /** The parent device id (also its mdev parent id). */
  readonly parent: number;
  /** `name` attribute (`qm->dev_name`). */
  readonly name: string;
  /** PASID support (CONFIG_IOMMU_SVA): start on BIND_PASID, several processes allowed. */
  readonly sva: boolean;
  /** The qp pool, shared by mdevs and kernel users. */
  readonly pool: QpPool;
  /** Kernel crypto transforms by id, with the two qps each holds (compress, decompress). */
  readonly tfms: ReadonlyMap<number, readonly [number, number]>;
  /** References on the parent device held by its mdevs (`get_device(pdev)` at create). */
  readonly refs: number;
}

/** One mmap of an sdmdev (RFCv2 6/7, `hisi_qm_mmap`). */
export interface SdmdevMapping {
  /** Mapping id within its queue, the lowest free from 1. */
  readonly id: number;
  /** 0: the MMIO page; 1: the SQ+CQ ring. */
  readonly region: 0 | 1;
  /** Length in bytes, a whole number of pages. */
  readonly size: number;
  /** For region 1, the ring buffer mapped; null for region 0. */
  readonly ring: number | null;
}

/** What an opened device file holds: its process, its fd and its mmaps (RFCv2 3/7). */
export interface OpenedFile {
  /** The process that opened the device (whose mm holds the mappings). */
  readonly by: number;
  /** The process still holds its fd; false once closed while mappings keep the file. */
  readonly fd: boolean;
  /** Live mmaps of the device, in creation order; each holds the file. */
  readonly maps: readonly SdmdevMapping[];
}

/**
 * The lifecycle of an sdmdev's file and hardware queue (RFCv2 3/7, 6/7; the named states
 * follow uacce's INIT/STARTED):
 * - `closed`: nobody has the device file; the qp is taken but not started, no ring;
 * - `opened`: the file is alive, the queue not started (before BIND_PASID);
 * - `started`: the file is alive and the hardware runs `ring` with `pasid` (0 without PASID
 *   support); `updated` is a reported update not yet consumed by a WAIT (`is_q_updated`).
 */
export type QueueLife =
  | { readonly state: "closed" }
  | ({ readonly state: "opened" } & OpenedFile)
  | ({
    readonly state: "started";
    readonly pasid: number;
    readonly ring: number;
    readonly updated: boolean;
  } & OpenedFile);

/** The queue behind one sdmdev (`struct vfio_sdmdev_queue` + `hisi_qp`, RFCv2 3/7, 6/7). */
export interface SdmdevQueue {
  /** The mdev's canonical UUID. */
  readonly uuid: string;
  /** Parent id. */
  readonly parent: number;
  /** The qp taken at create. */
  readonly qn: number;
  /** Where its file and hardware queue are. */
  readonly life: QueueLife;
}

/** The sdmdev layer's own state (RFCv2 3/7, the `sdmdev_class` devices and their queues). */
export interface SdmdevState {
  /** Registered sdmdev parents (including ones being unregistered), by id. */
  readonly parents: ReadonlyMap<number, SdmdevParent>;
  /** Queues of live sdmdevs, by canonical UUID. */
  readonly queues: ReadonlyMap<string, SdmdevQueue>;
  /** PASID to the process (mm) it belongs to (the SVA layer's `iommu_sva_find`). */
  readonly pasids: ReadonlyMap<number, number>;
  /** Id of the next ring buffer allocated; ids are never reused. */
  readonly nextRing: number;
}

/** The slice of system state sdmdev reads and writes: the mdev core and its own (RFCv2 3/7). */
export interface SdmdevWorld {
  /** The mdev core. */
  readonly mdev: MdevState;
  /** sdmdev parents, queues, PASIDs. */
  readonly sdmdev: SdmdevState;
  /**
   * The IOMMU core's groups, when the world around has one: a new mdev's group id is the
   * lowest one free among them (`iommu_group_alloc`'s IDA), which can differ from the mdev
   * core's own list while a group file keeps a removed mdev's group. Alone, sdmdev allocates
   * from the mdev core's groups.
   */
  readonly iommuGroups?: ReadonlyMap<number, unknown>;
  /**
   * The SVA layer's PASIDs and the mm each belongs to (`iommu_sva_find`), when the world
   * around has one; alone, sdmdev's own `pasids`.
   */
  readonly pasidOwners?: ReadonlyMap<number, number>;
}

/** Whose each PASID is: the SVA layer's answer, or sdmdev's own binds when alone. */
function pasidsOf(world: SdmdevWorld): ReadonlyMap<number, number> {
  return world.pasidOwners ?? world.sdmdev.pasids;
}

/** An empty machine: no mdev or sdmdev parent, no PASID (RFCv2 3/7, `vfio_sdmdev_init`). */
export function initialSdmdevWorld(): SdmdevWorld {
  return {
    mdev: initialMdevState(),
    sdmdev: { parents: new Map(), queues: new Map(), pasids: new Map(), nextRing: 1 },
  };
}

/** The `ok` value of `sdmdev.readAttrs` (RFCv2 3/7 sysfs attributes). */
export interface SdmdevAttrs {
  /** `params/iommu_type`. */
  readonly iommu_type: number;
  /** `params/dma_flag`. */
  readonly dma_flag: number;
  /** Type attribute `flags`. */
  readonly flags: number;
  /** Type attribute `name`. */
  readonly name: string;
  /** Type attribute `device_api`. */
  readonly device_api: string;
  /** Type attribute `available_instances`: free qps of the parent. */
  readonly available_instances: number;
}

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * Commands of the sdmdev layer (RFCv2 3/7 and 6/7). Management: `sdmdev.register`,
 * `sdmdev.unregister`, `sdmdev.create`, `sdmdev.remove`, `sdmdev.readAttrs`. A process:
 * `sdmdev.open`, `sdmdev.release`, `sdmdev.mmap`, `sdmdev.munmap`, `sdmdev.wait`,
 * `sdmdev.bindPasid`, `sdmdev.svaBind`. The device/IRQ thread: `sdmdev.notify`. Kernel crypto
 * users: `sdmdev.tfmInit`, `sdmdev.tfmExit`. See {@link stepSdmdev}.
 */
export type SdmdevCommand =
  | {
    readonly op: "sdmdev.register";
    readonly parent: number;
    readonly name: string;
    readonly qpNum: number;
    readonly sva: boolean;
  }
  | { readonly op: "sdmdev.unregister"; readonly parent: number }
  | { readonly op: "sdmdev.create"; readonly parent: number; readonly uuid: string }
  | { readonly op: "sdmdev.remove"; readonly uuid: string }
  | { readonly op: "sdmdev.open"; readonly uuid: string; readonly by: number }
  | { readonly op: "sdmdev.release"; readonly uuid: string; readonly by: number }
  | {
    readonly op: "sdmdev.mmap";
    readonly uuid: string;
    readonly by: number;
    readonly pgoff: number;
    readonly size: number;
  }
  | {
    readonly op: "sdmdev.munmap";
    readonly uuid: string;
    readonly by: number;
    readonly map: number;
  }
  | {
    readonly op: "sdmdev.wait";
    readonly uuid: string;
    readonly by: number;
    readonly timeout: number;
    readonly updateAt: number;
  }
  | { readonly op: "sdmdev.notify"; readonly parent: number; readonly qn: number }
  | { readonly op: "sdmdev.svaBind"; readonly by: number }
  | {
    readonly op: "sdmdev.bindPasid";
    readonly uuid: string;
    readonly by: number;
    readonly pasid: number;
  }
  | { readonly op: "sdmdev.readAttrs"; readonly parent: number }
  | { readonly op: "sdmdev.tfmInit"; readonly parent: number; readonly tfm: number }
  | { readonly op: "sdmdev.tfmExit"; readonly parent: number; readonly tfm: number };

/** Every sdmdev op and its argument fields (public API: validates traces, generates commands). */
export const sdmdevCommandSchema: CommandSchema<SdmdevCommand["op"]> = {
  "sdmdev.register": { parent: "int", name: "string", qpNum: "int", sva: "bool" },
  "sdmdev.unregister": { parent: "int" },
  "sdmdev.create": { parent: "int", uuid: "string" },
  "sdmdev.remove": { uuid: "string" },
  "sdmdev.open": { uuid: "string", by: "int" },
  "sdmdev.release": { uuid: "string", by: "int" },
  "sdmdev.mmap": { uuid: "string", by: "int", pgoff: "int", size: "int" },
  "sdmdev.munmap": { uuid: "string", by: "int", map: "int" },
  "sdmdev.wait": { uuid: "string", by: "int", timeout: "int", updateAt: "int" },
  "sdmdev.notify": { parent: "int", qn: "int" },
  "sdmdev.svaBind": { by: "int" },
  "sdmdev.bindPasid": { uuid: "string", by: "int", pasid: "int" },
  "sdmdev.readAttrs": { parent: "int" },
  "sdmdev.tfmInit": { parent: "int", tfm: "int" },
  "sdmdev.tfmExit": { parent: "int", tfm: "int" },
};

/** The shape of every sdmdev op's success value ({@link SdmdevAttrs} for `readAttrs`). */
export const sdmdevResults = {
  "sdmdev.register": "zero",
  "sdmdev.unregister": "int",
  "sdmdev.create": "int",
  "sdmdev.remove": "zero",
  "sdmdev.open": "zero",
  "sdmdev.release": "zero",
  "sdmdev.mmap": "int",
  "sdmdev.munmap": "zero",
  "sdmdev.wait": "int",
  "sdmdev.notify": "zero",
  "sdmdev.svaBind": "int",
  "sdmdev.bindPasid": "zero",
  "sdmdev.readAttrs": {
    record: {
      iommu_type: "int",
      dma_flag: "int",
      flags: "int",
      name: "string",
      device_api: "string",
      available_instances: "int",
    },
  },
  "sdmdev.tfmInit": { list: "int" },
  "sdmdev.tfmExit": "zero",
} as const satisfies ResultTable<SdmdevCommand["op"]>;

/** Every `op` of {@link SdmdevCommand}, for validating traces (RFCv2 3/7, 6/7). */
export const SDMDEV_OPS: readonly SdmdevCommand["op"][] = Object.keys(
  sdmdevCommandSchema,
) as SdmdevCommand["op"][];

// ---------------------------------------------------------------------------------------------
// Helpers

const NO_EVENTS: readonly Event[] = Object.freeze([]);

function done(world: SdmdevWorld, value: unknown): StepResult<SdmdevWorld> {
  return { state: world, ret: ok(value), events: NO_EVENTS };
}

function isInt(v: unknown, min: number, max: number = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

/** Whether a queue is running: started on the hardware with a ring (RFCv2 6/7, `hisi_qm_start_qp`). */
export function isRunning(q: SdmdevQueue): boolean {
  return q.life.state === "started";
}

/** The process whose file (fd or mappings) keeps the device open, or null when closed. */
export function holderOf(q: SdmdevQueue): number | null {
  return q.life.state === "closed" ? null : q.life.by;
}

/** The queue's live mappings (none when closed). */
export function mappingsOf(q: SdmdevQueue): readonly SdmdevMapping[] {
  return q.life.state === "closed" ? [] : q.life.maps;
}

/** Free qps of a pool: `available_instances` (RFCv2 3/7, `get_available_instances`). */
export function freeQps(pool: QpPool): number {
  return pool.qpNum - pool.owners.size;
}

/** The region an mmap offset selects (RFCv2 3/7, `_VFIO_SDMDEV_REGION(vm_pgoff)`). */
export function mmapRegion(pgoff: number): number {
  return pgoff % (REGION_MASK + 1);
}

/** The mdev type id of an sdmdev parent's one type (RFCv2 6/7, `qm_register_sdmdev`). */
export function sdmdevTypeId(name: string): string {
  return `${name}-0`;
}

/** The `n` lowest free queue numbers of a pool (`find_first_zero_bit`, RFCv2 4/7). */
function freeQns(pool: QpPool, n: number): number[] {
  const out: number[] = [];
  for (let qn = 0; qn < pool.qpNum && out.length < n; qn++) {
    if (!pool.owners.has(qn)) out.push(qn);
  }
  return out;
}

function withSd(world: SdmdevWorld, sd: Partial<SdmdevState>): SdmdevWorld {
  return { ...world, sdmdev: { ...world.sdmdev, ...sd } };
}

function withQueue(world: SdmdevWorld, q: SdmdevQueue): SdmdevWorld {
  return withSd(world, { queues: setIn(world.sdmdev.queues, q.uuid, q) });
}

function withParent(world: SdmdevWorld, p: SdmdevParent): SdmdevWorld {
  return withSd(world, { parents: setIn(world.sdmdev.parents, p.parent, p) });
}

/** The sdmdev parent `id` if registered and not being unregistered, else ENODEV. */
function liveParent(world: SdmdevWorld, id: number): SdmdevParent | Errno {
  const p = world.sdmdev.parents.get(id);
  const m = world.mdev.parents.get(id);
  return p && m && m.unregisterFrom === null ? p : "ENODEV";
}

/** The queue of an sdmdev by UUID text, with its mdev device; errnos of `lookupDevice`. */
function lookupQueue(world: SdmdevWorld, uuid: string): [SdmdevQueue, MdevDevice] | Errno {
  const d = lookupDevice(world.mdev, uuid, "sdmdev");
  if (typeof d === "string") return d;
  return [world.sdmdev.queues.get(d.uuid)!, d];
}

/** A queue whose file is alive, with the life narrowed to the open states. */
type OpenQueue = SdmdevQueue & { readonly life: Exclude<QueueLife, { state: "closed" }> };

/**
 * Like {@link lookupQueue}, and `by` must be the process whose file keeps it open (else
 * EPERM); with `needFd`, `by` must still hold its fd too (else EPERM: it holds no fd).
 */
function ownQueue(
  world: SdmdevWorld,
  uuid: string,
  by: number,
  needFd = true,
): OpenQueue | Errno {
  const r = lookupQueue(world, uuid);
  if (typeof r === "string") return r;
  const q = r[0];
  if (q.life.state === "closed" || q.life.by !== by) return "EPERM";
  return needFd && !q.life.fd ? "EPERM" : q as OpenQueue;
}

/** `q` with the file part of its life replaced (the state itself kept). */
function withFile(q: OpenQueue, file: Partial<OpenedFile>): SdmdevQueue {
  return { ...q, life: { ...q.life, ...file } };
}

/** `put_queue` (RFCv2 6/7 `hisi_qm_put_queue` → `hisi_qm_release_qp`) and `put_device(pdev)`. */
function putQueue(world: SdmdevWorld, q: SdmdevQueue): SdmdevWorld {
  const p = world.sdmdev.parents.get(q.parent)!;
  const pool = { ...p.pool, owners: deleteIn(p.pool.owners, q.qn) };
  const next = withParent(world, { ...p, pool, refs: p.refs - 1 });
  return withSd(next, { queues: deleteIn(next.sdmdev.queues, q.uuid) });
}

/** `start_queue` (RFCv2 6/7 `hisi_qm_start_queue`): a fresh ring, the hardware runs it. */
function startQueue(world: SdmdevWorld, q: OpenQueue, pasid: number): SdmdevWorld {
  const ring = world.sdmdev.nextRing;
  const { by, fd, maps } = q.life;
  const life: QueueLife = { state: "started", by, fd, maps, pasid, ring, updated: false };
  return withSd(withQueue(world, { ...q, life }), { nextRing: ring + 1 });
}

/**
 * The last reference to the device file is gone (`vfio_sdmdev_mdev_release` → `stop_queue`,
 * as intended: RFCv2 6/7 `hisi_qm_stop_queue` is empty in v1): the hardware is quiesced,
 * then the ring is freed; the mdev core's release follows, which removes the device (and
 * the parent with its last) when the parent is being unregistered.
 */
function releaseFile(world: SdmdevWorld, q: SdmdevQueue): StepResult<SdmdevWorld> {
  const r = releaseDevice(world.mdev, q.uuid, "sdmdev");
  if (typeof r === "string") return fail(world, r);
  const [mdev, rel] = r;
  const closed: SdmdevQueue = { ...q, life: { state: "closed" } };
  let next = withQueue({ ...world, mdev }, closed);
  if (rel.removed) next = putQueue(next, closed);
  if (rel.parentGone) next = withSd(next, { parents: deleteIn(next.sdmdev.parents, q.parent) });
  return done(next, 0);
}

// ---------------------------------------------------------------------------------------------
// Operations

function register(
  world: SdmdevWorld,
  parent: number,
  name: string,
  qpNum: number,
  sva: boolean,
): StepResult<SdmdevWorld> {
  if (!isInt(qpNum, 1, MAX_QP_NUM) || typeof sva !== "boolean") return fail(world, "EINVAL");
  const mdev = registerParent(world.mdev, {
    parent,
    vendor: "sdmdev",
    name,
    deviceApi: SDMDEV_DEVICE_API,
    capacity: qpNum,
    types: 1,
    reserved: 0,
  });
  if (typeof mdev === "string") return fail(world, mdev);
  const p: SdmdevParent = {
    parent,
    name,
    sva,
    pool: { qpNum, owners: new Map() },
    tfms: new Map(),
    refs: 0,
  };
  return done(withParent({ ...world, mdev }, p), 0);
}

function unregister(world: SdmdevWorld, parent: number): StepResult<SdmdevWorld> {
  const p = liveParent(world, parent);
  if (typeof p === "string") return fail(world, p);
  const r = beginUnregister(world.mdev, parent, "sdmdev");
  if (typeof r === "string") return fail(world, r);
  const [mdev, { removed, pending }] = r;
  let next: SdmdevWorld = { ...world, mdev };
  for (const d of removed) next = putQueue(next, next.sdmdev.queues.get(d.uuid)!);
  return done(dropGoneParent(next, parent), pending + p.tfms.size);
}

/** The sdmdev parent goes once the mdev core's parent has (its last user left). */
function dropGoneParent(world: SdmdevWorld, parent: number): SdmdevWorld {
  if (world.mdev.parents.has(parent)) return world;
  return withSd(world, { parents: deleteIn(world.sdmdev.parents, parent) });
}

function create(world: SdmdevWorld, parent: number, uuid: string): StepResult<SdmdevWorld> {
  const p = liveParent(world, parent);
  if (typeof p === "string") return fail(world, p);
  const r = createDevice(
    world.mdev,
    parent,
    sdmdevTypeId(p.name),
    uuid,
    "sdmdev",
    world.iommuGroups,
  );
  if (typeof r === "string") return fail(world, r);
  const [mdev, d] = r;
  const [qn] = freeQns(p.pool, 1);
  if (qn === undefined) return fail(world, "EBUSY");
  const pool = { ...p.pool, owners: setIn(p.pool.owners, qn, { mdev: d.uuid }) };
  const q: SdmdevQueue = { uuid: d.uuid, parent, qn, life: { state: "closed" } };
  const next = withQueue(withParent({ ...world, mdev }, { ...p, pool, refs: p.refs + 1 }), q);
  return done(next, d.group);
}

function remove(world: SdmdevWorld, uuid: string): StepResult<SdmdevWorld> {
  const r = removeDevice(world.mdev, uuid, "sdmdev");
  if (typeof r === "string") return fail(world, r);
  const [mdev, d] = r;
  return done(putQueue({ ...world, mdev }, world.sdmdev.queues.get(d.uuid)!), 0);
}

function open(world: SdmdevWorld, uuid: string, by: number): StepResult<SdmdevWorld> {
  if (!isInt(by, 1)) return fail(world, "EINVAL");
  const found = lookupQueue(world, uuid);
  if (typeof found === "string") return fail(world, found);
  const [q, d] = found;
  if (d.open) return fail(world, "EBUSY");
  const p = world.sdmdev.parents.get(q.parent)!;
  if (!p.sva) {
    for (const other of world.sdmdev.queues.values()) {
      const holder = holderOf(other);
      if (other.parent === p.parent && holder !== null && holder !== by) {
        return fail(world, "EBUSY");
      }
    }
  }
  const r = openDevice(world.mdev, uuid, "sdmdev");
  if (typeof r === "string") return fail(world, r);
  const life: QueueLife = { state: "opened", by, fd: true, maps: [] };
  const file: OpenQueue = { ...q, life };
  const opened = withQueue({ ...world, mdev: r[0] }, file);
  return done(p.sva ? opened : startQueue(opened, file, 0), 0);
}

function release(world: SdmdevWorld, uuid: string, by: number): StepResult<SdmdevWorld> {
  const found = lookupQueue(world, uuid);
  if (typeof found === "string") return fail(world, found);
  const [q] = found;
  if (q.life.state === "closed" || !q.life.fd) return fail(world, "EINVAL");
  if (q.life.by !== by) return fail(world, "EPERM");
  const closed = withFile(q as OpenQueue, { fd: false });
  if (q.life.maps.length > 0) return done(withQueue(world, closed), 0);
  return releaseFile(world, closed);
}

function mmap(
  world: SdmdevWorld,
  uuid: string,
  by: number,
  pgoff: number,
  size: number,
): StepResult<SdmdevWorld> {
  const q = ownQueue(world, uuid, by);
  if (typeof q === "string") return fail(world, q);
  if (!isInt(pgoff, 0) || !isInt(size, 1)) return fail(world, "EINVAL");
  const len = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
  const region = mmapRegion(pgoff);
  let mapping: Omit<SdmdevMapping, "id">;
  if (region === 0) {
    if (len > PAGE_SIZE) return fail(world, "EINVAL");
    mapping = { region: 0, size: len, ring: null };
  } else if (region === 1) {
    if (q.life.state !== "started" || len > RING_SIZE) return fail(world, "EINVAL");
    mapping = { region: 1, size: len, ring: q.life.ring };
  } else {
    return fail(world, "EINVAL");
  }
  const { maps } = q.life;
  let id = 1;
  while (maps.some((m) => m.id === id)) id++;
  return done(withQueue(world, withFile(q, { maps: [...maps, { id, ...mapping }] })), id);
}

function munmap(
  world: SdmdevWorld,
  uuid: string,
  by: number,
  map: number,
): StepResult<SdmdevWorld> {
  const q = ownQueue(world, uuid, by, false);
  if (typeof q === "string") return fail(world, q);
  const maps = q.life.maps.filter((m) => m.id !== map);
  if (maps.length === q.life.maps.length) return fail(world, "EINVAL");
  const unmapped = withFile(q, { maps });
  if (q.life.fd || maps.length > 0) return done(withQueue(world, unmapped), 0);
  return releaseFile(world, unmapped);
}

function wait(
  world: SdmdevWorld,
  uuid: string,
  by: number,
  timeout: number,
  updateAt: number,
): StepResult<SdmdevWorld> {
  const q = ownQueue(world, uuid, by);
  if (typeof q === "string") return fail(world, q);
  if (!isInt(timeout, 0) || !isInt(updateAt, -1)) return fail(world, "EINVAL");
  const life = q.life;
  if (life.state !== "started") return fail(world, "EINVAL");
  const updated = (u: boolean) => withQueue(world, { ...q, life: { ...life, updated: u } });
  const at = life.updated ? 0 : updateAt;
  if (timeout === 0) {
    if (at < 0) return fail(world, "EAGAIN");
    return done(updated(false), 0);
  }
  if (at >= 0 && at <= timeout) return done(updated(false), Math.max(1, timeout - at));
  return done(at > timeout ? updated(true) : world, 0);
}

function notify(world: SdmdevWorld, parent: number, qn: number): StepResult<SdmdevWorld> {
  const p = world.sdmdev.parents.get(parent);
  if (!p) return fail(world, "ENODEV");
  const owner = p.pool.owners.get(qn);
  if (!owner || !("mdev" in owner)) return fail(world, "EINVAL");
  const q = world.sdmdev.queues.get(owner.mdev)!;
  const life = q.life;
  if (life.state !== "started") return fail(world, "EINVAL");
  return done(
    life.updated ? world : withQueue(world, { ...q, life: { ...life, updated: true } }),
    0,
  );
}

function svaBind(world: SdmdevWorld, by: number): StepResult<SdmdevWorld> {
  if (!isInt(by, 1)) return fail(world, "EINVAL");
  for (const [pasid, mm] of world.sdmdev.pasids) if (mm === by) return done(world, pasid);
  const pasid = lowestFreeId(world.sdmdev.pasids, 1);
  return done(withSd(world, { pasids: setIn(world.sdmdev.pasids, pasid, by) }), pasid);
}

function bindPasid(
  world: SdmdevWorld,
  uuid: string,
  by: number,
  pasid: number,
): StepResult<SdmdevWorld> {
  const q = ownQueue(world, uuid, by);
  if (typeof q === "string") return fail(world, q);
  const p = world.sdmdev.parents.get(q.parent)!;
  if (!p.sva || pasidsOf(world).get(pasid) !== by) return fail(world, "EINVAL");
  if (isRunning(q)) return fail(world, "EBUSY");
  return done(startQueue(world, q, pasid), 0);
}

function readAttrs(world: SdmdevWorld, parent: number): StepResult<SdmdevWorld> {
  const p = liveParent(world, parent);
  if (typeof p === "string") return fail(world, p);
  const attrs: SdmdevAttrs = {
    iommu_type: VFIO_TYPE1_IOMMU,
    dma_flag: p.sva ? SDMDEV_DMA_FLAG.MULTI_PROC_MAP : SDMDEV_DMA_FLAG.SINGLE_PROC_MAP,
    flags: 0,
    name: p.name,
    device_api: SDMDEV_DEVICE_API,
    available_instances: freeQps(p.pool),
  };
  return done(world, attrs);
}

function tfmInit(world: SdmdevWorld, parent: number, tfm: number): StepResult<SdmdevWorld> {
  const p = liveParent(world, parent);
  if (typeof p === "string") return fail(world, p);
  if (!isInt(tfm, 1)) return fail(world, "EINVAL");
  if (p.tfms.has(tfm)) return fail(world, "EEXIST");
  const qns = freeQns(p.pool, 2);
  if (qns.length < 2) return fail(world, "EBUSY");
  const mdev = setReserved(world.mdev, parent, "sdmdev", 2 * (p.tfms.size + 1));
  if (typeof mdev === "string") return fail(world, mdev);
  const owners = new Map(p.pool.owners);
  for (const qn of qns) owners.set(qn, { tfm });
  const pair: readonly [number, number] = [qns[0], qns[1]];
  const next = withParent({ ...world, mdev }, {
    ...p,
    pool: { ...p.pool, owners },
    tfms: setIn(p.tfms, tfm, pair),
  });
  return done(next, pair);
}

function tfmExit(world: SdmdevWorld, parent: number, tfm: number): StepResult<SdmdevWorld> {
  const p = world.sdmdev.parents.get(parent);
  if (!p) return fail(world, "ENODEV");
  const pair = p.tfms.get(tfm);
  if (!pair) return fail(world, "EINVAL");
  const mdev = setReserved(world.mdev, parent, "sdmdev", 2 * (p.tfms.size - 1));
  if (typeof mdev === "string") return fail(world, mdev);
  const owners = new Map(p.pool.owners);
  for (const qn of pair) owners.delete(qn);
  const next = withParent({ ...world, mdev }, {
    ...p,
    pool: { ...p.pool, owners },
    tfms: deleteIn(p.tfms, tfm),
  });
  return done(dropGoneParent(next, parent), 0);
}

// ---------------------------------------------------------------------------------------------
// Step

/** The command with op `K`. */
type SdCmd<K extends SdmdevCommand["op"]> = Extract<SdmdevCommand, { readonly op: K }>;

/** Narrows a command whose op has just been matched to `op`. */
function as<K extends SdmdevCommand["op"]>(cmd: SdmdevCommand, _op: K): SdCmd<K> {
  return cmd as SdCmd<K>;
}

/**
 * Executes one sdmdev command (RFCv2 3/7 `vfio_sdmdev.c`, 6/7 the QM glue, 5/7 the ZIP
 * transform). Errnos common to the ops naming a device by `uuid`: EINVAL for a malformed
 * UUID, ENODEV for an unknown one, EPERM for a device of a parent not registered by sdmdev.
 * - `sdmdev.register {parent, name, qpNum, sva}` (`vfio_sdmdev_register` +
 *   `mdev_register_device`): ok(0); EINVAL (malformed: `qpNum` 1..{@link MAX_QP_NUM}, name
 *   as in mdev.ts), EEXIST (already an mdev or sdmdev parent).
 * - `sdmdev.unregister {parent}` (`vfio_sdmdev_unregister`): ok(users still waited for:
 *   open devices and transforms); ENODEV (unknown or already unregistering).
 * - `sdmdev.create {parent, uuid}` (`vfio_sdmdev_mdev_create` → `get_queue`): ok(group id);
 *   ENODEV (not a live sdmdev parent), EINVAL (UUID), EEXIST (live UUID), EBUSY (no free qp).
 * - `sdmdev.remove {uuid}` (`vfio_sdmdev_mdev_remove` → `put_queue`): ok(0); EBUSY (open).
 * - `sdmdev.open {uuid, by}` (`vfio_sdmdev_mdev_open` → `start_queue(pasid 0)` without
 *   PASID support): ok(0); EINVAL (`by` not a positive integer), EBUSY (already open, or,
 *   without PASID support, another process has an sdmdev of this parent open).
 * - `sdmdev.release {uuid, by}` (close of the device fd; `vfio_sdmdev_mdev_release` →
 *   `stop_queue` once no mapping is left either): ok(0); EINVAL (not open, or its fd already
 *   closed), EPERM (`by` did not open it).
 * - `sdmdev.mmap {uuid, by, pgoff, size}` (`hisi_qm_mmap`): ok(mapping id); EPERM (`by`
 *   does not hold it open), EINVAL (region `pgoff & 0xf` other than 0 or 1; region 0 longer
 *   than one page; region 1 before the queue runs or longer than {@link RING_SIZE}; zero or
 *   malformed size).
 * - `sdmdev.munmap {uuid, by, map}`: ok(0), and the file is released when this was its last
 *   reference; EPERM (`by`'s mm has no mapping of the device), EINVAL (no such mapping).
 * - `sdmdev.wait {uuid, by, timeout, updateAt}` (`VFIO_SDMDEV_CMD_WAIT`): ok(remaining
 *   ticks, 0 on timeout or after a forever wait); EAGAIN (forever wait, no update: the caller
 *   sleeps until a signal); EPERM; EINVAL (queue not running, malformed numbers).
 * - `sdmdev.notify {parent, qn}` (the IRQ thread's `event_cb` → `vfio_sdmdev_wake_up`):
 *   ok(0), the queue is `updated`; ENODEV (unknown parent), EINVAL (the qp is not a running
 *   sdmdev queue: a stopped queue's hardware reports nothing).
 * - `sdmdev.svaBind {by}` (this view's `iommu_sva_bind_device`): ok(the process's PASID).
 * - `sdmdev.bindPasid {uuid, by, pasid}` (`VFIO_SDMDEV_CMD_BIND_PASID`): ok(0), the queue
 *   runs with `pasid`; EPERM, EINVAL (parent without PASID support, or `pasid` not of `by`'s
 *   address space), EBUSY (already running).
 * - `sdmdev.readAttrs {parent}` (the sysfs `*_show` functions): ok({@link SdmdevAttrs});
 *   ENODEV when not a live sdmdev parent.
 * - `sdmdev.tfmInit {parent, tfm}` (`hisi_zip_alloc_comp_ctx`): ok([qn, qn]), two qps or
 *   none; ENODEV, EINVAL (tfm not a positive integer), EEXIST (live tfm), EBUSY (< 2 free).
 * - `sdmdev.tfmExit {parent, tfm}` (`hisi_zip_free_comp_ctx`): ok(0), and the last user of
 *   a parent being unregistered lets it go; ENODEV (not a registered sdmdev parent), EINVAL.
 */
export function stepSdmdev<C extends SdmdevCommand>(
  world: SdmdevWorld,
  cmd: C,
): TypedStepResult<SdmdevWorld, ResultsOf<typeof sdmdevResults>[C["op"]]>;
/** stepSdmdev of any command, its success value untyped. */
export function stepSdmdev(world: SdmdevWorld, cmd: SdmdevCommand): StepResult<SdmdevWorld> {
  const c = cmd;
  return match(cmd.op)
    .with("sdmdev.wait", (op) => {
      const a = as(c, op);
      return wait(world, a.uuid, a.by, a.timeout, a.updateAt);
    })
    .with("sdmdev.notify", (op) => notify(world, as(c, op).parent, as(c, op).qn))
    .with("sdmdev.mmap", (op) => {
      const a = as(c, op);
      return mmap(world, a.uuid, a.by, a.pgoff, a.size);
    })
    .with("sdmdev.munmap", (op) => munmap(world, as(c, op).uuid, as(c, op).by, as(c, op).map))
    .with("sdmdev.open", (op) => open(world, as(c, op).uuid, as(c, op).by))
    .with("sdmdev.release", (op) => release(world, as(c, op).uuid, as(c, op).by))
    .with("sdmdev.bindPasid", (op) => {
      const a = as(c, op);
      return bindPasid(world, a.uuid, a.by, a.pasid);
    })
    .with("sdmdev.svaBind", (op) => svaBind(world, as(c, op).by))
    .with("sdmdev.create", (op) => create(world, as(c, op).parent, as(c, op).uuid))
    .with("sdmdev.remove", (op) => remove(world, as(c, op).uuid))
    .with("sdmdev.readAttrs", (op) => readAttrs(world, as(c, op).parent))
    .with("sdmdev.tfmInit", (op) => tfmInit(world, as(c, op).parent, as(c, op).tfm))
    .with("sdmdev.tfmExit", (op) => tfmExit(world, as(c, op).parent, as(c, op).tfm))
    .with("sdmdev.register", (op) => {
      const a = as(c, op);
      return register(world, a.parent, a.name, a.qpNum, a.sva);
    })
    .with("sdmdev.unregister", (op) => unregister(world, as(c, op).parent))
    .exhaustive(unknownOp);
}

// ---------------------------------------------------------------------------------------------
// Invariants

function eachQueue(
  w: SdmdevWorld,
  f: (q: SdmdevQueue, p: SdmdevParent | undefined) => string | undefined,
): string | undefined {
  for (const q of w.sdmdev.queues.values()) {
    const msg = f(q, w.sdmdev.parents.get(q.parent));
    if (msg !== undefined) return `sdmdev ${q.uuid}: ${msg}`;
  }
  return undefined;
}

function eachSdParent(
  w: SdmdevWorld,
  f: (p: SdmdevParent) => string | undefined,
): string | undefined {
  for (const p of w.sdmdev.parents.values()) {
    const msg = f(p);
    if (msg !== undefined) return `sdmdev parent ${p.parent}: ${msg}`;
  }
  return undefined;
}

function ownerName(o: QpOwner): string {
  return "mdev" in o ? `mdev ${o.mdev}` : `tfm ${o.tfm}`;
}

/**
 * The sdmdev invariants (DOMAIN.md §4), each a named predicate over {@link SdmdevWorld}
 * (RFCv2 3/7, 6/7), followed by the mdev core's ({@link mdevInvariants}) lifted to the world:
 * - `sdmdev.qp-single-owner` (always): every taken qp number is below `qpNum` and its owner
 *   is live and holds exactly it: an sdmdev whose queue has that `qn`, or a transform listing
 *   it; every live sdmdev's and transform's qps are taken by them. So a qp belongs to at most
 *   one mdev or kernel user and none leaks.
 * - `sdmdev.available-instances` (between ops: registration builds the class device and the mdev parent one after the other): free qps are never negative and the mdev core's
 *   `available_instances` of the parent's type equals them.
 * - `sdmdev.one-open-per-mdev` (always): a queue's file is alive exactly when its mdev is open
 *   (the mdev core allows one open); without PASID support all open sdmdevs of a parent
 *   belong to one process.
 * - `sdmdev.no-freed-ring-mapped` (always): a region-1 mapping names the ring its queue runs
 *   now (a stopped queue's ring is freed, and ring ids are never reused); ring ids are below
 *   `nextRing` and no two queues share one. (Only open files have mappings, and only running
 *   queues a PASID: {@link QueueLife} cannot say otherwise.)
 * - `sdmdev.running-owner` (always): a running queue's PASID is 0 without PASID support,
 *   else one of its opener's address space.
 * - `sdmdev.refcounts` (always): a parent's device references are non-negative and equal to
 *   its live sdmdevs (one `get_device` per create, one `put_device` per remove).
 * - `sdmdev.no-create-after-unregister` (always): every sdmdev of a parent being unregistered
 *   was created before the unregister began and is still open.
 * - `sdmdev.world-consistent` (between-ops): sdmdev parents are exactly the mdev parents of
 *   vendor `sdmdev`, with one type of cost 1, capacity `qpNum` and `reserved` twice the
 *   transforms; queues are exactly the mdevs of those parents; mapping ids are unique.
 */
export const sdmdevInvariants: readonly Invariant<SdmdevWorld>[] = [
  {
    name: "sdmdev.qp-single-owner",
    scope: "always",
    check: (w) =>
      eachSdParent(w, (p) => {
        for (const [qn, o] of p.pool.owners) {
          if (!isInt(qn, 0, p.pool.qpNum - 1)) return `qp ${qn} outside 0..${p.pool.qpNum - 1}`;
          if ("mdev" in o) {
            const q = w.sdmdev.queues.get(o.mdev);
            if (!q || q.parent !== p.parent || q.qn !== qn) {
              return `qp ${qn} owned by ${ownerName(o)}, which does not hold it`;
            }
          } else if (!p.tfms.get(o.tfm)?.includes(qn)) {
            return `qp ${qn} owned by ${ownerName(o)}, which does not hold it`;
          }
        }
        for (const q of w.sdmdev.queues.values()) {
          if (q.parent !== p.parent) continue;
          const o = p.pool.owners.get(q.qn);
          if (!o || !("mdev" in o) || o.mdev !== q.uuid) {
            return `sdmdev ${q.uuid} uses qp ${q.qn}, owned by ${o ? ownerName(o) : "nobody"}`;
          }
        }
        for (const [tfm, pair] of p.tfms) {
          if (pair[0] === pair[1]) return `tfm ${tfm} holds qp ${pair[0]} twice`;
          for (const qn of pair) {
            const o = p.pool.owners.get(qn);
            if (!o || !("tfm" in o) || o.tfm !== tfm) {
              return `tfm ${tfm} uses qp ${qn}, owned by ${o ? ownerName(o) : "nobody"}`;
            }
          }
        }
        return undefined;
      }),
  },
  {
    name: "sdmdev.available-instances",
    scope: "between-ops",
    check: (w) =>
      eachSdParent(w, (p) => {
        const free = freeQps(p.pool);
        if (free < 0) return `${free} free qps`;
        const m = w.mdev.parents.get(p.parent);
        if (!m || m.types.length !== 1) return "no single mdev type";
        const avail = availableInstances(m, m.types[0]);
        return avail === free ? undefined : `available_instances ${avail}, free qps ${free}`;
      }),
  },
  {
    name: "sdmdev.one-open-per-mdev",
    scope: "always",
    check: (w) => {
      const user = new Map<number, number>();
      return eachQueue(w, (q, p) => {
        const d = w.mdev.devices.get(q.uuid);
        const holder = holderOf(q);
        if ((holder !== null) !== (d?.open === true)) {
          return `held by ${holder}, mdev open: ${d?.open}`;
        }
        if (holder === null || !p || p.sva) return undefined;
        const first = user.get(p.parent);
        if (first !== undefined && first !== holder) {
          return `open by process ${holder} while process ${first} uses parent ${p.parent}`;
        }
        user.set(p.parent, holder);
        return undefined;
      });
    },
  },
  {
    name: "sdmdev.no-freed-ring-mapped",
    scope: "always",
    check: (w) => {
      const rings = new Set<number>();
      return eachQueue(w, (q) => {
        const ring = q.life.state === "started" ? q.life.ring : null;
        if (ring !== null) {
          if (rings.has(ring) || ring >= w.sdmdev.nextRing || ring < 1) {
            return `ring ${ring} shared or never allocated`;
          }
          rings.add(ring);
        }
        for (const m of mappingsOf(q)) {
          if (m.region === 1 && (m.ring === null || m.ring !== ring)) {
            return `mapping ${m.id} of ring ${m.ring}, queue runs ring ${ring}`;
          }
          if (m.region === 0 && m.ring !== null) return `MMIO mapping ${m.id} names a ring`;
        }
        return undefined;
      });
    },
  },
  {
    name: "sdmdev.running-owner",
    scope: "always",
    check: (w) =>
      eachQueue(w, (q, p) => {
        const life = q.life;
        if (life.state !== "started") return undefined;
        if (p && !p.sva && life.pasid !== 0) return `PASID ${life.pasid} without PASID support`;
        if (p && p.sva && pasidsOf(w).get(life.pasid) !== life.by) {
          return `PASID ${life.pasid} is not process ${life.by}'s`;
        }
        return undefined;
      }),
  },
  {
    name: "sdmdev.refcounts",
    scope: "always",
    check: (w) => {
      const live = new Map<number, number>();
      for (const q of w.sdmdev.queues.values()) live.set(q.parent, (live.get(q.parent) ?? 0) + 1);
      return eachSdParent(w, (p) => {
        const n = live.get(p.parent) ?? 0;
        return p.refs < 0 || p.refs !== n ? `${p.refs} references for ${n} sdmdevs` : undefined;
      });
    },
  },
  {
    name: "sdmdev.no-create-after-unregister",
    scope: "always",
    check: (w) =>
      eachSdParent(w, (p) => {
        const from = w.mdev.parents.get(p.parent)?.unregisterFrom;
        if (from === null || from === undefined) return undefined;
        for (const q of w.sdmdev.queues.values()) {
          if (q.parent !== p.parent) continue;
          const d = w.mdev.devices.get(q.uuid);
          if (!d || d.serial >= from) return `sdmdev ${q.uuid} created after unregister began`;
          if (holderOf(q) === null) return `sdmdev ${q.uuid} closed but not removed`;
        }
        return undefined;
      }),
  },
  {
    name: "sdmdev.world-consistent",
    scope: "between-ops",
    check: (w) => {
      for (const m of w.mdev.parents.values()) {
        const p = w.sdmdev.parents.get(m.id);
        if ((m.vendor === "sdmdev") !== (p !== undefined)) {
          return `mdev parent ${m.id} (${m.vendor}) vs sdmdev parent ${p?.parent}`;
        }
        if (!p) continue;
        const t = m.types[0];
        if (
          m.types.length !== 1 || t.cost !== 1 || t.id !== sdmdevTypeId(p.name) ||
          m.capacity !== p.pool.qpNum || m.reserved !== 2 * p.tfms.size
        ) {
          return `mdev parent ${m.id} does not mirror sdmdev parent's pool`;
        }
      }
      for (const p of w.sdmdev.parents.values()) {
        if (!w.mdev.parents.has(p.parent)) return `sdmdev parent ${p.parent} has no mdev parent`;
      }
      let sdDevices = 0;
      for (const d of w.mdev.devices.values()) {
        if (!w.sdmdev.parents.has(d.parent)) continue;
        sdDevices++;
        const q = w.sdmdev.queues.get(d.uuid);
        if (!q || q.parent !== d.parent) return `mdev ${d.uuid} has no sdmdev queue`;
      }
      if (sdDevices !== w.sdmdev.queues.size) {
        return `${w.sdmdev.queues.size} queues for ${sdDevices} sdmdev mdevs`;
      }
      return eachQueue(w, (q) => {
        const maps = mappingsOf(q);
        const ids = new Set(maps.map((m) => m.id));
        return ids.size === maps.length ? undefined : "mapping ids repeat";
      });
    },
  },
  ...mdevInvariants.map((inv): Invariant<SdmdevWorld> => ({
    name: inv.name,
    scope: inv.scope,
    check: (w) => inv.check(w.mdev),
  })),
];

/** The names of the violated {@link sdmdevInvariants} with their messages (RFCv2 3/7). */
export function checkSdmdevInvariants(world: SdmdevWorld): string[] {
  return checkInvariants(sdmdevInvariants, world);
}

/** sdmdev on the mdev core as one record. */
export const sdmdevSpec: MachineSpec<SdmdevWorld, SdmdevCommand> = {
  component: "sdmdev",
  initial: initialSdmdevWorld,
  step: stepSdmdev,
  invariants: sdmdevInvariants,
  schema: sdmdevCommandSchema,
  results: sdmdevResults,
};
