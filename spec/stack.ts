/**
 * The composed stack: the IOMMU and vfio type1 slice ({@link SystemState}), the mdev core and
 * sdmdev ({@link SdmdevWorld}) and the data path of the QM behind them, as one state stepped by
 * one function. Each component steps its own slice; this module adds what only the whole
 * knows:
 *
 * - **The machine.** Two QM functions ({@link STACK_FUNCTIONS}): {@link STACK_PARENT} (PCI
 *   group 1) without PASID support and {@link STACK_SVA_PARENT} (PCI group 3) with it, each
 *   bound to the kernel ZIP driver and registered with sdmdev by the views' prelude with
 *   {@link STACK_QP_NUM} qps; an unrelated PCI group 2; processes 1 and 2
 *   ({@link STACK_PROCESSES}), each with its container of the same id. Booting a QM
 *   allocates its five one-page context buffers in its function's default domain
 *   (`hisi_qm_init`: EQC, EQ, SQC and CQC base tables, a mailbox scratch page), function 1's
 *   first. The kernel crypto user (`sdmdev.tfmInit`) runs on
 *   function 1 (ENODEV on the other).
 * - **SVA** (`spec/sva.ts`): `sva.bind` is the container's VFIO_IOMMU_BIND_PROCESS (the seed's
 *   `_wd_bind_process`): the process's mm bound to every PASID-capable function behind the
 *   container's groups (an mdev group's parent), one bond each, and its PASID returned;
 *   `sva.unbind` (VFIO_IOMMU_UNBIND) drops those bonds, and so does the container's release
 *   when its last group leaves it. A queue of function 3 starts at BIND_PASID with a PASID of
 *   its caller's mm and holds a bond of its own while it runs (taken as it starts, dropped
 *   after it stopped), so a PASID is never freed while a queue context carries it: the
 *   teardown order is stop, drain, unbind, free. The queue's device reads are tagged with
 *   its PASID and walk that mm's page table (the process's own memory, no MAP_DMA), an I/O
 *   page fault (`iopf` event) when the mm has exited or the function has no such entry; ring
 *   accesses stay untagged, through the domain. `stack.exit` drops the mm's users first
 *   (`exit_mm`), so requests the device runs after that fault; the bonds, and with them the
 *   PASID, go as the process's files close. `stack.exitMm` is that first half of an exit alone
 *   (its files are closed one by one afterwards, as `exit_files` would).
 * - **Kernel ownership** (a review correction): a function's own group belongs to the ZIP
 *   driver, so no process may open it: `type1.openGroup` of group 1 or 3 is EPERM (upstream
 *   later `iommu_group_claim_dma_owner`; the seed's library checks the group is viable).
 * - **mdev groups are IOMMU groups**: `sdmdev.create` adds the new mdev's group to the IOMMU
 *   slice (an mdev group whose DMA is its parent's); `sdmdev.remove` takes it away, and is
 *   EBUSY while a process holds the group open.
 * - **The PCI remove** (`sdmdev.unregister`, the QM driver's remove calling
 *   `vfio_sdmdev_unregister`) waits for its users, as `mdev_unregister_device` does: closed
 *   mdevs go at once, an open one when its file is released (its queue stopped, its ring
 *   freed), the parent with its last user (a kernel crypto transform included). The QM and
 *   its boot buffers stay: `sdmdev.register` binds the function again once the parent is
 *   gone (EEXIST before; ENODEV for a PCI function that is not a QM, EINVAL for another qp
 *   count or a PASID capability the function does not have).
 * - **Retained groups**: an mdev removed while a process holds its group file open leaves
 *   its IOMMU group behind (the VFIO group references it) until that file's last close; the
 *   group id is not reused meanwhile (it is the IOMMU's IDA that hands ids out), the group
 *   stays set in its container until unset, and `type1.getDeviceFd` of it is ENODEV (the
 *   group has no device).
 * - **The device file is the VFIO device fd**: `type1.getDeviceFd` of an mdev group opens the
 *   sdmdev for the container's process (`vfio_mdev_open` → the parent's open; its failure
 *   fails the call and leaves no fd), `type1.closeDeviceFd` releases it.
 * - **Rings are kernel DMA buffers**: a queue that starts gets its SQ+CQ ring
 *   ({@link RING_SIZE}) allocated in the parent's default domain, which a sharing container
 *   also maps its user pages into; a queue that stops has it freed. A kernel crypto
 *   transform allocates, per queue pair, its input and output buffers and its ring
 *   (`hisi_zip_create_qp`), and frees them on exit.
 * - **Requests**: `stack.send` is the queue's user driver writing one SQE through its
 *   process's mappings of the queue's MMIO page and ring (it needs both: EFAULT otherwise;
 *   EBUSY with `sqDepth - 1` outstanding, sent and not yet received) naming the IOVA the
 *   device is to read; `stack.deviceStep` is the device executing the oldest request of a
 *   queue: it reads that IOVA through the parent's group, exactly as `iommu.dma` does (ok,
 *   or EFAULT with an `iommu` fault), and completes the request either way (a CQE, the
 *   queue updated as `sdmdev.notify` says; the IRQ thread only wakes the user's waiters);
 *   `stack.recv` is the user driver taking the oldest completion off the CQ:
 *   `{iova, status}` (status 0, or 1 when the read faulted), EAGAIN when none is there.
 *   The CQ is the user's alone: nothing else consumes its entries. EAGAIN for a queue with
 *   nothing to execute (a kernel crypto user's included), EINVAL for one not running. A
 *   queue that stops drops the requests it had not executed and the completions not
 *   received (the stop quiesces the hardware first).
 * - **Exit**: `stack.exit` is a process's `do_exit`: its mappings go, then its files.
 * - **Fork** (issue 11): `stack.fork` is `mm.fork` in the stack: the child gets a
 *   copy-on-write image of its parent's memory and copies of its open files, but no mapping
 *   of an sdmdev file: the doorbell page and ring mmaps are VM_DONTCOPY | VM_WIPEONFORK (the
 *   rule uacce later adopted), so the child's `stack.send` and `stack.recv` on its parent's
 *   queue are EFAULT. The queue stays its opener's (`stack.opener-holds-fd` names the opener;
 *   a child's copy of the fd does not make it the holder). A file closes at its last holder:
 *   a child's exit drops its copies; an opener that exits while a child lives keeps its files
 *   open (only its mappings go) until the last such child exits.
 *
 * @module
 */
