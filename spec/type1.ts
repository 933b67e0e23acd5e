/**
 * VFIO containers and the type1 IOMMU backend with sdmdev support (RFCv2 3/7,
 * drivers/vfio/vfio_iommu_type1.c and drivers/vfio/vfio.c).
 *
 * Intended behaviour, as the seed's reviewers and later upstream code settled it:
 * - attaching an sdmdev group shares the parent group's default domain, replays every
 *   container mapping into it, takes no MSI cookie and is never merged with other domains;
 * - only one vfio_domain at a time may share a given parent's domain. Without PASIDs every
 *   sdmdev of a parent lands in the same iommu_domain, so a second sharer (a second sdmdev of
 *   the same parent, in this container or another process's) is refused with EBUSY: "without
 *   PASID support only one process may use the accelerator";
 * - detaching an sdmdev group quiesces its queue, removes every container mapping from the
 *   shared domain, and only then unshares; the shared domain is never freed by vfio;
 * - a group fd opens once; SET_CONTAINER is an ioctl on it, so it needs the caller's open group
 *   fd; GET_DEVICE_FD needs the group set into this container with the IOMMU set, and each
 *   device opens once; UNSET_CONTAINER (and closing the group fd) is EBUSY while the device fd
 *   is open;
 * - UNMAP_DMA follows the type1v2 rule: a range that bisects a mapping is EINVAL, mappings
 *   wholly inside the range are removed, and the number of bytes removed is returned.
 *
 * Pinning for mediated devices of vendor drivers (mdev v7, seed 004, as upstream settled it):
 * - a vendor mdev group (no IOMMU behind it, no parent to share) attaches through the
 *   container's local domain, which exists exactly while such a group is attached;
 * - MAP_DMA pins and maps its pages only while the container has an IOMMU-backed domain;
 *   otherwise it only records the mapping. When the first IOMMU-backed domain joins, the
 *   replay pins the recorded pages; when the last one leaves while the local domain stays,
 *   the mappings stay recorded and MAP_DMA's pins are dropped;
 * - `type1.pin` (vfio_pin_pages of the vendor driver): 1 to 512 pages from a page-aligned
 *   IOVA, through a group attached to the local domain; all or nothing: every page inside a
 *   live mapping (EINVAL) and the new pages within RLIMIT_MEMLOCK (ENOMEM). `type1.unpin`
 *   undoes pins one for one: a page not pinned through the local domain is EINVAL;
 * - `locked_vm` counts every distinct pinned page of a process once, whichever path pinned
 *   it and however often: the v7 cover letter's open TODO (re-accounting when the IOMMU-backed
 *   domains go) resolved by counting pages, not pin calls;
 * - UNMAP_DMA of a range a vendor pinned notifies the vendor, which unpins first (the later
 *   invalidation notifier): no pin outlives its mapping. The last detach of the local domain
 *   drops its pins; after the last detach of all, nothing is pinned or accounted.
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import {
  allocDomain,
  attachGroup,
  deleteIn,
  detachGroup,
  freeDomain,
  type IommuState,
  mapRange,
  pageAligned,
  setIn,
  shareDomain,
  sharedRef,
  unmapRange,
  unshareDomain,
} from "./iommu.ts";
import {
  type CommandSchema,
  type Errno,
  fail,
  ok,
  PAGE_SIZE,
  type ResultsOf,
  type ResultTable,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

/** A vfio_domain of a container: one iommu_domain and the groups attached through it. */
export interface VfioDomain {
  /** The iommu_domain id. */
  readonly domain: number;
  /** Attached groups, in attach order. */
  readonly groups: readonly number[];
  /** For an sdmdev domain, the parent group whose domain is shared; otherwise null. */
  readonly sharedParent: number | null;
}

/** A vfio_dma: one MAP_DMA of the container's process memory. */
export interface Dma {
  /** First IOVA. */
  readonly iova: number;
  /** Length in bytes. */
  readonly size: number;
  /** First virtual address of the process memory it maps. */
  readonly vaddr: number;
}

/** Most pages one `type1.pin` or `type1.unpin` takes (VFIO_PIN_PAGES_MAX_ENTRIES). */
export const PIN_PAGES_MAX = 512;

