/**
 * IOMMU groups and domains, with the domain sharing that sdmdev adds
 * (RFCv2 2/7, drivers/iommu/iommu.c: iommu_group_share_domain / iommu_group_unshare_domain,
 * __iommu_attach_group, __iommu_detach_group), and the kernel DMA-API allocations that live in
 * a device's default domain.
 *
 * Abstractions: a domain's page table is a sorted list of page-aligned ranges; what a range
 * points at is a {@link Target} (a process page or a kernel buffer), not a physical frame.
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import {
  type CommandSchema,
  type Event,
  fail,
  ok,
  PAGE_SIZE,
  type ResultsOf,
  type ResultTable,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

/** What one IOMMU page leads to: a page of process memory (`mm`) or of a kernel DMA buffer. */
export type Target =
  | { readonly kind: "user"; readonly mm: number; readonly vaddr: number }
  | { readonly kind: "kernel"; readonly buffer: number; readonly offset: number };

/** An iommu_domain: an address space the IOMMU translates through. */
export interface Domain {
  /** Domain id (default domains use their group's id). */
  readonly id: number;
  /** The page table: page-aligned IOVA to the page it maps. */
  readonly pages: ReadonlyMap<number, Target>;
}

/** An iommu_group: the unit of isolation and ownership. */
export interface Group {
  /** Group id. */
  readonly id: number;
  /** `pci` groups sit behind the IOMMU; `mdev` groups are virtual, their DMA is the parent's. */
  readonly kind: "pci" | "mdev";
  /**
   * For an sdmdev group, the group of its parent device, whose domain it shares; null for a
   * pci group and for a vendor mdev (no IOMMU behind it: it pins pages through type1).
   */
  readonly parent: number | null;
  /** The kernel driver's DMA-API domain (null for mdev groups, which have none). */
  readonly defaultDomain: number | null;
  /** The domain the group is attached to now. */
  readonly domain: number | null;
  /**
   * Who shares the current domain and how many times (owner id to count, no zero entries).
   * The seed's domain_shared_ref is the sum ({@link sharedRef}); while it is > 0 the domain
   * cannot change. Owners make an unmatched unshare detectable, as the later upstream
   * `iommu_group_claim_dma_owner(group, owner)` does with its owner cookie.
   */
  readonly shares: ReadonlyMap<number, number>;
}

/** A kernel DMA-API allocation (dma_alloc_coherent) in a group's default domain. */
export interface KernelBuffer {
  /** Buffer id, unique for the life of the system. */
  readonly id: number;
  /** The group whose default domain holds it. */
  readonly group: number;
  /** First IOVA. */
  readonly iova: number;
  /** Length in bytes. */
  readonly size: number;
}

/** The IOMMU part of the system state. */
export interface IommuState {
  /** Every group, by id. */
  readonly groups: ReadonlyMap<number, Group>;
  /** Every live domain, by id. */
  readonly domains: ReadonlyMap<number, Domain>;
  /** Live kernel DMA buffers, by id. */
  readonly buffers: ReadonlyMap<number, KernelBuffer>;
}

/** Commands of the IOMMU component. */
export type IommuCommand =
  | { readonly op: "iommu.share"; readonly group: number; readonly owner: number }
  | { readonly op: "iommu.unshare"; readonly group: number; readonly owner: number }
  | { readonly op: "iommu.dmaAlloc"; readonly group: number; readonly pages: number }
  | { readonly op: "iommu.dmaFree"; readonly group: number; readonly iova: number }
  | { readonly op: "iommu.dma"; readonly group: number; readonly iova: number };

/** First IOVA the kernel's DMA-API allocator hands out (page 0 is never used). */
export const KERNEL_IOVA_BASE: number = PAGE_SIZE;

/** domain_shared_ref: how many shares of `group`'s domain are outstanding. */
export function sharedRef(group: Group): number {
  let n = 0;
  for (const c of group.shares.values()) n += c;
  return n;
}

/** Whether `x` is a non-negative multiple of the page size. */
export function pageAligned(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0 && x % PAGE_SIZE === 0;
}

/** The target `offset` bytes past `first` (targets are linear within one mapping call). */
export function advance(first: Target, offset: number): Target {
  return first.kind === "user"
    ? { ...first, vaddr: first.vaddr + offset }
    : { ...first, offset: first.offset + offset };
}

/** Returns `map` with `key` set to `value` (copy on write). */
export function setIn<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  const copy = new Map(map);
  copy.set(key, value);
  return copy;
}

/** Returns `map` without `key` (copy on write). */
export function deleteIn<K, V>(map: ReadonlyMap<K, V>, key: K): ReadonlyMap<K, V> {
  const copy = new Map(map);
  copy.delete(key);
  return copy;
}

function withGroup(state: IommuState, group: Group): IommuState {
  return { ...state, groups: setIn(state.groups, group.id, group) };
}

function withDomain(state: IommuState, domain: Domain): IommuState {
  return { ...state, domains: setIn(state.domains, domain.id, domain) };
}