import { deleteIn, type IommuState, setIn, stepIommu } from "./iommu.ts";
import {
  holderOf,
  initialSdmdevWorld,
  isRunning,
  mappingsOf,
  RING_SIZE,
  type SdmdevCommand,
  sdmdevCommandSchema,
  sdmdevInvariants,
  type SdmdevQueue,
  sdmdevResults,
  type SdmdevWorld,
  stepSdmdev,
} from "./sdmdev.ts";
import {
  initialSvaState,
  pasidOwner,
  pasidOwners,
  svaBind,
  svaExitMm,
  svaInvariants,
  type SvaState,
  svaUnbind,
  walkPasid,
} from "./sva.ts";
import { stepMm } from "./mm.ts";
import { initialState, invariants as systemInvariants, type SystemState } from "./system.ts";
import { stepType1, type Type1Command, type1CommandSchema, type1Results } from "./type1.ts";
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
  type Ret,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";
import { ZIP_BUFFER_SIZE } from "./zipcrypto.ts";

/** The QM function without PASID support: its id, its PCI group and its sdmdev parent id. */
export const STACK_PARENT = 1;

/** The QM function with PASID support (SVA): its id, PCI group and sdmdev parent id. */
export const STACK_SVA_PARENT = 3;

/** The QM functions and whether each supports PASIDs, in probe order. */
export const STACK_FUNCTIONS: readonly { readonly parent: number; readonly sva: boolean }[] = [
  { parent: STACK_PARENT, sva: false },
  { parent: STACK_SVA_PARENT, sva: true },
];

/** Whether `group` is the PCI group of a QM function (its kernel driver's). */
function isFunctionGroup(group: number): boolean {
  return STACK_FUNCTIONS.some((f) => f.parent === group);
}

/** The processes, each with its container of the same id and its mm. */
export const STACK_PROCESSES: readonly { readonly id: number; readonly mm: number }[] = [
  { id: 1, mm: 1 },
  { id: 2, mm: 2 },
];

/** Queue pairs of the QM. */
export const STACK_QP_NUM = 4;

/** SQ depth of every queue (the seed's 1024); `sqDepth - 1` requests may be outstanding. */
export const STACK_SQ_DEPTH = 1024;

/** Pages of the QM's boot buffers, in allocation order (`hisi_qm_init` + `hisi_qm_start`). */
const BOOT_BUFFER_PAGES: readonly number[] = [1, 1, 1, 1, 1];

const RING_PAGES = Math.ceil(RING_SIZE / PAGE_SIZE);
const ZIP_BUFFER_PAGES = ZIP_BUFFER_SIZE / PAGE_SIZE;

/** The kernel DMA buffers of one queue pair of a crypto transform. */
export interface TfmQpBuffers {
  /** Input buffer id. */
  readonly input: number;
  /** Output buffer id. */
  readonly output: number;
  /** Ring buffer id. */
  readonly ring: number;
}

/** The whole state. */
export interface StackState extends SystemState, SdmdevWorld {
  /** The ring buffer of each running queue: ring id to the kernel DMA buffer holding it. */
  readonly rings: ReadonlyMap<number, number>;
  /** Each crypto transform's buffers: its compress and its decompress queue pair's. */
  readonly tfmBuffers: ReadonlyMap<number, readonly [TfmQpBuffers, TfmQpBuffers]>;
  /** Requests sent and not yet executed, by mdev UUID, oldest first: the IOVA each reads. */
  readonly requests: ReadonlyMap<string, readonly number[]>;
  /** Completions the device wrote and the user has not received, by mdev UUID, oldest first. */
  readonly completions: ReadonlyMap<string, readonly StackCompletion[]>;
  /** The SVA layer: PASIDs and the mms bound to devices. */
  readonly sva: SvaState;
  /** The functions each container's `sva.bind` bound its process to, by container. */
  readonly svaBinds: ReadonlyMap<number, readonly number[]>;
}

/** A completed request as `stack.recv` returns it. */
export interface StackCompletion {
  /** The IOVA the request read. */
  readonly iova: number;
  /** 0, or 1 when the device's read faulted. */
  readonly status: number;
}

/** The stack's own commands. */
export type StackOwnCommand =
  | { readonly op: "stack.send"; readonly uuid: string; readonly by: number; readonly iova: number }
  | { readonly op: "stack.deviceStep"; readonly parent: number; readonly qn: number }
  | { readonly op: "stack.recv"; readonly uuid: string; readonly by: number }
  | { readonly op: "stack.exit"; readonly by: number }
  | { readonly op: "stack.exitMm"; readonly by: number }
  | { readonly op: "stack.fork"; readonly by: number; readonly child: number }
  | { readonly op: "sva.bind"; readonly container: number }
  | { readonly op: "sva.unbind"; readonly container: number };