/** A VFIO container with its type1 IOMMU state. */
export interface Container {
  /** Container id. */
  readonly id: number;
  /** The address space (process) that opened the container; MAP_DMA pins its pages. */
  readonly mm: number;
  /** Whether VFIO_SET_IOMMU succeeded (the type1 backend is active). */
  readonly iommuSet: boolean;
  /** Groups set into the container (VFIO_GROUP_SET_CONTAINER), in order. */
  readonly groups: readonly number[];
  /** IOMMU-backed vfio_domains, in creation order. */
  readonly domains: readonly VfioDomain[];
  /**
   * Vendor mdev groups attached through the local domain, in attach order; the local domain
   * exists while this is not empty.
   */
  readonly localGroups: readonly number[];
  /** The dma_list, sorted by IOVA, never overlapping. */
  readonly dmas: readonly Dma[];
  /** Pages pinned through the local domain (vfio_pin_pages): IOVA to pin count, no zeros. */
  readonly vendorPins: ReadonlyMap<number, number>;
}

/** The type1 part of the system state. */
export interface Type1State {
  /** Containers by id. */
  readonly containers: ReadonlyMap<number, Container>;
  /** Open group fds: group to the container (process) that opened it; a group opens once. */
  readonly groupFds: ReadonlyMap<number, number>;
  /** Groups whose device fd (VFIO_GROUP_GET_DEVICE_FD) is open; one open per device. */
  readonly deviceFds: ReadonlySet<number>;
  /**
   * Pin count of each page of process memory, MAP_DMA's and vendors' together: address space
   * (mm id) to page address (vaddr) to count; a page absent is unpinned, an mm absent has no
   * page pinned.
   */
  readonly pins: ReadonlyMap<number, ReadonlyMap<number, number>>;
  /** Each process's locked_vm in pages: its distinct pinned pages (an mm absent: 0). */
  readonly lockedVm: ReadonlyMap<number, number>;
  /** RLIMIT_MEMLOCK of every process in pages; null: unlimited. */
  readonly memlockPages: number | null;
  /**
   * Every process (mm id) to the process it was forked from (`mm.fork`, spec/mm.ts); null
   * for the containers' openers, which the topology starts.
   */
  readonly processes: ReadonlyMap<number, number | null>;
}

/** The slice of system state the type1 component reads and writes. */
export interface Type1World {
  /** IOMMU groups and domains. */
  readonly iommu: IommuState;
  /** Containers and pins. */
  readonly type1: Type1State;
}

/** Commands of the VFIO container / type1 component. */
export type Type1Command =
  | { readonly op: "type1.openGroup"; readonly container: number; readonly group: number }
  | { readonly op: "type1.closeGroup"; readonly container: number; readonly group: number }
  | { readonly op: "type1.getDeviceFd"; readonly container: number; readonly group: number }
  | { readonly op: "type1.closeDeviceFd"; readonly container: number; readonly group: number }
  | { readonly op: "type1.attach"; readonly container: number; readonly group: number }
  | { readonly op: "type1.detach"; readonly container: number; readonly group: number }
  | { readonly op: "type1.setIommu"; readonly container: number }
  | {
    readonly op: "type1.map";
    readonly container: number;
    readonly iova: number;
    readonly size: number;
    readonly vaddr: number;
  }
  | {
    readonly op: "type1.unmap";
    readonly container: number;
    readonly iova: number;
    readonly size: number;
  }
  | {
    readonly op: "type1.pin";
    readonly container: number;
    readonly group: number;
    readonly iova: number;
    readonly pages: number;
  }
  | {
    readonly op: "type1.unpin";
    readonly container: number;
    readonly group: number;
    readonly iova: number;
    readonly pages: number;
  };

/** The owner id under which container `id`'s sdmdev attach shares its parent's domain. */
export function shareOwner(container: number): number {
  return 1000 + container;
}

/** How often the page at `vaddr` of address space `mm` is pinned (0: not pinned). */
export function pinCount(type1: Type1State, mm: number, vaddr: number): number {
  return type1.pins.get(mm)?.get(vaddr) ?? 0;
}

/** The container a group is set into, if any. */
export function containerOf(type1: Type1State, group: number): Container | undefined {
  for (const c of type1.containers.values()) if (c.groups.includes(group)) return c;
  return undefined;
}

function withContainer(world: Type1World, container: Container): Type1World {
  return {
    ...world,
    type1: { ...world.type1, containers: setIn(world.type1.containers, container.id, container) },
  };
}

