/**
 * The vfio type1 IOMMU backend of one container (drivers/vfio/vfio_iommu_type1.c with the
 * sdmdev changes of RFCv2 3/7 and the mdev pinning of mdev v7, seed 004): vfio_domains, the
 * local domain of vendor mdevs, the dma_list, pinning and locked_vm accounting, replay,
 * attach/detach of normal, sdmdev and vendor mdev groups, the invalidation of vendor pins.
 *
 * @module
 */
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import { loopGuard } from "../runaway.ts";
import type { Kernel } from "../kernel.ts";
import { lockAll, Mutex } from "../kernel.ts";
import { ERR_PTR_EINVAL, IommuCore, type IommuDomain, type IommuGroup } from "../iommu/core.ts";
import { PIN_PAGES_MAX, shareOwner } from "../../spec/type1.ts";
import type { AddressSpace } from "../mem/mm.ts";
import type { Frame } from "../mem/phys.ts";
import { PageCounts } from "../mem/page_counts.ts";

/** struct vfio_domain. */
export interface VfioDomain {
  /** The iommu_domain (ERR_PTR_EINVAL under the attachSdgroupReturnsOneOnShareFailure quirk). */
  readonly domain: IommuDomain;
  /** Attached groups. */
  groups: IommuGroup[];
  /** group->parent_group of an sdmdev: whose domain is shared. */
  readonly parentGroup: IommuGroup | null;
}

/** struct vfio_dma. */
export interface VfioDma {
  /** First IOVA. */
  readonly iova: number;
  /** Length in bytes. */
  readonly size: number;
  /** First user virtual address. */
  readonly vaddr: number;
}

/**
 * The local (external) domain of a container (mdev v7's `local_domain` with its
 * `local_addr_space`): the vendor mdev groups attached and the pages they pinned.
 */
export interface LocalDomain {
  /** Attached vendor mdev groups. */
  groups: IommuGroup[];
  /** The pfn_list: pin counts by IOVA. */
  readonly pins: PageCounts;
  /** Set when the last group left and the domain was freed (kfree). */
  freed: boolean;
}

/** A vendor driver's invalidation handler: unpin what you pinned in [iova, iova + size). */
export type InvalidateHandler = (iova: number, size: number) => Promise<void>;

/** Hooks a device driver gives type1 (the quiesce of an sdmdev queue before its unmapping). */
export interface DeviceHooks {
  /** Stops the device's use of `group` and waits for its in-flight DMA. */
  quiesce(group: IommuGroup): Promise<void>;
  /** Lets the device use `group` again (after the detach completed). */
  resume(group: IommuGroup): void;
}

/**
 * Parents whose default domain some vfio_domain currently shares, across all containers: the
 * "one sharer per parent" rule needs a global view.
 */
export type SharedParents = Set<IommuGroup>;

/** struct vfio_iommu. */
export class VfioIommu {
  /** IOMMU-backed vfio_domains. */
  readonly domains: VfioDomain[] = [];
  /** The local domain, while a vendor mdev group is attached. */
  localDomain: LocalDomain | null = null;
  /** Vendor drivers' invalidation handlers (the later VFIO_IOMMU_NOTIFY_DMA_UNMAP chain). */
  readonly notifiers: ReadonlySet<InvalidateHandler>;
  /** dma_list, kept sorted by IOVA. */
  dmas: VfioDma[] = [];
  /** iommu->lock. */
  readonly lock: Mutex = new Mutex();
  #k: Kernel;
  #core: IommuCore;
  #mm: AddressSpace;
  #hooks: DeviceHooks;
  #shared: SharedParents;
  #owner: number;

  /** The backend of container `id`, opened by process `mm`; `notifiers` are its container's. */
  constructor(
    id: number,
    kernel: Kernel,
    core: IommuCore,
    mm: AddressSpace,
    hooks: DeviceHooks,
    shared: SharedParents,
    notifiers: ReadonlySet<InvalidateHandler> = new Set(),
  ) {
    this.notifiers = notifiers;
    this.#k = kernel;
    this.#core = core;
    this.#mm = mm;
    this.#hooks = hooks;
    this.#shared = shared;
    this.#owner = shareOwner(id);
  }