/** The sdmdev commands of the stack (open and release are the VFIO device fd's). */
export type StackSdmdevCommand = Extract<
  SdmdevCommand,
  {
    readonly op:
      | "sdmdev.register"
      | "sdmdev.unregister"
      | "sdmdev.create"
      | "sdmdev.remove"
      | "sdmdev.mmap"
      | "sdmdev.munmap"
      | "sdmdev.bindPasid"
      | "sdmdev.tfmInit"
      | "sdmdev.tfmExit";
  }
>;

/** Every command of the stack. */
export type StackCommand = Type1Command | StackSdmdevCommand | StackOwnCommand;

const SDMDEV_OPS_HERE = [
  "sdmdev.register",
  "sdmdev.unregister",
  "sdmdev.create",
  "sdmdev.remove",
  "sdmdev.mmap",
  "sdmdev.munmap",
  "sdmdev.bindPasid",
  "sdmdev.tfmInit",
  "sdmdev.tfmExit",
] as const;

/** The entries of `table` for `ops`. */
function pickOps<T, K extends keyof T>(table: T, ops: readonly K[]): Pick<T, K> {
  return Object.fromEntries(ops.map((op) => [op, table[op]])) as Pick<T, K>;
}

/** Argument kinds of every stack command. */
export const stackCommandSchema: CommandSchema<StackCommand["op"]> = {
  ...type1CommandSchema,
  ...pickOps(sdmdevCommandSchema, SDMDEV_OPS_HERE),
  "stack.send": { uuid: "string", by: "int", iova: "int" },
  "stack.deviceStep": { parent: "int", qn: "int" },
  "stack.recv": { uuid: "string", by: "int" },
  "stack.exit": { by: "int" },
  "stack.exitMm": { by: "int" },
  "stack.fork": { by: "int", child: "int" },
  "sva.bind": { container: "int" },
  "sva.unbind": { container: "int" },
};

/** The shape of the success value of each of the stack's own ops. */
export const stackOwnResults = {
  "stack.send": "zero",
  "stack.deviceStep": "zero",
  "stack.recv": { record: { iova: "int", status: "int" } },
  "stack.exit": "zero",
  "stack.exitMm": "zero",
  "stack.fork": "int",
  "sva.bind": "int",
  "sva.unbind": "zero",
} as const satisfies ResultTable<StackOwnCommand["op"]>;

/** The shape of every stack op's success value (the components' own for theirs). */
export const stackResults:
  & typeof type1Results
  & Pick<typeof sdmdevResults, StackSdmdevCommand["op"]>
  & typeof stackOwnResults = {
    ...type1Results,
    ...pickOps(sdmdevResults, SDMDEV_OPS_HERE),
    ...stackOwnResults,
  };

/** The process behind container `id` (one container per process, same id). */
function processOf(container: number): number {
  return container;
}

/** A kernel DMA allocation that failed: ENOMEM and what `iommu.dmaAlloc` reported. */
interface AllocFailure {
  readonly events: readonly Event[];
}

/**
 * Allocates kernel DMA buffers of `pages` each in the default domain of QM function `group`,
 * in order; the first that fails (its IOVA taken by a user mapping) fails them all.
 */
function allocKernel(
  iommu: IommuState,
  group: number,
  pages: readonly number[],
): [IommuState, number[]] | AllocFailure {
  const ids: number[] = [];
  let s = iommu;
  for (const n of pages) {
    const r = stepIommu(s, { op: "iommu.dmaAlloc", group, pages: n });
    if (!("ok" in r.ret)) return { events: r.events };
    s = r.state;
    ids.push((r.ret.ok as { buffer: number }).buffer);
  }
  return [s, ids];
}

/** Frees kernel DMA buffers by id. */
function freeKernel(iommu: IommuState, ids: readonly number[]): IommuState {
  let s = iommu;
  for (const id of ids) {
    const b = s.buffers.get(id)!;
    s = stepIommu(s, { op: "iommu.dmaFree", group: b.group, iova: b.iova }).state;
  }
  return s;
}

/** The initial state: the IOMMU/type1 machine with the QMs booted (their buffers allocated). */
export function initialStackState(): StackState {
  const system = initialState({
    pciGroups: [STACK_PARENT, STACK_SVA_PARENT, 2],
    mdevGroups: [],
    containers: STACK_PROCESSES,
  });
  let iommu = system.iommu;
  for (const { parent } of STACK_FUNCTIONS) {
    [iommu] = allocKernel(iommu, parent, BOOT_BUFFER_PAGES) as [IommuState, number[]];
  }
  return {
    ...system,
    iommu,
    ...initialSdmdevWorld(),
    rings: new Map(),
    tfmBuffers: new Map(),
    requests: new Map(),
    completions: new Map(),
    sva: initialSvaState(),
    svaBinds: new Map(),
  };
}

function sdmdevWorld(s: StackState): SdmdevWorld {
  return { mdev: s.mdev, sdmdev: s.sdmdev, pasidOwners: pasidOwners(s.sva) };
}

/**
 * After an sdmdev step: rings of queues that started are allocated, rings of queues that
 * stopped are freed and their unexecuted requests dropped; transforms set up or torn down
 * get or give back their buffers (in the order `hisi_zip_create_qp` allocates them). An
 * allocation that fails (a user mapping holds its IOVA) fails the whole step.
 */