/** The pages of process memory a dma maps. */
function dmaPages(dma: Dma): number[] {
  const out = [];
  for (let va = dma.vaddr; va < dma.vaddr + dma.size; va += PAGE_SIZE) out.push(va);
  return out;
}

/** Adds `delta` to the pin count of each page of `vaddrs` of `mm`; locked_vm follows. */
function adjustPins(
  type1: Type1State,
  mm: number,
  vaddrs: readonly number[],
  delta: 1 | -1,
): Type1State {
  const pages = new Map(type1.pins.get(mm));
  for (const va of vaddrs) {
    const n = (pages.get(va) ?? 0) + delta;
    if (n === 0) pages.delete(va);
    else pages.set(va, n);
  }
  const pins = pages.size > 0 ? setIn(type1.pins, mm, pages) : deleteIn(type1.pins, mm);
  const lockedVm = pages.size > 0
    ? setIn(type1.lockedVm, mm, pages.size)
    : deleteIn(type1.lockedVm, mm);
  return { ...type1, pins, lockedVm };
}

/** Whether pinning `vaddrs` of `mm` once more keeps its locked_vm within RLIMIT_MEMLOCK. */
function withinMemlock(type1: Type1State, mm: number, vaddrs: readonly number[]): boolean {
  if (type1.memlockPages === null) return true;
  const pinned = type1.pins.get(mm);
  const fresh = new Set(vaddrs.filter((va) => !pinned?.has(va))).size;
  return (type1.lockedVm.get(mm) ?? 0) + fresh <= type1.memlockPages;
}

/** The pages of every dma of `container`. */
function allDmaPages(container: Container): number[] {
  return container.dmas.flatMap(dmaPages);
}

/** The process page behind the IOVA `iova` of `container`, if a mapping covers it. */
function vaddrOf(container: Container, iova: number): number | undefined {
  const d = container.dmas.find((d) => d.iova <= iova && iova < d.iova + d.size);
  return d && d.vaddr + iova - d.iova;
}

/** Drops every vendor pin of `container` whose IOVA `keep` rejects; returns both states. */
function dropVendorPins(
  type1: Type1State,
  container: Container,
  keep: (iova: number) => boolean,
): [Type1State, Container] {
  const vaddrs: number[] = [];
  const vendorPins = new Map<number, number>();
  for (const [iova, n] of container.vendorPins) {
    if (keep(iova)) vendorPins.set(iova, n);
    else for (let i = 0; i < n; i++) vaddrs.push(vaddrOf(container, iova)!);
  }
  return [adjustPins(type1, container.mm, vaddrs, -1), { ...container, vendorPins }];
}

/**
 * Maps every dma of `container` into `domain` (vfio_iommu_replay); EEXIST undoes it all. Into
 * the container's first IOMMU-backed domain the replay pins the recorded pages first: ENOMEM
 * past RLIMIT_MEMLOCK, before anything is mapped (the pins themselves: {@link attachToIommu}).
 */
function replay(
  world: Type1World,
  container: Container,
  domain: number,
): IommuState | "EEXIST" | "ENOMEM" {
  const first = container.domains.length === 0;
  if (first && !withinMemlock(world.type1, container.mm, allDmaPages(container))) return "ENOMEM";
  let state = world.iommu;
  for (const d of container.dmas) {
    const next = mapRange(state, domain, d.iova, d.size, {
      kind: "user",
      mm: container.mm,
      vaddr: d.vaddr,
    });
    if (next === "EEXIST") return "EEXIST";
    state = next;
  }
  return state;
}

/** Attaches an sdmdev group: share the parent's domain, replay into it (vfio_iommu_type1_attach_sdgroup). */
function attachSdmdev(
  world: Type1World,
  container: Container,
  groupId: number,
  parent: number,
): Type1World | Errno {
  for (const c of world.type1.containers.values()) {
    if (c.domains.some((d) => d.sharedParent === parent)) return "EBUSY";
  }
  const shared = shareDomain(world.iommu, parent, shareOwner(container.id));
  if (shared === "EINVAL") return "EINVAL";
  const [iommu, domain] = shared;
  const replayed = replay({ ...world, iommu }, container, domain);
  if (typeof replayed === "string") return replayed;
  const vd: VfioDomain = { domain, groups: [groupId], sharedParent: parent };
  return withContainer({ ...world, iommu: replayed }, {
    ...container,
    domains: [...container.domains, vd],
  });
}