  #frames(dma: VfioDma) {
    const frames = [];
    for (let off = 0; off < dma.size; off += PAGE_SIZE) frames.push(this.#mm.page(dma.vaddr + off));
    return frames;
  }

  /** The process pages of `dmas`. */
  static #pages(dmas: readonly VfioDma[]): number[] {
    const out = [];
    for (const d of dmas) for (let off = 0; off < d.size; off += PAGE_SIZE) out.push(d.vaddr + off);
    return out;
  }

  /** Whether pinning `vaddrs` once more keeps locked_vm within RLIMIT_MEMLOCK. */
  #fitsMemlock(vaddrs: readonly number[]): boolean {
    return this.#fitsMemlockFrames(vaddrs.map((va) => this.#mm.page(va)));
  }

  /** Pins the page at `vaddr`; its first pin is accounted in locked_vm. */
  #pinPage(vaddr: number): Frame {
    return this.#pinFrame(this.#mm.page(vaddr), true);
  }

  /** Unpins the page at `vaddr`; its last unpin leaves locked_vm (unless `account` is false). */
  #unpinPage(vaddr: number, account = true): void {
    this.#unpinFrame(this.#mm.page(vaddr), account);
  }

  /** Pins `frame` once more; with `account`, its first pin enters locked_vm. */
  #pinFrame(frame: Frame, account: boolean): Frame {
    if (++frame.pins === 1 && account) this.#mm.lockedVm++;
    return frame;
  }

  /** Unpins `frame` once; with `account`, its last unpin leaves locked_vm. */
  #unpinFrame(frame: Frame, account: boolean): void {
    if (--frame.pins === 0 && account) this.#mm.lockedVm--;
  }

  /**
   * vfio_iommu_replay: maps every dma into a new domain; on failure unmaps what it mapped
   * (quirk `replayPartialFailureLeaks`: returns at once, as the seed's replay does). Into the
   * first IOMMU-backed domain it pins the recorded pages first, ENOMEM before any map (quirk
   * `replayEmptyDomainList`: it looks the pages up through the first entry of the empty domain
   * list, a bogus domain, and maps them unpinned and unaccounted).
   */
  async #replay(domain: IommuDomain): Promise<Errno | undefined> {
    const pin = this.domains.length === 0 && this.dmas.length > 0;
    if (pin && this.#k.quirks.replayEmptyDomainList) {
      this.#k.emit({ fault: "list-head-as-entry", where: "vfio_iommu_replay" });
    } else if (pin) {
      const pages = VfioIommu.#pages(this.dmas);
      if (!this.#fitsMemlock(pages)) return "ENOMEM";
      for (const va of pages) this.#pinPage(va);
    }
    const unpin = () => {
      if (pin && !this.#k.quirks.replayEmptyDomainList) {
        for (const va of VfioIommu.#pages(this.dmas)) this.#unpinPage(va);
      }
    };
    for (let i = 0; i < this.dmas.length; i++) {
      const d = this.dmas[i];
      const r = this.#core.map(domain, d.iova, this.#frames(d));
      if (r !== undefined) {
        if (this.#k.quirks.replayPartialFailureLeaks) return r;
        for (const done of this.dmas.slice(0, i)) {
          await this.#core.unmap(domain, done.iova, done.size);
        }
        unpin();
        return r;
      }
    }
    return undefined;
  }

  /** vfio_iommu_type1_attach_sdgroup + the replay the caller does for it. */
  async #attachSdgroup(group: IommuGroup): Promise<Errno | undefined> {
    const parent = group.parent!;
    if (!this.#k.quirks.doubleSdmdevSameParent && this.#shared.has(parent)) return "EBUSY";
    let domain = await this.#core.share(parent, this.#owner);
    if (domain === "EINVAL") {
      if (!this.#k.quirks.attachSdgroupReturnsOneOnShareFailure) return "EINVAL";
      domain = ERR_PTR_EINVAL;
    }
    const r = await this.#replay(domain);
    if (r !== undefined) {
      await this.#core.unshare(parent, this.#owner);
      return r;
    }
    this.domains.push({ domain, groups: [group], parentGroup: parent });
    this.#shared.add(parent);
    return undefined;
  }

  /** Attach of a group behind the IOMMU: join the existing own domain or make one. */
  async #attachPci(group: IommuGroup): Promise<Errno | undefined> {
    const own = this.domains.find((d) => d.parentGroup === null);
    if (own) {
      const r = await this.#core.attachGroup(group, own.domain);
      if (r === undefined) own.groups.push(group);
      return r;
    }
    if (group.domain !== group.defaultDomain || IommuCore.sharedRef(group) > 0) return "EBUSY";
    const domain = this.#core.domainAlloc();
    const r = await this.#core.attachGroup(group, domain);
    if (r !== undefined) {
      this.#core.domainFree(domain);
      return r;
    }
    const replayed = await this.#replay(domain);
    if (replayed !== undefined) {
      await this.#core.detachGroup(group);
      this.#core.domainFree(domain);
      return replayed;
    }
    this.domains.push({ domain, groups: [group], parentGroup: null });
    return undefined;
  }

  /** Attach of a vendor mdev group: the local domain, made for the first one. */
  #attachLocal(group: IommuGroup): undefined {
    if (this.localDomain) this.localDomain.groups.push(group);
    else this.localDomain = { groups: [group], pins: new PageCounts(), freed: false };
    return undefined;
  }

  /** The group and its parent, whose mutexes an attach or detach holds throughout. */
  #groupLocks(group: IommuGroup): Promise<() => void> {
    const groups = group.parent ? [group, group.parent] : [group];
    return lockAll(this.#k.sched, "type1:group-locks", groups);
  }

  /** vfio_iommu_type1_attach_group. */
  async attachGroup(group: IommuGroup): Promise<Errno | undefined> {
    await this.lock.lock(this.#k.sched, "type1.attach:lock");
    const unlockGroups = await this.#groupLocks(group);
    try {
      if (group.kind === "mdev" && group.parent === null) return this.#attachLocal(group);
      return group.kind === "mdev"
        ? await this.#attachSdgroup(group)
        : await this.#attachPci(group);
    } finally {
      unlockGroups();
      this.lock.unlock();
    }
  }

  /** vfio_iommu_unmap_unpin_all: every dma out of every domain, every page unpinned. */
  async #unmapUnpinAll(): Promise<void> {
    for (const d of this.dmas) await this.#removeDma(d);
    this.dmas = [];
  }

  /**
   * The last IOMMU-backed domain goes: with a local domain left the mappings stay recorded
   * and MAP_DMA's pins go (unmapped from the going domain first); without one, all of it goes.
   */
  async #lastBackedDomainGoes(): Promise<void> {
    if (!this.localDomain) return await this.#unmapUnpinAll();
    for (const d of this.dmas) {
      for (const vd of this.domains) await this.#core.unmap(vd.domain, d.iova, d.size);
    }
    for (const va of VfioIommu.#pages(this.dmas)) this.#unpinPage(va);
  }

  /** vfio_remove_dma: unmap from every domain, then unpin (pinned only with a domain). */
  async #removeDma(d: VfioDma): Promise<void> {
    for (const vd of this.domains) await this.#core.unmap(vd.domain, d.iova, d.size);
    if (this.domains.length === 0) return;
    for (let off = 0; off < d.size; off += PAGE_SIZE) this.#unpinPage(d.vaddr + off);
  }

  /**
   * Detach of a vendor mdev group; the last one frees the local domain after unpinning all
   * its pages (vfio_local_unpin_all; quirk `unpinAllSkipsAccounting`: without accounting),
   * and with no IOMMU-backed domain the recorded mappings go too.
   */
  async #detachLocal(local: LocalDomain, group: IommuGroup): Promise<void> {
    local.groups = local.groups.filter((g) => g !== group);
    if (local.groups.length > 0) return;
    const account = !this.#k.quirks.unpinAllSkipsAccounting;
    for (const [iova, n] of local.pins.entries()) {
      const va = this.#vaddrOf(iova);
      for (let i = 0; i < n; i++) this.#unpinPage(va, account);
    }
    local.pins.clear();
    this.#stale.clear();
    if (this.domains.length === 0) await this.#unmapUnpinAll();
    local.freed = true;
    this.localDomain = null;
  }

  /**
   * The process page behind a pinned IOVA: through its mapping, or for a pin that outlived
   * its mapping (quirk `unmapLeavesStalePins`) the page its vfio_pfn kept.
   */
  #vaddrOf(iova: number): number {
    const stale = this.#stale.get(iova);
    if (stale !== undefined) return stale;
    const d = this.#dmaAt(iova);
    return d.vaddr + iova - d.iova;
  }

  /** The mapping that covers the pinned IOVA `iova` (a pin lies inside a mapping). */
  #dmaAt(iova: number): VfioDma {
    return this.dmas.find((d) => d.iova <= iova && iova < d.iova + d.size)!;
  }

  /** vfio_iommu_undo: removes every dma from one (shared) domain. */
  async #undo(domain: IommuDomain): Promise<void> {
    for (const d of this.dmas) await this.#core.unmap(domain, d.iova, d.size);
  }

  /** Detach of an sdmdev group: quiesce, unmap, unshare (the seed's order under a quirk). */
  async #detachSdgroup(vd: VfioDomain, group: IommuGroup): Promise<void> {
    const parent = vd.parentGroup!;
    const { sched, quirks } = this.#k;
    await this.#hooks.quiesce(group);
    if (quirks.unshareBeforeUndo) {
      await this.#core.unshare(parent, this.#owner);
      await sched.point("type1.detach:after-unshare");
    }
    if (this.domains.length === 1) await this.#lastBackedDomainGoes();
    if (!quirks.skipUndoOnDetach) await this.#undo(vd.domain);
    if (!quirks.unshareBeforeUndo) {
      await sched.point("type1.detach:before-unshare");
      await this.#core.unshare(parent, this.#owner);
    }
    this.domains.splice(this.domains.indexOf(vd), 1);
    if (!this.domains.some((d) => d.parentGroup === parent)) this.#shared.delete(parent);
    this.#hooks.resume(group);
  }

  /** vfio_iommu_type1_detach_group. */
  async detachGroup(group: IommuGroup): Promise<void> {
    await this.lock.lock(this.#k.sched, "type1.detach:lock");
    const unlockGroups = await this.#groupLocks(group);
    try {
      const local = this.localDomain;
      if (local?.groups.includes(group)) return await this.#detachLocal(local, group);
      const vd = this.domains.find((d) => d.groups.includes(group))!;
      if (vd.parentGroup !== null) return await this.#detachSdgroup(vd, group);
      await this.#core.detachGroup(group);
      vd.groups = vd.groups.filter((g) => g !== group);
      if (vd.groups.length > 0) return;
      if (this.domains.length === 1) await this.#lastBackedDomainGoes();
      this.#core.domainFree(vd.domain);
      this.domains.splice(this.domains.indexOf(vd), 1);
    } finally {
      unlockGroups();
      this.lock.unlock();
    }
  }

  /**
   * vfio_dma_do_map: pin (ENOMEM past RLIMIT_MEMLOCK), then map into every domain; any
   * failure undoes both. With no IOMMU-backed domain the mapping is only recorded.
   */
  async map(iova: number, size: number, vaddr: number): Promise<Errno | undefined> {
    await this.lock.lock(this.#k.sched, "type1.map:lock");
    try {
      if (this.dmas.some((d) => d.iova < iova + size && iova < d.iova + d.size)) return "EEXIST";
      const dma: VfioDma = { iova, size, vaddr };
      const pages = VfioIommu.#pages([dma]);
      if (this.domains.length > 0 && !this.#fitsMemlock(pages)) return "ENOMEM";
      const frames = this.domains.length > 0 ? pages.map((va) => this.#pinPage(va)) : [];
      await this.#k.sched.point("type1.map:after-pin");
      for (let i = 0; i < this.domains.length; i++) {
        const r = this.#core.map(this.domains[i].domain, iova, frames);
        if (r !== undefined) {
          for (const vd of this.domains.slice(0, i)) await this.#core.unmap(vd.domain, iova, size);
          for (const va of pages) this.#unpinPage(va);
          return r;
        }
      }
      this.dmas = [...this.dmas, dma].sort((a, b) => a.iova - b.iova);
      return undefined;
    } finally {
      this.lock.unlock();
    }
  }

  /** Vendor-pinned IOVAs inside `dmas`. */
  #pinnedIn(dmas: readonly VfioDma[]): number[] {
    const pins = this.localDomain?.pins;
    if (!pins || pins.size === 0) return [];
    const inside = (x: number) => dmas.some((d) => d.iova <= x && x < d.iova + d.size);
    return [...pins.entries()].map(([x]) => x).filter(inside);
  }

  /**
   * vfio_dma_do_unmap (type1v2): EINVAL on a bisected mapping; returns bytes unmapped. A
   * range a vendor pinned is first announced to the invalidation handlers, with the lock
   * dropped, until nothing in it is pinned (quirk `unmapLeavesStalePins`: mdev v7 has no such
   * notification; the pins stay, their mapping gone).
   */
  async unmap(iova: number, size: number): Promise<number | "EINVAL"> {
    const { sched, quirks } = this.#k;
    const guard = loopGuard("type1.unmap:invalidate");
    await this.lock.lock(sched, "type1.unmap:lock");
    let locked = true;
    try {
      const end = iova + size;
      const bisects = (x: number) => this.dmas.some((d) => d.iova < x && x < d.iova + d.size);
      for (;;) {
        if (bisects(iova) || bisects(end)) return "EINVAL";
        const gone = this.dmas.filter((d) => d.iova >= iova && d.iova + d.size <= end);
        const pinned = this.#pinnedIn(gone);
        if (pinned.length === 0 || quirks.unmapLeavesStalePins) {
          for (const x of pinned) this.#stale.set(x, this.#vaddrOf(x));
          this.dmas = this.dmas.filter((d) => !gone.includes(d));
          for (const d of gone) await this.#removeDma(d);
          return gone.reduce((n, d) => n + d.size, 0);
        }
        guard();
        this.lock.unlock();
        locked = false;
        for (const d of gone) for (const handler of this.notifiers) await handler(d.iova, d.size);
        await this.lock.lock(sched, "type1.unmap:relock");
        locked = true;
      }
    } finally {
      if (locked) this.lock.unlock();
    }
  }

  /** The page behind each pin that outlived its mapping (quirk `unmapLeavesStalePins`). */
  readonly #stale = new Map<number, number>();

  /**
   * vfio_find_dma of the page at `iova` (quirk `pinFindDmaSizeZero`: looked up with size 0,
   * which misses the first page of every mapping).
   */
  #findDma(iova: number): VfioDma | undefined {
    const size = this.#k.quirks.pinFindDmaSizeZero ? 0 : PAGE_SIZE;
    return this.dmas.find((d) => d.iova < iova + size && iova < d.iova + d.size);
  }

  /**
   * The frames behind `pages` pages from `iova`, looked up through the mappings with `find`
   * (one lookup per mapping the run crosses), or undefined if a page lies outside them all.
   */
  #framesOf(
    iova: number,
    pages: number,
    find: (iova: number) => VfioDma | undefined,
  ): Frame[] | undefined {
    const frames: Frame[] = [];
    const end = iova + pages * PAGE_SIZE;
    for (let x = iova; x < end;) {
      const d = find(x);
      if (!d) return undefined;
      const run = Math.min(end, d.iova + d.size) - x;
      const got = this.#mm.pages(d.vaddr + x - d.iova, run / PAGE_SIZE);
      if (x === iova && x + run === end) return got; // the common case: one mapping
      for (const f of got) frames.push(f);
      x += run;
    }
    return frames;
  }

  /**
   * vfio_iommu_type1_pin_pages: `pages` pages from `iova` for vendor mdev `group`; every page
   * inside a mapping (EINVAL) and the new ones within RLIMIT_MEMLOCK (ENOMEM), or none is
   * pinned. A page's first pin is accounted (quirk `pinAccountingAsymmetric`: every pin is
   * accounted when no IOMMU-backed domain exists, none otherwise, as v7's `do_accounting`).
   */
  async pinPages(group: IommuGroup, iova: number, pages: number): Promise<number | Errno> {
    await this.lock.lock(this.#k.sched, "type1.pin:lock");
    try {
      const local = this.localDomain;
      if (!local?.groups.includes(group)) return "EINVAL";
      if (!VfioIommu.#pinArgsValid(iova, pages)) return "EINVAL";
      const frames = this.#framesOf(iova, pages, (x) => this.#findDma(x));
      if (!frames) return "EINVAL";
      if (!this.#fitsMemlockFrames(frames)) return "ENOMEM";
      const asymmetric = this.#k.quirks.pinAccountingAsymmetric;
      const accounted = this.domains.length === 0;
      for (let i = 0; i < pages; i++) {
        this.#pinFrame(frames[i], !asymmetric);
        if (asymmetric && accounted) this.#mm.lockedVm++;
      }
      local.pins.addRun(iova, pages, 1);
      return pages;
    } finally {
      this.lock.unlock();
    }
  }

  /** Whether pinning `frames` once more keeps locked_vm within RLIMIT_MEMLOCK. */
  #fitsMemlockFrames(frames: readonly Frame[]): boolean {
    const limit = this.#mm.memlockPages;
    if (limit === null) return true;
    const fresh = new Set(frames.filter((f) => f.pins === 0)).size;
    return this.#mm.lockedVm + fresh <= limit;
  }

  /** 1 to PIN_PAGES_MAX pages from a page-aligned IOVA. */
  static #pinArgsValid(iova: number, pages: number): boolean {
    if (!Number.isSafeInteger(pages) || pages < 1 || pages > PIN_PAGES_MAX) return false;
    return iova % PAGE_SIZE === 0 && iova >= 0 && Number.isSafeInteger(iova + pages * PAGE_SIZE);
  }

  /**
   * vfio_iommu_type1_unpin_pages: each page pinned through the local domain, or nothing is
   * unpinned; a page's last unpin leaves locked_vm (quirk `pinAccountingAsymmetric`: every
   * unpin does). Quirk `unpinWithoutLock`: v7 takes no iommu->lock and uses `local_domain`
   * unchecked, so a detach that frees it meanwhile makes this a use after free.
   */
  async unpinPages(group: IommuGroup, iova: number, pages: number): Promise<number | Errno> {
    const { sched, quirks } = this.#k;
    if (quirks.unpinWithoutLock) {
      const local = this.localDomain;
      await sched.point("type1.unpin:unlocked");
      if (local === null || local.freed) {
        this.#k.emit({ fault: "use-after-free", what: "local_domain" });
        return "EINVAL";
      }
      return this.#unpin(local, group, iova, pages);
    }
    await this.lock.lock(sched, "type1.unpin:lock");
    try {
      const local = this.localDomain;
      if (!local) return "EINVAL";
      return this.#unpin(local, group, iova, pages);
    } finally {
      this.lock.unlock();
    }
  }

  #unpin(local: LocalDomain, group: IommuGroup, iova: number, pages: number): number | Errno {
    if (!local.groups.includes(group)) return "EINVAL";
    if (!VfioIommu.#pinArgsValid(iova, pages)) return "EINVAL";
    if (!local.pins.allCounted(iova, pages)) return "EINVAL";
    const asymmetric = this.#k.quirks.pinAccountingAsymmetric;
    const frames = this.#stale.size === 0
      ? this.#framesOf(iova, pages, (x) => this.#dmaAt(x))!
      : Array.from({ length: pages }, (_, i) => this.#mm.page(this.#vaddrOf(iova + i * PAGE_SIZE)));
    for (let i = 0; i < pages; i++) {
      if (this.#stale.size > 0 && local.pins.get(iova + i * PAGE_SIZE) === 1) {
        this.#stale.delete(iova + i * PAGE_SIZE);
      }
      this.#unpinFrame(frames[i], !asymmetric);
      if (asymmetric) this.#mm.lockedVm--;
    }
    local.pins.addRun(iova, pages, -1);
    return pages;
  }
}