function followSdmdev(before: StackState, world: SdmdevWorld): StackState | AllocFailure {
  let { iommu, rings, requests, completions, tfmBuffers } = before;
  const running = new Map<number, number>();
  for (const q of world.sdmdev.queues.values()) {
    if (q.life.state === "started") running.set(q.life.ring, q.parent);
  }
  for (const [ring, buffer] of rings) {
    if (running.has(ring)) continue;
    iommu = freeKernel(iommu, [buffer]);
    rings = deleteIn(rings, ring);
  }
  for (const [ring, parent] of running) {
    if (rings.has(ring)) continue;
    const got = allocKernel(iommu, parent, [RING_PAGES]);
    if (!Array.isArray(got)) return got;
    iommu = got[0];
    rings = setIn(rings, ring, got[1][0]);
  }
  const stopped = (uuid: string) => {
    const q = world.sdmdev.queues.get(uuid);
    return !q || !isRunning(q);
  };
  for (const uuid of requests.keys()) if (stopped(uuid)) requests = deleteIn(requests, uuid);
  for (const uuid of completions.keys()) {
    if (stopped(uuid)) completions = deleteIn(completions, uuid);
  }
  const tfms = world.sdmdev.parents.get(STACK_PARENT)?.tfms ?? new Map();
  for (const [tfm, qps] of tfmBuffers) {
    if (tfms.has(tfm)) continue;
    iommu = freeKernel(iommu, qps.flatMap((b) => [b.input, b.output, b.ring]));
    tfmBuffers = deleteIn(tfmBuffers, tfm);
  }
  for (const tfm of tfms.keys()) {
    if (tfmBuffers.has(tfm)) continue;
    const pages = [ZIP_BUFFER_PAGES, ZIP_BUFFER_PAGES, RING_PAGES];
    const got = allocKernel(iommu, STACK_PARENT, [...pages, ...pages]);
    if (!Array.isArray(got)) return got;
    iommu = got[0];
    const [ci, co, cr, di, dout, dr] = got[1];
    tfmBuffers = setIn(
      tfmBuffers,
      tfm,
      [
        { input: ci, output: co, ring: cr },
        { input: di, output: dout, ring: dr },
      ] as const,
    );
  }
  return {
    ...before,
    mdev: world.mdev,
    sdmdev: world.sdmdev,
    iommu,
    rings,
    requests,
    completions,
    tfmBuffers,
  };
}

/** Runs an sdmdev command on the sdmdev slice and lets the rest follow. */
function sdmdevStep(s: StackState, cmd: SdmdevCommand): StepResult<StackState> {
  const r = stepSdmdev({ ...sdmdevWorld(s), iommuGroups: s.iommu.groups }, cmd);
  if (!("ok" in r.ret)) return { ...r, state: s };
  const next = followSdmdev(s, r.state);
  if ("events" in next) return fail(s, "ENOMEM", [...r.events, ...next.events]);
  return { ...r, state: followQueueBonds(s, next) };
}

/** Whether QM function `parent` supports PASIDs. */
function isSvaFunction(parent: number): boolean {
  return STACK_FUNCTIONS.some((f) => f.parent === parent && f.sva);
}

/** The mm of process `by` (its container's). */
function mmOf(s: StackState, by: number): number {
  return s.type1.containers.get(by)?.mm ?? by;
}

/** The queues running with a PASID, each with its function and its process's mm. */
function pasidQueues(s: StackState): Map<string, { parent: number; mm: number }> {
  const out = new Map<string, { parent: number; mm: number }>();
  for (const q of s.sdmdev.queues.values()) {
    if (q.life.state === "started" && q.life.pasid !== 0) {
      out.set(`${q.uuid}/${q.life.ring}`, { parent: q.parent, mm: mmOf(s, q.life.by) });
    }
  }
  return out;
}

/**
 * A queue that started with a PASID takes a bond of its own (its function, its process's mm);
 * one that stopped (its hardware quiesced, its requests dropped) gives it back, which frees
 * the PASID with the mm's last bond.
 */
function followQueueBonds(before: StackState, after: StackState): StackState {
  const was = pasidQueues(before);
  const now = pasidQueues(after);
  let sva = after.sva;
  for (const [key, q] of was) {
    if (!now.has(key)) sva = svaUnbind(sva, q.parent, q.mm) as SvaState;
  }
  for (const [key, q] of now) {
    if (was.has(key)) continue;
    // BIND_PASID checked that the PASID is the live mm's, so the bond cannot fail.
    const bound = svaBind(sva, q.parent, q.mm);
    if (typeof bound !== "string") sva = bound[0];
  }
  return sva === after.sva ? after : { ...after, sva };
}

/** The PASID-capable functions behind container `id`'s groups (an mdev group's parent). */
function svaFunctionsOf(s: StackState, id: number): number[] {
  const parents = new Set<number>();
  for (const g of s.type1.containers.get(id)?.groups ?? []) {
    const parent = s.iommu.groups.get(g)?.parent ?? g;
    if (isSvaFunction(parent)) parents.add(parent);
  }
  return [...parents].sort((a, b) => a - b);
}

/**
 * `sva.bind {container}` (VFIO_IOMMU_BIND_PROCESS): the process's PASID, its mm bound to every
 * PASID-capable function behind the container's groups; the same PASID and no new bond when
 * the container is bound already. EINVAL for no such container, none of those functions, or
 * an mm without users; ENOSPC when the PASID space is full.
 */
function bindContainer(s: StackState, container: number): StepResult<StackState> {
  if (!s.type1.containers.has(container)) return fail(s, "EINVAL");
  const mm = mmOf(s, container);
  const bound = s.svaBinds.get(container);
  if (bound) return { state: s, ret: ok(s.sva.mms.get(mm)!.pasid), events: [] };
  const devices = svaFunctionsOf(s, container);
  if (devices.length === 0) return fail(s, "EINVAL");
  let sva = s.sva;
  let pasid = 0;
  for (const d of devices) {
    const r = svaBind(sva, d, mm);
    if (typeof r === "string") return fail(s, r);
    [sva, pasid] = r;
  }
  const svaBinds = setIn(s.svaBinds, container, devices);
  return { state: { ...s, sva, svaBinds }, ret: ok(pasid), events: [] };
}