/** Attaches a group behind the IOMMU: join the container's own domain or make one. */
function attachPci(world: Type1World, container: Container, groupId: number): Type1World | Errno {
  const own = container.domains.findIndex((d) => d.sharedParent === null);
  if (own >= 0) {
    const vd = container.domains[own];
    const iommu = attachGroup(world.iommu, groupId, vd.domain);
    if (iommu === "EBUSY") return "EBUSY";
    const domains = container.domains.with(own, { ...vd, groups: [...vd.groups, groupId] });
    return withContainer({ ...world, iommu }, { ...container, domains });
  }
  const group = world.iommu.groups.get(groupId)!;
  if (group.domain !== group.defaultDomain || sharedRef(group) > 0) return "EBUSY";
  const [allocated, domain] = allocDomain(world.iommu);
  const attached = attachGroup(allocated, groupId, domain) as IommuState;
  const replayed = replay({ ...world, iommu: attached }, container, domain);
  if (typeof replayed === "string") return replayed;
  const vd: VfioDomain = { domain, groups: [groupId], sharedParent: null };
  return withContainer({ ...world, iommu: replayed }, {
    ...container,
    domains: [...container.domains, vd],
  });
}

/** Whether `groupId` is a vendor mdev: no IOMMU behind it and no parent to share. */
function isVendorGroup(world: Type1World, groupId: number): boolean {
  const group = world.iommu.groups.get(groupId)!;
  return group.kind === "mdev" && group.parent === null;
}

/**
 * vfio_iommu_type1_attach_group: a vendor mdev joins the local domain; the first IOMMU-backed
 * domain pins the container's recorded mappings.
 */
function attachToIommu(
  world: Type1World,
  container: Container,
  groupId: number,
): Type1World | Errno {
  if (isVendorGroup(world, groupId)) {
    return withContainer(world, { ...container, localGroups: [...container.localGroups, groupId] });
  }
  const group = world.iommu.groups.get(groupId)!;
  const r = group.kind === "mdev"
    ? attachSdmdev(world, container, groupId, group.parent!)
    : attachPci(world, container, groupId);
  if (typeof r === "string" || container.domains.length > 0) return r;
  return { ...r, type1: adjustPins(r.type1, container.mm, allDmaPages(container), 1) };
}

/** Detach of a vendor mdev; the last one takes the local domain and its pins with it. */
function detachLocal(world: Type1World, container: Container, groupId: number): Type1World {
  const localGroups = container.localGroups.filter((g) => g !== groupId);
  if (localGroups.length > 0) return withContainer(world, { ...container, localGroups });
  const [type1, rest] = dropVendorPins(world.type1, container, () => false);
  const dmas = container.domains.length > 0 ? container.dmas : [];
  return withContainer({ ...world, type1 }, { ...rest, localGroups, dmas });
}

/** vfio_iommu_type1_detach_group, with the sdmdev order: undo the mappings, then unshare. */
function detachFromIommu(world: Type1World, container: Container, groupId: number): Type1World {
  if (container.localGroups.includes(groupId)) return detachLocal(world, container, groupId);
  const index = container.domains.findIndex((d) => d.groups.includes(groupId));
  const vd = container.domains[index];
  let iommu = world.iommu;
  let domains: readonly VfioDomain[];
  if (vd.sharedParent !== null) {
    for (const d of container.dmas) iommu = unmapRange(iommu, vd.domain, d.iova, d.size);
    iommu =
      (unshareDomain(iommu, vd.sharedParent, shareOwner(container.id)) as [IommuState, number])[0];
    domains = container.domains.toSpliced(index, 1);
  } else {
    iommu = detachGroup(iommu, groupId);
    const groups = vd.groups.filter((g) => g !== groupId);
    if (groups.length > 0) {
      domains = container.domains.with(index, { ...vd, groups });
    } else {
      iommu = freeDomain(iommu, vd.domain);
      domains = container.domains.toSpliced(index, 1);
    }
  }
  let type1 = world.type1;
  let dmas = container.dmas;
  if (domains.length === 0) {
    // The mappings stay recorded for the local domain, unpinned; without one they go.
    type1 = adjustPins(type1, container.mm, allDmaPages(container), -1);
    if (container.localGroups.length === 0) dmas = [];
  }
  return withContainer({ iommu, type1 }, { ...container, domains, dmas });
}

