/**
 * The vfio type1 IOMMU backend of one container (drivers/vfio/vfio_iommu_type1.c with the
 * sdmdev changes of RFCv2 3/7): vfio_domains, the dma_list, pinning, replay, attach/detach of
 * normal and sdmdev groups.
 *
 * @module
 */
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import { lockAll, Mutex } from "../kernel.ts";
import { ERR_PTR_EINVAL, IommuCore, type IommuDomain, type IommuGroup } from "../iommu/core.ts";
import { shareOwner } from "../../spec/type1.ts";
import type { AddressSpace } from "../mem/mm.ts";

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
  /** vfio_domains. */
  readonly domains: VfioDomain[] = [];
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

  /** The backend of container `id`, opened by process `mm`. */
  constructor(
    id: number,
    kernel: Kernel,
    core: IommuCore,
    mm: AddressSpace,
    hooks: DeviceHooks,
    shared: SharedParents,
  ) {
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

  /**
   * vfio_iommu_replay: maps every dma into a new domain; on failure unmaps what it mapped
   * (quirk `replayPartialFailureLeaks`: returns at once, as the seed's replay does).
   */
  async #replay(domain: IommuDomain): Promise<Errno | undefined> {
    for (let i = 0; i < this.dmas.length; i++) {
      const d = this.dmas[i];
      const r = this.#core.map(domain, d.iova, this.#frames(d));
      if (r !== undefined) {
        if (this.#k.quirks.replayPartialFailureLeaks) return r;
        for (const done of this.dmas.slice(0, i)) {
          await this.#core.unmap(domain, done.iova, done.size);
        }
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
    await this.#replay(domain);
    this.domains.push({ domain, groups: [group], parentGroup: null });
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

  /** vfio_remove_dma: unmap from every domain, then unpin. */
  async #removeDma(d: VfioDma): Promise<void> {
    for (const vd of this.domains) await this.#core.unmap(vd.domain, d.iova, d.size);
    for (let off = 0; off < d.size; off += PAGE_SIZE) this.#mm.unpin(d.vaddr + off);
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
    if (this.domains.length === 1) await this.#unmapUnpinAll();
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
      const vd = this.domains.find((d) => d.groups.includes(group))!;
      if (vd.parentGroup !== null) return await this.#detachSdgroup(vd, group);
      await this.#core.detachGroup(group);
      vd.groups = vd.groups.filter((g) => g !== group);
      if (vd.groups.length > 0) return;
      if (this.domains.length === 1) await this.#unmapUnpinAll();
      this.#core.domainFree(vd.domain);
      this.domains.splice(this.domains.indexOf(vd), 1);
    } finally {
      unlockGroups();
      this.lock.unlock();
    }
  }

  /** vfio_dma_do_map: pin, then map into every domain; any failure undoes both. */
  async map(iova: number, size: number, vaddr: number): Promise<Errno | undefined> {
    await this.lock.lock(this.#k.sched, "type1.map:lock");
    try {
      if (this.dmas.some((d) => d.iova < iova + size && iova < d.iova + d.size)) return "EEXIST";
      const dma: VfioDma = { iova, size, vaddr };
      const frames = [];
      for (let off = 0; off < size; off += PAGE_SIZE) frames.push(this.#mm.pin(vaddr + off));
      await this.#k.sched.point("type1.map:after-pin");
      for (let i = 0; i < this.domains.length; i++) {
        const r = this.#core.map(this.domains[i].domain, iova, frames);
        if (r !== undefined) {
          for (const vd of this.domains.slice(0, i)) await this.#core.unmap(vd.domain, iova, size);
          for (let off = 0; off < size; off += PAGE_SIZE) this.#mm.unpin(vaddr + off);
          return r;
        }
      }
      this.dmas = [...this.dmas, dma].sort((a, b) => a.iova - b.iova);
      return undefined;
    } finally {
      this.lock.unlock();
    }
  }

  /** vfio_dma_do_unmap (type1v2): EINVAL on a bisected mapping; returns bytes unmapped. */
  async unmap(iova: number, size: number): Promise<number | "EINVAL"> {
    await this.lock.lock(this.#k.sched, "type1.unmap:lock");
    try {
      const end = iova + size;
      const bisects = (x: number) => this.dmas.some((d) => d.iova < x && x < d.iova + d.size);
      if (bisects(iova) || bisects(end)) return "EINVAL";
      const gone = this.dmas.filter((d) => d.iova >= iova && d.iova + d.size <= end);
      this.dmas = this.dmas.filter((d) => !gone.includes(d));
      for (const d of gone) await this.#removeDma(d);
      return gone.reduce((n, d) => n + d.size, 0);
    } finally {
      this.lock.unlock();
    }
  }
}