/** The container's bonds go (`sva.unbind`, or its release): undefined when it holds none. */
function unbindContainer(s: StackState, container: number): StackState | undefined {
  const devices = s.svaBinds.get(container);
  if (!devices) return undefined;
  let sva = s.sva;
  for (const d of devices) sva = svaUnbind(sva, d, mmOf(s, container)) as SvaState;
  return { ...s, sva, svaBinds: deleteIn(s.svaBinds, container) };
}

/** The IOMMU groups of mdevs that are gone, kept while a group file holds them. */
function retainedGroups(s: StackState): number[] {
  const ids: number[] = [];
  for (const g of s.iommu.groups.values()) {
    if (g.kind === "mdev" && !s.mdev.groups.has(g.id)) ids.push(g.id);
  }
  return ids;
}

/**
 * The IOMMU slice's mdev groups follow the mdev core's: a new mdev's group is added (its DMA
 * its parent's), a gone mdev's group is deleted unless a group file retains it.
 */
function followMdevGroups(s: StackState): StackState {
  let groups = s.iommu.groups;
  for (const [id, uuid] of s.mdev.groups) {
    if (groups.has(id)) continue;
    const parent = s.mdev.devices.get(uuid)!.parent;
    groups = setIn(groups, id, {
      id,
      kind: "mdev" as const,
      parent,
      defaultDomain: null,
      domain: null,
      shares: new Map(),
    });
  }
  for (const id of retainedGroups(s)) {
    if (!s.type1.groupFds.has(id)) groups = deleteIn(groups, id);
  }
  return groups === s.iommu.groups ? s : { ...s, iommu: { ...s.iommu, groups } };
}

/** The UUID of the mdev whose group is `group`, if any. */
function mdevOfGroup(s: StackState, group: number): string | undefined {
  return s.mdev.groups.get(group);
}

/** A type1 command, with the device fd of an mdev group opening and releasing its sdmdev. */
function type1Step(s: StackState, cmd: Type1Command): StepResult<StackState> {
  if (cmd.op === "type1.openGroup" && isFunctionGroup(cmd.group)) {
    return fail(s, "EPERM");
  }
  const r = stepType1({ iommu: s.iommu, type1: s.type1 }, cmd);
  if (!("ok" in r.ret)) return { ...r, state: s };
  const stepped: StackState = { ...s, iommu: r.state.iommu, type1: r.state.type1 };
  const container = stepped.type1.containers.get((cmd as { container: number }).container);
  const released = container?.groups.length === 0
    ? unbindContainer(stepped, container.id)
    : undefined;
  const next = released ?? stepped;
  if (cmd.op !== "type1.getDeviceFd" && cmd.op !== "type1.closeDeviceFd") {
    return { ...r, state: next };
  }
  const group = (cmd as { group: number }).group;
  const uuid = mdevOfGroup(s, group);
  if (uuid === undefined) {
    const deviceless = cmd.op === "type1.getDeviceFd" && retainedGroups(s).includes(group);
    return deviceless ? fail(s, "ENODEV", r.events) : { ...r, state: next };
  }
  const by = processOf(cmd.container);
  const op = cmd.op === "type1.getDeviceFd" ? "sdmdev.open" : "sdmdev.release";
  const opened = sdmdevStep(next, { op, uuid, by });
  if (!("ok" in opened.ret)) return { ...opened, state: s };
  return { state: opened.state, ret: r.ret, events: [...r.events, ...opened.events] };
}

/** The queue of qp `qn` of `parent`, if an sdmdev holds it. */
function queueOfQp(s: StackState, parent: number, qn: number): SdmdevQueue | undefined {
  for (const q of s.sdmdev.queues.values()) if (q.parent === parent && q.qn === qn) return q;
  return undefined;
}

/**
 * Why process `by` cannot reach queue `uuid`'s rings through its mappings (ENODEV, EINVAL,
 * EFAULT), or undefined. A child forked from the queue's holder has no mapping of it (the
 * mmaps are VM_DONTCOPY | VM_WIPEONFORK): EFAULT.
 */
function userRingsRefused(s: StackState, uuid: string, by: number): Errno | undefined {
  const q = s.sdmdev.queues.get(uuid);
  if (!q) return "ENODEV";
  const holder = holderOf(q);
  if (holder === null || !isRunning(q)) return "EINVAL";
  if (holder !== by) return isChild(s, by) && openerOf(s, by) === holder ? "EFAULT" : "EINVAL";
  const regions = new Set(mappingsOf(q).map((m) => m.region));
  return regions.has(0) && regions.has(1) ? undefined : "EFAULT";
}

function send(s: StackState, uuid: string, by: number, iova: number): StepResult<StackState> {
  if (!Number.isSafeInteger(iova) || iova < 0) return fail(s, "EINVAL");
  const refused = userRingsRefused(s, uuid, by);
  if (refused) return fail(s, refused);
  const pending = s.requests.get(uuid) ?? [];
  const unreceived = s.completions.get(uuid)?.length ?? 0;
  if (pending.length + unreceived >= STACK_SQ_DEPTH - 1) return fail(s, "EBUSY");
  return {
    state: { ...s, requests: setIn(s.requests, uuid, [...pending, iova]) },
    ret: ok(0),
    events: [],
  };
}