function withFiles(world: Type1World, files: Partial<Type1State>): Type1World {
  return { ...world, type1: { ...world.type1, ...files } };
}

/** Opening `/dev/vfio/<group>`: once (EBUSY while anyone holds it open). */
function openGroup(
  world: Type1World,
  container: Container,
  groupId: number,
): StepResult<Type1World> {
  if (world.type1.groupFds.has(groupId)) return fail(world, "EBUSY");
  const groupFds = setIn(world.type1.groupFds, groupId, container.id);
  return { state: withFiles(world, { groupFds }), ret: ok(0), events: [] };
}

/**
 * Closing the group fd (vfio_group_fops_release): refused while its device fd is open; a group
 * still set into the container is unset first, as the kernel does on the last close.
 */
function closeGroup(
  world: Type1World,
  container: Container,
  groupId: number,
): StepResult<Type1World> {
  if (world.type1.groupFds.get(groupId) !== container.id) return fail(world, "EINVAL");
  if (world.type1.deviceFds.has(groupId)) return fail(world, "EBUSY");
  const unset = container.groups.includes(groupId)
    ? detach(world, container, groupId).state
    : world;
  const groupFds = new Map(unset.type1.groupFds);
  groupFds.delete(groupId);
  return { state: withFiles(unset, { groupFds }), ret: ok(0), events: [] };
}

/** VFIO_GROUP_GET_DEVICE_FD: the group set into this container, the IOMMU set, not yet open. */
function getDeviceFd(
  world: Type1World,
  container: Container,
  groupId: number,
): StepResult<Type1World> {
  if (world.type1.groupFds.get(groupId) !== container.id) return fail(world, "EINVAL");
  if (!container.groups.includes(groupId) || !container.iommuSet) return fail(world, "EINVAL");
  if (world.type1.deviceFds.has(groupId)) return fail(world, "EBUSY");
  const deviceFds = new Set(world.type1.deviceFds).add(groupId);
  return { state: withFiles(world, { deviceFds }), ret: ok(0), events: [] };
}

/** Closing the device fd. */
function closeDeviceFd(
  world: Type1World,
  container: Container,
  groupId: number,
): StepResult<Type1World> {
  if (world.type1.groupFds.get(groupId) !== container.id || !world.type1.deviceFds.has(groupId)) {
    return fail(world, "EINVAL");
  }
  const deviceFds = new Set(world.type1.deviceFds);
  deviceFds.delete(groupId);
  return { state: withFiles(world, { deviceFds }), ret: ok(0), events: [] };
}

function attach(world: Type1World, container: Container, groupId: number): StepResult<Type1World> {
  if (world.type1.groupFds.get(groupId) !== container.id) return fail(world, "EINVAL");
  if (containerOf(world.type1, groupId)) return fail(world, "EINVAL");
  let next = world;
  if (container.iommuSet) {
    const r = attachToIommu(world, container, groupId);
    if (typeof r === "string") return fail(world, r);
    next = r;
  }
  const current = next.type1.containers.get(container.id)!;
  return {
    state: withContainer(next, { ...current, groups: [...current.groups, groupId] }),
    ret: ok(0),
    events: [],
  };
}

function setIommu(world: Type1World, container: Container): StepResult<Type1World> {
  if (container.groups.length === 0 || container.iommuSet) return fail(world, "EINVAL");
  let next = withContainer(world, { ...container, iommuSet: true });
  for (const g of container.groups) {
    const r = attachToIommu(next, next.type1.containers.get(container.id)!, g);
    if (typeof r === "string") return fail(world, r);
    next = r;
  }
  return { state: next, ret: ok(0), events: [] };
}

function detach(world: Type1World, container: Container, groupId: number): StepResult<Type1World> {
  if (!container.groups.includes(groupId)) return fail(world, "EINVAL");
  if (world.type1.deviceFds.has(groupId)) return fail(world, "EBUSY");
  const next = container.iommuSet ? detachFromIommu(world, container, groupId) : world;
  const current = next.type1.containers.get(container.id)!;
  const groups = current.groups.filter((g) => g !== groupId);
  const iommuSet = current.iommuSet && groups.length > 0;
  return { state: withContainer(next, { ...current, groups, iommuSet }), ret: ok(0), events: [] };
}