/**
 * iommu_map of `[iova, iova + size)` onto `first` and the pages after it. Fails with EEXIST
 * when any page of the range is already mapped (io-pgtable refuses to overwrite a live entry).
 */
export function mapRange(
  state: IommuState,
  domainId: number,
  iova: number,
  size: number,
  first: Target,
): IommuState | "EEXIST" {
  const domain = state.domains.get(domainId)!;
  for (let off = 0; off < size; off += PAGE_SIZE) {
    if (domain.pages.has(iova + off)) return "EEXIST";
  }
  const pages = new Map(domain.pages);
  for (let off = 0; off < size; off += PAGE_SIZE) pages.set(iova + off, advance(first, off));
  return withDomain(state, { ...domain, pages });
}

/** iommu_unmap of `[iova, iova + size)`: removes whatever pages of the range are mapped. */
export function unmapRange(
  state: IommuState,
  domainId: number,
  iova: number,
  size: number,
): IommuState {
  const domain = state.domains.get(domainId)!;
  const pages = new Map(domain.pages);
  for (let off = 0; off < size; off += PAGE_SIZE) pages.delete(iova + off);
  return pages.size === domain.pages.size ? state : withDomain(state, { ...domain, pages });
}

/** The lowest id at or above `first` that `used` does not hold (how an IDR allocates). */
export function lowestFreeId(used: ReadonlyMap<number, unknown>, first: number): number {
  let id = first;
  while (used.has(id)) id++;
  return id;
}

/** Id of the first domain allocated at run time (default domains use their group's id). */
export const FIRST_DYNAMIC_DOMAIN: number = 100;

/** iommu_domain_alloc: a new, empty domain with the lowest free dynamic id. */
export function allocDomain(state: IommuState): [IommuState, number] {
  const id = lowestFreeId(state.domains, FIRST_DYNAMIC_DOMAIN);
  return [withDomain(state, { id, pages: new Map() }), id];
}

/** iommu_domain_free. */
export function freeDomain(state: IommuState, domainId: number): IommuState {
  return { ...state, domains: deleteIn(state.domains, domainId) };
}

/**
 * iommu_attach_group: moves a group from its default domain to `domainId`.
 * EBUSY while the group is not in its default domain or while its domain is shared.
 */
export function attachGroup(
  state: IommuState,
  groupId: number,
  domainId: number,
): IommuState | "EBUSY" {
  const group = state.groups.get(groupId)!;
  if (group.domain !== group.defaultDomain || sharedRef(group) > 0) return "EBUSY";
  return withGroup(state, { ...group, domain: domainId });
}

/** iommu_detach_group: returns a group to its default domain. */
export function detachGroup(state: IommuState, groupId: number): IommuState {
  const group = state.groups.get(groupId)!;
  return withGroup(state, { ...group, domain: group.defaultDomain });
}

/**
 * iommu_group_share_domain: EINVAL unless the group is in its default domain; otherwise
 * `owner` holds one more share of that domain, which is returned.
 */
export function shareDomain(
  state: IommuState,
  groupId: number,
  owner: number,
): [IommuState, number] | "EINVAL" {
  const group = state.groups.get(groupId)!;
  if (group.defaultDomain === null || group.domain !== group.defaultDomain) return "EINVAL";
  const shares = setIn(group.shares, owner, (group.shares.get(owner) ?? 0) + 1);
  return [withGroup(state, { ...group, shares }), group.domain];
}

/**
 * iommu_group_unshare_domain: `owner` gives back one share. Intended behaviour refuses an
 * unshare without a matching share of that owner (EINVAL) instead of letting a count go
 * negative or releasing somebody else's share.
 */
export function unshareDomain(
  state: IommuState,
  groupId: number,
  owner: number,
): [IommuState, number] | "EINVAL" {
  const group = state.groups.get(groupId)!;
  const held = group.shares.get(owner) ?? 0;
  if (held <= 0 || group.domain === null) return "EINVAL";
  const shares = held === 1 ? deleteIn(group.shares, owner) : setIn(group.shares, owner, held - 1);
  return [withGroup(state, { ...group, shares }), group.domain];
}

/** The domain a DMA issued for `groupId` is translated through (an mdev DMAs as its parent). */
export function dmaDomain(state: IommuState, groupId: number): number | null {
  const group = state.groups.get(groupId)!;
  return group.parent === null ? group.domain : state.groups.get(group.parent)!.domain;
}

/** Translates one IOVA of a domain into what it reaches, or undefined for an IOMMU fault. */
export function translate(state: IommuState, domainId: number, iova: number): Target | undefined {
  const within = iova % PAGE_SIZE;
  const page = state.domains.get(domainId)?.pages.get(iova - within);
  return page && advance(page, within);
}