function deviceStep(s: StackState, parent: number, qn: number): StepResult<StackState> {
  const q = queueOfQp(s, parent, qn);
  if (!q || !isRunning(q)) {
    // A kernel crypto user's queue runs too, with nothing sent on it in this view.
    const tfms = s.sdmdev.parents.get(parent)?.tfms ?? new Map();
    const kernel = [...tfms.values()].some((qns) => qns.includes(qn));
    return fail(s, kernel ? "EAGAIN" : "EINVAL");
  }
  const [iova, ...rest] = s.requests.get(q.uuid) ?? [];
  if (iova === undefined) return fail(s, "EAGAIN");
  const requests = rest.length > 0 ? setIn(s.requests, q.uuid, rest) : deleteIn(s.requests, q.uuid);
  const pasid = q.life.state === "started" ? q.life.pasid : 0;
  const dma = pasid !== 0 && isSvaFunction(parent)
    ? pasidDma(s.sva, parent, pasid, iova)
    : stepIommu(s.iommu, { op: "iommu.dma", group: parent, iova });
  const notified = stepSdmdev(sdmdevWorld(s), { op: "sdmdev.notify", parent, qn }).state;
  const done: StackCompletion = { iova, status: "ok" in dma.ret ? 0 : 1 };
  const completions = setIn(s.completions, q.uuid, [...(s.completions.get(q.uuid) ?? []), done]);
  const events: readonly Event[] = dma.events;
  return {
    state: { ...s, sdmdev: notified.sdmdev, requests, completions },
    ret: "ok" in dma.ret ? ok(0) : dma.ret,
    events,
  };
}

/**
 * A device read tagged with `pasid`: the page of that PASID's mm, or EFAULT with an `iopf`
 * event (the I/O page fault the IOMMU reports, which the fault handler cannot resolve).
 */
function pasidDma(
  sva: SvaState,
  device: number,
  pasid: number,
  vaddr: number,
): { ret: Ret; events: readonly Event[] } {
  const hit = walkPasid(sva, device, pasid, vaddr);
  if (hit) return { ret: ok(hit), events: [] };
  return { ret: { err: "EFAULT" }, events: [{ fault: "iopf", group: device, pasid, vaddr }] };
}

function recv(s: StackState, uuid: string, by: number): StepResult<StackState> {
  const refused = userRingsRefused(s, uuid, by);
  if (refused) return fail(s, refused);
  const [first, ...rest] = s.completions.get(uuid) ?? [];
  if (first === undefined) return fail(s, "EAGAIN");
  const completions = rest.length > 0
    ? setIn(s.completions, uuid, rest)
    : deleteIn(s.completions, uuid);
  return { state: { ...s, completions }, ret: ok(first), events: [] };
}

/** Runs `cmds` in order from `s`: the last state and every event. */
function runAll(s: StackState, cmds: readonly StackCommand[]): [StackState, Event[]] {
  let state = s;
  const events: Event[] = [];
  for (const cmd of cmds) {
    const r = stepStack(state, cmd);
    state = r.state;
    events.push(...r.events);
  }
  return [state, events];
}

/**
 * `exit_mm` of process `by`: its mm loses its users (a bound mm loses its page table: the
 * device's reads tagged with its PASID fault from then on; its bonds, and so its PASID, stay)
 * and every mapping of its sdmdev files goes. EINVAL for no such process.
 */
function exitMm(s: StackState, by: number): StepResult<StackState> {
  if (isChild(s, by)) return { state: s, ret: ok(0), events: [] };
  if (!s.type1.containers.has(by)) return fail(s, "EINVAL");
  const munmaps: StackCommand[] = [];
  for (const q of s.sdmdev.queues.values()) {
    if (holderOf(q) !== by) continue;
    for (const m of mappingsOf(q)) {
      munmaps.push({ op: "sdmdev.munmap", uuid: q.uuid, by, map: m.id });
    }
  }
  const [state, events] = runAll({ ...s, sva: svaExitMm(s.sva, mmOf(s, by)) }, munmaps);
  return { state, ret: ok(0), events };
}

/**
 * `do_exit` of process `by`: {@link exitMm}, then `exit_files` drops its device fds and then
 * its group fds. While a child forked from it lives, its files stay open (the child holds
 * copies); else they close (each in group order; the last group leaving its container undoes
 * every DMA mapping and pin, and drops the container's SVA bonds). A forked child's exit is
 * {@link exitChild}. EINVAL for no such process.
 */
function exit(s: StackState, by: number): StepResult<StackState> {
  if (isChild(s, by)) return exitChild(s, by);
  const mm = exitMm(s, by);
  if (!("ok" in mm.ret) || childrenOf(mm.state, by).length > 0) return mm;
  const [state, events] = closeFiles(mm.state, by);
  return { state, ret: ok(0), events: [...mm.events, ...events] };
}

/** The last close of opener `by`'s files: its device fds, then its group fds, in group order. */
function closeFiles(s: StackState, by: number): [StackState, Event[]] {
  const held = [...s.type1.groupFds].filter(([, c]) => processOf(c) === by).map(([g]) => g);
  held.sort((a, b) => a - b);
  const closes: StackCommand[] = [];
  for (const group of held) {
    if (s.type1.deviceFds.has(group)) {
      closes.push({ op: "type1.closeDeviceFd", container: by, group });
    }
  }
  for (const group of held) closes.push({ op: "type1.closeGroup", container: by, group });
  return runAll(s, closes);
}

/** Whether `p` is a process forked in the stack (not one started at boot). */
function isChild(s: StackState, p: number): boolean {
  return s.type1.processes.get(p) != null;
}

/**
 * The process that opened the files `p` holds: `p` itself when started at boot, else the
 * boot process it descends from (fork copies the file table: every copy is of its files).
 */
function openerOf(s: StackState, p: number): number {
  let q = p;
  for (let up = s.type1.processes.get(q); up != null; up = s.type1.processes.get(q)) q = up;
  return q;
}

