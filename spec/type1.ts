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
  /** vfio_domains, in creation order. */
  readonly domains: readonly VfioDomain[];
  /** The dma_list, sorted by IOVA, never overlapping. */
  readonly dmas: readonly Dma[];
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
   * Pin count of each page of process memory: address space (mm id) to page address (vaddr)
   * to count; a page absent is unpinned, an mm absent has no page pinned.
   */
  readonly pins: ReadonlyMap<number, ReadonlyMap<number, number>>;
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

function adjustPins(type1: Type1State, mm: number, dma: Dma, delta: 1 | -1): Type1State {
  const pages = new Map(type1.pins.get(mm));
  for (let va = dma.vaddr; va < dma.vaddr + dma.size; va += PAGE_SIZE) {
    const n = (pages.get(va) ?? 0) + delta;
    if (n === 0) pages.delete(va);
    else pages.set(va, n);
  }
  const pins = pages.size > 0 ? setIn(type1.pins, mm, pages) : deleteIn(type1.pins, mm);
  return { ...type1, pins };
}

/** Maps every dma of `container` into `domain` (vfio_iommu_replay); EEXIST undoes it all. */
function replay(
  iommu: IommuState,
  container: Container,
  domain: number,
): IommuState | "EEXIST" {
  let state = iommu;
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
  const replayed = replay(iommu, container, domain);
  if (replayed === "EEXIST") return "EEXIST";
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
  const replayed = replay(attached, container, domain) as IommuState;
  const vd: VfioDomain = { domain, groups: [groupId], sharedParent: null };
  return withContainer({ ...world, iommu: replayed }, {
    ...container,
    domains: [...container.domains, vd],
  });
}

/** vfio_iommu_type1_attach_group. */
function attachToIommu(
  world: Type1World,
  container: Container,
  groupId: number,
): Type1World | Errno {
  const group = world.iommu.groups.get(groupId)!;
  return group.kind === "mdev"
    ? attachSdmdev(world, container, groupId, group.parent!)
    : attachPci(world, container, groupId);
}

/** vfio_iommu_type1_detach_group, with the sdmdev order: undo the mappings, then unshare. */
function detachFromIommu(world: Type1World, container: Container, groupId: number): Type1World {
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
    for (const d of dmas) type1 = adjustPins(type1, container.mm, d, -1);
    dmas = [];
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
  let iommu = world.iommu;
  const target = { kind: "user", mm: container.mm, vaddr } as const;
  for (const vd of container.domains) {
    const next = mapRange(iommu, vd.domain, iova, size, target);
    if (next === "EEXIST") return fail(world, "EEXIST");
    iommu = next;
  }
  const dma: Dma = { iova, size, vaddr };
  const dmas = [...container.dmas, dma].sort((a, b) => a.iova - b.iova);
  const type1 = adjustPins(world.type1, container.mm, dma, 1);
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
  let iommu = world.iommu;
  let type1 = world.type1;
  for (const d of gone) {
    for (const vd of container.domains) iommu = unmapRange(iommu, vd.domain, d.iova, d.size);
    type1 = adjustPins(type1, container.mm, d, -1);
  }
  const dmas = container.dmas.filter((d) => !gone.includes(d));
  const bytes = gone.reduce((n, d) => n + d.size, 0);
  return {
    state: withContainer({ iommu, type1 }, { ...container, dmas }),
    ret: ok(bytes),
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
};

/** The shape of every type1 op's success value: 0, except `unmap`'s bytes unmapped. */
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
} as const satisfies ResultTable<Type1Command["op"]>;