/**
 * The kernel DMA-API allocator: first fit from {@link KERNEL_IOVA_BASE} among IOVAs not used by
 * other kernel buffers of the group. It does not know about user mappings placed in the same
 * domain by sdmdev, so when its choice collides with one the allocation fails (ENOMEM) with an
 * `iova-collision` warning: the hazard of sharing the kernel's domain with user IOVAs.
 */
function dmaAlloc(
  state: IommuState,
  groupId: number,
  pages: number,
): StepResult<IommuState> {
  const group = state.groups.get(groupId)!;
  if (group.defaultDomain === null || !Number.isSafeInteger(pages) || pages <= 0) {
    return fail(state, "EINVAL");
  }
  const size = pages * PAGE_SIZE;
  const taken = [...state.buffers.values()]
    .filter((b) => b.group === groupId)
    .sort((a, b) => a.iova - b.iova);
  let iova = KERNEL_IOVA_BASE;
  for (const b of taken) {
    if (iova + size <= b.iova) break;
    iova = Math.max(iova, b.iova + b.size);
  }
  const id = lowestFreeId(state.buffers, 1);
  const mapped = mapRange(state, group.defaultDomain, iova, size, {
    kind: "kernel",
    buffer: id,
    offset: 0,
  });
  if (mapped === "EEXIST") {
    const events: Event[] = [{ warn: "iova-collision", group: groupId, iova }];
    return fail(state, "ENOMEM", events);
  }
  const buffers = setIn(mapped.buffers, id, { id, group: groupId, iova, size });
  return {
    state: { ...mapped, buffers },
    ret: ok({ iova, buffer: id }),
    events: [],
  };
}

function dmaFree(state: IommuState, groupId: number, iova: number): StepResult<IommuState> {
  const buffer = [...state.buffers.values()].find((b) => b.group === groupId && b.iova === iova);
  if (!buffer) return fail(state, "EINVAL");
  const group = state.groups.get(groupId)!;
  const unmapped = unmapRange(state, group.defaultDomain!, iova, buffer.size);
  return {
    state: { ...unmapped, buffers: deleteIn(unmapped.buffers, buffer.id) },
    ret: ok(0),
    events: [],
  };
}

function dma(state: IommuState, groupId: number, iova: number): StepResult<IommuState> {
  const domainId = dmaDomain(state, groupId);
  const hit = domainId === null ? undefined : translate(state, domainId, iova);
  if (hit) return { state, ret: ok(hit), events: [] };
  return fail(state, "EFAULT", [{ fault: "iommu", group: groupId, iova }]);
}

/** Executes one IOMMU command. Unknown groups fail with ENODEV. */
export function stepIommu<C extends IommuCommand>(
  state: IommuState,
  cmd: C,
): TypedStepResult<IommuState, ResultsOf<typeof iommuResults>[C["op"]]>;
/** stepIommu of any command, its success value untyped. */
export function stepIommu(state: IommuState, cmd: IommuCommand): StepResult<IommuState> {
  if (!Object.hasOwn(iommuCommandSchema, cmd.op)) unknownOp(cmd);
  if (!state.groups.has(cmd.group)) return fail(state, "ENODEV");
  return match(cmd)
    .with({ op: "iommu.share" }, (c): StepResult<IommuState> => {
      const r = shareDomain(state, c.group, c.owner);
      return r === "EINVAL" ? fail(state, r) : { state: r[0], ret: ok(r[1]), events: [] };
    })
    .with({ op: "iommu.unshare" }, (c): StepResult<IommuState> => {
      const r = unshareDomain(state, c.group, c.owner);
      return r === "EINVAL" ? fail(state, r) : { state: r[0], ret: ok(r[1]), events: [] };
    })
    .with({ op: "iommu.dmaAlloc" }, (c) => dmaAlloc(state, c.group, c.pages))
    .with({ op: "iommu.dmaFree" }, (c) => dmaFree(state, c.group, c.iova))
    .with({ op: "iommu.dma" }, (c) => dma(state, c.group, c.iova))
    .exhaustive(unknownOp);
}

/** Every IOMMU op and its argument fields (public API: validates traces, generates commands). */
export const iommuCommandSchema: CommandSchema<IommuCommand["op"]> = {
  "iommu.share": { group: "int", owner: "int" },
  "iommu.unshare": { group: "int", owner: "int" },
  "iommu.dmaAlloc": { group: "int", pages: "int" },
  "iommu.dmaFree": { group: "int", iova: "int" },
  "iommu.dma": { group: "int", iova: "int" },
};

/** The shape of every IOMMU op's success value ({@link ResultKind}; README op table). */
export const iommuResults = {
  "iommu.share": "int",
  "iommu.unshare": "int",
  "iommu.dmaAlloc": { record: { iova: "int", buffer: "int" } },
  "iommu.dmaFree": "zero",
  "iommu.dma": {
    oneOf: [
      { record: { kind: { const: "user" }, mm: "int", vaddr: "int" } },
      { record: { kind: { const: "kernel" }, buffer: "int", offset: "int" } },
    ],
  },
} as const satisfies ResultTable<IommuCommand["op"]>;