/** The forked processes alive that hold copies of `opener`'s files. */
function childrenOf(s: StackState, opener: number): number[] {
  return [...s.type1.processes.keys()].filter((p) => p !== opener && openerOf(s, p) === opener);
}

/**
 * `stack.fork`: process `by` forks `child` as `mm.fork` does (a copy-on-write image of its
 * memory, pages pinned for DMA copied for the child; its open files copied). The child gets
 * no mapping of an sdmdev file (VM_DONTCOPY | VM_WIPEONFORK). ENODEV for a process that does
 * not exist or has exited; EEXIST and EINVAL for the child id as `mm.fork`.
 */
function fork(s: StackState, by: number, child: number): StepResult<StackState> {
  if (!isChild(s, by) && s.sva.exited.includes(mmOf(s, by))) return fail(s, "ENODEV");
  const r = stepMm({ iommu: s.iommu, type1: s.type1 }, { op: "mm.fork", mm: by, child });
  return { ...r, state: { ...s, type1: r.state.type1 } };
}

/**
 * The exit of forked process `child`: it has no sdmdev mapping, so `exit_mm` changes nothing
 * here; its processes are handed to its parent, and its copies of the opener's files are
 * dropped, the last close of each when the opener has exited and no other child holds one.
 */
function exitChild(s: StackState, child: number): StepResult<StackState> {
  const parent = s.type1.processes.get(child)!;
  let processes = deleteIn(s.type1.processes, child);
  for (const [p, up] of processes) if (up === child) processes = setIn(processes, p, parent);
  const next = { ...s, type1: { ...s.type1, processes } };
  const opener = openerOf(next, parent);
  if (!s.sva.exited.includes(mmOf(s, opener)) || childrenOf(next, opener).length > 0) {
    return { state: next, ret: ok(0), events: [] };
  }
  const [state, events] = closeFiles(next, opener);
  return { state, ret: ok(0), events };
}

/** Executes one stack command. */
export function stepStack<C extends StackCommand>(
  s: StackState,
  cmd: C,
): TypedStepResult<StackState, ResultsOf<typeof stackResults>[C["op"]]>;
/** stepStack of any command, its success value untyped. */
export function stepStack(s: StackState, cmd: StackCommand): StepResult<StackState> {
  if (!Object.hasOwn(stackCommandSchema, cmd.op)) unknownOp(cmd);
  const r = stepComponents(s, cmd);
  return { ...r, state: followMdevGroups(r.state) };
}

/** One stack command on the slice it names (the IOMMU's mdev groups not yet followed). */
function stepComponents(s: StackState, cmd: StackCommand): StepResult<StackState> {
  if (cmd.op === "stack.exit") return exit(s, cmd.by);
  if (cmd.op === "stack.exitMm") return exitMm(s, cmd.by);
  if (cmd.op === "stack.fork") return fork(s, cmd.by, cmd.child);
  if (cmd.op === "stack.send") return send(s, cmd.uuid, cmd.by, cmd.iova);
  if (cmd.op === "stack.deviceStep") return deviceStep(s, cmd.parent, cmd.qn);
  if (cmd.op === "stack.recv") return recv(s, cmd.uuid, cmd.by);
  if (cmd.op === "sva.bind") return bindContainer(s, cmd.container);
  if (cmd.op === "sva.unbind") {
    const next = unbindContainer(s, cmd.container);
    return next ? { state: next, ret: ok(0), events: [] } : fail(s, "EINVAL");
  }
  if (cmd.op.startsWith("type1.")) return type1Step(s, cmd as Type1Command);
  if (cmd.op === "sdmdev.remove") {
    const d = s.mdev.devices.get(cmd.uuid);
    if (d && s.type1.groupFds.has(d.group)) return fail(s, "EBUSY");
  }
  if (cmd.op === "sdmdev.register") {
    const fn = STACK_FUNCTIONS.find((f) => f.parent === cmd.parent);
    if (!fn) return fail(s, "ENODEV");
    if (cmd.qpNum !== STACK_QP_NUM || cmd.sva !== fn.sva) return fail(s, "EINVAL");
  }
  if ((cmd.op === "sdmdev.tfmInit" || cmd.op === "sdmdev.tfmExit") && cmd.parent !== STACK_PARENT) {
    return fail(s, "ENODEV");
  }
  return sdmdevStep(s, cmd as SdmdevCommand);
}

/** Lifts a slice's invariant to the whole state. */
function lift<S>(inv: Invariant<S>, slice: (s: StackState) => S): Invariant<StackState> {
  return { name: inv.name, scope: inv.scope, check: (s) => inv.check(slice(s)) };
}

/**
 * The invariants: every slice's own, and those of the composition:
 * - `stack.mdev-groups` (always): every mdev's group is an mdev group of its parent in the
 *   IOMMU slice, and every other mdev group there is retained by a group file.
 * - `stack.rings-mapped` (always): every running queue's ring is a live kernel buffer in its
 *   parent's default domain, and every ring buffer belongs to a running queue.
 * - `stack.requests-running` (always): only running queues have requests or completions
 *   outstanding, at most `sqDepth - 1` of both together.
 * - `stack.nothing-without-a-file` (between ops): a process that holds no group file and no
 *   sdmdev file (one that never opened any, or exited) has no DMA mapping, no pinned page
 *   and no page mapped for it in any domain.
 * - `stack.opener-holds-fd` (always): an sdmdev's file is held by the process of the
 *   container that holds its group open (its opener: children forked from it hold copies).
 * - `stack.queue-pasid-bound` (always): a queue running with a PASID p runs on a
 *   PASID-capable function that has a bond with p's mm, and p's mm is its process's: every
 *   read it issues walks its own process's page table (no id reused while a queue context
 *   carries it).
 * - `stack.container-bonds` (always): a container's `sva.bind` holds a bond of its process's
 *   mm on each function it bound.
 */