function map(
  world: Type1World,
  container: Container,
  iova: number,
  size: number,
  vaddr: number,
): StepResult<Type1World> {
  if (!container.iommuSet) return fail(world, "EINVAL");
  if (!pageAligned(iova) || !pageAligned(vaddr) || !pageAligned(size) || size === 0) {
    return fail(world, "EINVAL");
  }
  if (!Number.isSafeInteger(iova + size) || !Number.isSafeInteger(vaddr + size)) {
    return fail(world, "EINVAL");
  }
  if (container.dmas.some((d) => d.iova < iova + size && iova < d.iova + d.size)) {
    return fail(world, "EEXIST");
  }
  const dma: Dma = { iova, size, vaddr };
  const backed = container.domains.length > 0;
  if (backed && !withinMemlock(world.type1, container.mm, dmaPages(dma))) {
    return fail(world, "ENOMEM");
  }
  let iommu = world.iommu;
  const target = { kind: "user", mm: container.mm, vaddr } as const;
  for (const vd of container.domains) {
    const next = mapRange(iommu, vd.domain, iova, size, target);
    if (next === "EEXIST") return fail(world, "EEXIST");
    iommu = next;
  }
  const dmas = [...container.dmas, dma].sort((a, b) => a.iova - b.iova);
  const type1 = backed ? adjustPins(world.type1, container.mm, dmaPages(dma), 1) : world.type1;
  return { state: withContainer({ iommu, type1 }, { ...container, dmas }), ret: ok(0), events: [] };
}

function unmap(
  world: Type1World,
  container: Container,
  iova: number,
  size: number,
): StepResult<Type1World> {
  if (!container.iommuSet) return fail(world, "EINVAL");
  if (!pageAligned(iova) || !pageAligned(size) || size === 0) return fail(world, "EINVAL");
  const end = iova + size;
  const bisects = (x: number) => container.dmas.some((d) => d.iova < x && x < d.iova + d.size);
  if (bisects(iova) || bisects(end)) return fail(world, "EINVAL");
  const gone = container.dmas.filter((d) => d.iova >= iova && d.iova + d.size <= end);
  // The vendor's invalidation handler unpins what it pinned in the range first.
  const inGone = (x: number) => gone.some((d) => d.iova <= x && x < d.iova + d.size);
  let [type1, rest] = dropVendorPins(world.type1, container, (x) => !inGone(x));
  let iommu = world.iommu;
  for (const d of gone) {
    for (const vd of container.domains) iommu = unmapRange(iommu, vd.domain, d.iova, d.size);
    if (container.domains.length > 0) type1 = adjustPins(type1, container.mm, dmaPages(d), -1);
  }
  const dmas = container.dmas.filter((d) => !gone.includes(d));
  const bytes = gone.reduce((n, d) => n + d.size, 0);
  return {
    state: withContainer({ iommu, type1 }, { ...rest, dmas }),
    ret: ok(bytes),
    events: [],
  };
}

/**
 * The IOVAs of a `type1.pin` or `type1.unpin` through `groupId`, or EINVAL: the group attached
 * to the container's local domain, 1 to {@link PIN_PAGES_MAX} pages, a page-aligned start.
 */
function pinIovas(
  container: Container,
  groupId: number,
  iova: number,
  pages: number,
): number[] | "EINVAL" {
  if (!container.localGroups.includes(groupId)) return "EINVAL";
  if (!Number.isSafeInteger(pages) || pages < 1 || pages > PIN_PAGES_MAX) return "EINVAL";
  if (!pageAligned(iova) || !Number.isSafeInteger(iova + pages * PAGE_SIZE)) return "EINVAL";
  return Array.from({ length: pages }, (_, i) => iova + i * PAGE_SIZE);
}

/**
 * `type1.pin` (vfio_pin_pages: every page inside a live mapping and within RLIMIT_MEMLOCK) and
 * `type1.unpin` (vfio_unpin_pages: every page pinned through the local domain); all or nothing.
 */
function pinOrUnpin(
  world: Type1World,
  container: Container,
  cmd: Extract<Type1Command, { op: "type1.pin" | "type1.unpin" }>,
): StepResult<Type1World> {
  const iovas = pinIovas(container, cmd.group, cmd.iova, cmd.pages);
  if (iovas === "EINVAL") return fail(world, iovas);
  // A vendor's pins lie inside mappings, so only a pin can find a page outside them.
  const vaddrs = iovas.map((x) => vaddrOf(container, x));
  const delta = cmd.op === "type1.pin" ? 1 : -1;
  if (delta === 1) {
    if (vaddrs.some((va) => va === undefined)) return fail(world, "EINVAL");
    if (!withinMemlock(world.type1, container.mm, vaddrs as number[])) {
      return fail(world, "ENOMEM");
    }
  } else if (iovas.some((x) => !container.vendorPins.has(x))) return fail(world, "EINVAL");
  const vendorPins = new Map(container.vendorPins);
  for (const x of iovas) {
    const n = (vendorPins.get(x) ?? 0) + delta;
    if (n === 0) vendorPins.delete(x);
    else vendorPins.set(x, n);
  }
  const type1 = adjustPins(world.type1, container.mm, vaddrs as number[], delta);
  return {
    state: withContainer({ ...world, type1 }, { ...container, vendorPins }),
    ret: ok(cmd.pages),
    events: [],
  };
}

/** Executes one type1 command. Unknown containers or groups fail with ENODEV. */
export function stepType1<C extends Type1Command>(
  world: Type1World,
  cmd: C,
): TypedStepResult<Type1World, ResultsOf<typeof type1Results>[C["op"]]>;
/** stepType1 of any command, its success value untyped. */
export function stepType1(world: Type1World, cmd: Type1Command): StepResult<Type1World> {
  if (!Object.hasOwn(type1CommandSchema, cmd.op)) unknownOp(cmd);
  const container = world.type1.containers.get(cmd.container);
  if (!container) return fail(world, "ENODEV");
  if ("group" in cmd && !world.iommu.groups.has(cmd.group)) return fail(world, "ENODEV");
  return match(cmd)
    .with({ op: "type1.openGroup" }, (c) => openGroup(world, container, c.group))
    .with({ op: "type1.closeGroup" }, (c) => closeGroup(world, container, c.group))
    .with({ op: "type1.getDeviceFd" }, (c) => getDeviceFd(world, container, c.group))
    .with({ op: "type1.closeDeviceFd" }, (c) => closeDeviceFd(world, container, c.group))
    .with({ op: "type1.attach" }, (c) => attach(world, container, c.group))
    .with({ op: "type1.detach" }, (c) => detach(world, container, c.group))
    .with({ op: "type1.setIommu" }, () => setIommu(world, container))
    .with({ op: "type1.map" }, (c) => map(world, container, c.iova, c.size, c.vaddr))
    .with({ op: "type1.unmap" }, (c) => unmap(world, container, c.iova, c.size))
    .with({ op: "type1.pin" }, { op: "type1.unpin" }, (c) => pinOrUnpin(world, container, c))
    .exhaustive(unknownOp);
}

/** Every type1 op and its argument fields (public API: validates traces, generates commands). */
export const type1CommandSchema: CommandSchema<Type1Command["op"]> = {
  "type1.openGroup": { container: "int", group: "int" },
  "type1.closeGroup": { container: "int", group: "int" },
  "type1.getDeviceFd": { container: "int", group: "int" },
  "type1.closeDeviceFd": { container: "int", group: "int" },
  "type1.attach": { container: "int", group: "int" },
  "type1.detach": { container: "int", group: "int" },
  "type1.setIommu": { container: "int" },
  "type1.map": { container: "int", iova: "int", size: "int", vaddr: "int" },
  "type1.unmap": { container: "int", iova: "int", size: "int" },
  "type1.pin": { container: "int", group: "int", iova: "int", pages: "int" },
  "type1.unpin": { container: "int", group: "int", iova: "int", pages: "int" },
};

/**
 * The shape of every type1 op's success value: 0, except `unmap`'s bytes unmapped and the
 * pages `pin` and `unpin` took.
 */
export const type1Results = {
  "type1.openGroup": "zero",
  "type1.closeGroup": "zero",
  "type1.getDeviceFd": "zero",
  "type1.closeDeviceFd": "zero",
  "type1.attach": "zero",
  "type1.detach": "zero",
  "type1.setIommu": "zero",
  "type1.map": "zero",
  "type1.unmap": "int",
  "type1.pin": "int",
  "type1.unpin": "int",
} as const satisfies ResultTable<Type1Command["op"]>;