export const stackInvariants: readonly Invariant<StackState>[] = [
  ...systemInvariants.map((i) => lift(i, (s): SystemState => ({ iommu: s.iommu, type1: s.type1 }))),
  ...sdmdevInvariants.map((i) => lift(i, sdmdevWorld)),
  {
    name: "stack.mdev-groups",
    scope: "always",
    check: (s) => {
      for (const id of retainedGroups(s)) {
        if (!s.type1.groupFds.has(id)) return `IOMMU group ${id} has no mdev and no group file`;
      }
      for (const [group, uuid] of s.mdev.groups) {
        const g = s.iommu.groups.get(group);
        const parent = s.mdev.devices.get(uuid)?.parent;
        if (g?.kind !== "mdev" || g.parent !== parent) {
          return `mdev ${uuid}: group ${group} is not an mdev group of ${parent}`;
        }
      }
      return undefined;
    },
  },
  {
    name: "stack.rings-mapped",
    scope: "always",
    check: (s) => {
      const running = new Set<number>();
      for (const q of s.sdmdev.queues.values()) {
        if (q.life.state !== "started") continue;
        running.add(q.life.ring);
        const b = s.iommu.buffers.get(s.rings.get(q.life.ring) ?? -1);
        if (!b || b.group !== q.parent || b.size < RING_SIZE) {
          return `sdmdev ${q.uuid}: ring ${q.life.ring} is not a kernel buffer of group ${q.parent}`;
        }
      }
      for (const ring of s.rings.keys()) {
        if (!running.has(ring)) return `ring ${ring} is allocated for no running queue`;
      }
      return undefined;
    },
  },
  {
    name: "stack.requests-running",
    scope: "always",
    check: (s) => {
      for (const uuid of new Set([...s.requests.keys(), ...s.completions.keys()])) {
        const q = s.sdmdev.queues.get(uuid);
        if (!q || !isRunning(q)) return `sdmdev ${uuid} has requests but does not run`;
        const n = (s.requests.get(uuid)?.length ?? 0) + (s.completions.get(uuid)?.length ?? 0);
        if (n > STACK_SQ_DEPTH - 1) return `sdmdev ${uuid} has ${n} requests outstanding`;
      }
      return undefined;
    },
  },
  {
    name: "stack.nothing-without-a-file",
    scope: "between-ops",
    check: (s) => {
      for (const c of s.type1.containers.values()) {
        const p = processOf(c.id);
        const files = [...s.type1.groupFds.values()].some((k) => processOf(k) === p) ||
          [...s.sdmdev.queues.values()].some((q) => holderOf(q) === p);
        if (files) continue;
        if (c.dmas.length > 0) return `process ${p} holds no file but maps ${c.dmas.length} DMAs`;
        for (const vaddr of s.type1.pins.get(c.mm)?.keys() ?? []) {
          return `process ${p} holds no file but pins its page at ${vaddr}`;
        }
        for (const d of s.iommu.domains.values()) {
          for (const [iova, t] of d.pages) {
            if (t.kind === "user" && t.mm === c.mm) {
              return `process ${p} holds no file but domain ${d.id} maps its page at ${iova}`;
            }
          }
        }
      }
      return undefined;
    },
  },
  ...svaInvariants.map((i) => lift(i, (s) => s.sva)),
  {
    name: "stack.queue-pasid-bound",
    scope: "always",
    check: (s) => {
      for (const q of s.sdmdev.queues.values()) {
        if (q.life.state !== "started" || q.life.pasid === 0) continue;
        const { pasid, by } = q.life;
        const owner = pasidOwner(s.sva, pasid);
        if (!isSvaFunction(q.parent)) return `sdmdev ${q.uuid}: PASID ${pasid} on ${q.parent}`;
        if (owner !== mmOf(s, by)) {
          return `sdmdev ${q.uuid} of process ${by} runs PASID ${pasid} of mm ${owner ?? "none"}`;
        }
        if (!s.sva.mms.get(owner)?.bonds.has(q.parent)) {
          return `sdmdev ${q.uuid}: function ${q.parent} has no bond with mm ${owner}`;
        }
      }
      return undefined;
    },
  },
  {
    name: "stack.container-bonds",
    scope: "always",
    check: (s) => {
      for (const [container, devices] of s.svaBinds) {
        const mm = mmOf(s, container);
        for (const d of devices) {
          if (!s.sva.mms.get(mm)?.bonds.has(d)) {
            return `container ${container} bound function ${d} but mm ${mm} has no bond there`;
          }
        }
      }
      return undefined;
    },
  },
  {
    name: "stack.opener-holds-fd",
    scope: "always",
    check: (s) => {
      for (const q of s.sdmdev.queues.values()) {
        const holder = holderOf(q);
        if (holder === null || q.life.state === "closed" || !q.life.fd) continue;
        const group = s.mdev.devices.get(q.uuid)?.group ?? -1;
        const container = s.type1.groupFds.get(group);
        if (container === undefined || processOf(container) !== holder) {
          return `sdmdev ${q.uuid}: open by process ${holder}, group ${group} held by ${container}`;
        }
      }
      return undefined;
    },
  },
];

/** The invariants broken in `s` (of `scope` only, if given). */
export function stackViolations(s: StackState, scope?: "always"): string[] {
  return checkInvariants(stackInvariants, s, scope);
}

/** The composed stack as one record. */
export const stackSpec: MachineSpec<StackState, StackCommand> = {
  component: "stack",
  initial: initialStackState,
  step: stepStack,
  invariants: stackInvariants,
  schema: stackCommandSchema,
  results: stackResults,
};
