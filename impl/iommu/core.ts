/**
 * The IOMMU core (drivers/iommu/iommu.c with RFCv2 2/7): groups, domains with real page
 * tables, domain sharing, the DMA-API allocator of default domains, and DMA translation with
 * in-flight tracking so that an unmap waits for translated accesses to finish (IOTLB sync).
 *
 * @module
 */
import { FIRST_DYNAMIC_DOMAIN, KERNEL_IOVA_BASE, lowestFreeId } from "../../spec/iommu.ts";
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import { Mutex } from "../kernel.ts";
import type { AddressSpace } from "../mem/mm.ts";
import type { Frame, FrameOwner } from "../mem/phys.ts";

/** An iommu_domain with its page table (IOVA page to frame). */
export class IommuDomain {
  /** Domain id. */
  readonly id: number;
  /** The page table. */
  readonly table: Map<number, Frame> = new Map();
  /** Translated accesses in flight, per IOVA page. */
  readonly inflight: Map<number, number> = new Map();

  /** An empty domain. */
  constructor(id: number) {
    this.id = id;
  }
}

/** An iommu_domain pointer holding ERR_PTR(-EINVAL): what a failed share returns. */
export const ERR_PTR_EINVAL: IommuDomain = new IommuDomain(-22);

/** An iommu_group. */
export class IommuGroup {
  /** Group id. */
  readonly id: number;
  /** `pci` behind the IOMMU, or `mdev` (virtual; DMAs as its parent). */
  readonly kind: "pci" | "mdev";
  /** Parent device's group, for an mdev group. */
  readonly parent: IommuGroup | null;
  /** The kernel driver's DMA-API domain. */
  readonly defaultDomain: IommuDomain | null;
  /** Current domain. */
  domain: IommuDomain | null;
  /** domain_shared_ref, split by owner (owner id to count). */
  readonly shares: Map<number, number> = new Map();
  /** group->mutex. */
  readonly mutex: Mutex = new Mutex();
  /**
   * The kernel driver that owns the group's DMA (its default domain), or null: no process
   * may open a group a kernel driver owns (`iommu_group_claim_dma_owner`, later upstream).
   */
  kernelDriver: string | null = null;
  /**
   * The device's PASID table (PASID to the address space its tagged DMA walks), or null while
   * the device has PASIDs disabled: then its DMA is untagged whatever its queues carry.
   */
  pasidTable: Map<number, AddressSpace> | null = null;

  /** A group in its default domain. */
  constructor(
    id: number,
    kind: "pci" | "mdev",
    parent: IommuGroup | null,
    defaultDomain: IommuDomain | null,
  ) {
    this.id = id;
    this.kind = kind;
    this.parent = parent;
    this.defaultDomain = defaultDomain;
    this.domain = defaultDomain;
  }
}

/** A dma_alloc_coherent buffer. */
export interface DmaBuffer {
  /** Buffer id. */
  readonly id: number;
  /** Owning group. */
  readonly group: number;
  /** First IOVA. */
  readonly iova: number;
  /** Frames, one per page. */
  readonly frames: readonly Frame[];
}

/** A translation held by a device between translating an IOVA and accessing the frame. */
export interface DmaLease {
  /** The domain it was translated through. */
  readonly domain: IommuDomain;
  /** The IOVA page. */
  readonly page: number;
  /** The frame the device will access. */
  readonly frame: Frame;
  /** Byte offset in the page. */
  readonly offset: number;
}

/** The IOMMU subsystem. */
export class IommuCore {
  /** Groups by id. */
  readonly groups: Map<number, IommuGroup> = new Map();
  /** Live domains by id. */
  readonly domains: Map<number, IommuDomain> = new Map();
  /** Live kernel DMA buffers by id. */
  readonly buffers: Map<number, DmaBuffer> = new Map();
  #k: Kernel;

  /** An IOMMU with no groups yet. */
  constructor(kernel: Kernel) {
    this.#k = kernel;
  }

  /** Adds a device group at boot; a pci group gets a default domain with the group's id. */
  addGroup(id: number, kind: "pci" | "mdev", parent: number | null): void {
    const domain = kind === "pci" ? new IommuDomain(id) : null;
    if (domain) this.domains.set(id, domain);
    const p = parent === null ? null : this.groups.get(parent)!;
    this.groups.set(id, new IommuGroup(id, kind, p, domain));
  }

  /**
   * The group of a device that goes (`iommu_group_remove_device` of its last device; an mdev's
   * group with the mdev).
   */
  removeGroup(id: number): void {
    this.groups.delete(id);
  }

  /** iommu_domain_alloc. */
  domainAlloc(): IommuDomain {
    const domain = new IommuDomain(lowestFreeId(this.domains, FIRST_DYNAMIC_DOMAIN));
    this.domains.set(domain.id, domain);
    return domain;
  }

  /** iommu_domain_free. */
  domainFree(domain: IommuDomain): void {
    this.domains.delete(domain.id);
  }

  /** iommu_map of consecutive pages onto `frames`; EEXIST if any page is already mapped. */
  map(domain: IommuDomain, iova: number, frames: readonly Frame[]): Errno | undefined {
    if (!this.domains.has(domain.id)) {
      this.#k.emit({ fault: "oops", where: "iommu_map", domain: domain.id });
      return "EINVAL";
    }
    for (let i = 0; i < frames.length; i++) {
      if (domain.table.has(iova + i * PAGE_SIZE)) return "EEXIST";
    }
    frames.forEach((f, i) => domain.table.set(iova + i * PAGE_SIZE, f));
    return undefined;
  }

  /**
   * iommu_unmap + iotlb sync: removes the page-table entries, then waits until no device
   * still holds a translation of those pages.
   */
  async unmap(domain: IommuDomain, iova: number, size: number): Promise<void> {
    const pages: number[] = [];
    for (let off = 0; off < size; off += PAGE_SIZE) {
      domain.table.delete(iova + off);
      pages.push(iova + off);
    }
    const idle = () => pages.every((p) => !domain.inflight.get(p));
    if (!idle()) await this.#k.sched.waitUntil("iommu.unmap:iotlb-sync", idle);
  }

  /** domain_shared_ref: the total of every owner's shares. */
  static sharedRef(group: IommuGroup): number {
    let n = 0;
    for (const c of group.shares.values()) n += c;
    return n;
  }

  /** iommu_group_share_domain on behalf of `owner`. */
  async share(group: IommuGroup, owner: number): Promise<IommuDomain | "EINVAL"> {
    const locked = !this.#k.quirks.shareWithoutGroupLock;
    if (locked) await group.mutex.lock(this.#k.sched, "iommu.share:lock");
    try {
      if (group.defaultDomain === null || group.domain !== group.defaultDomain) return "EINVAL";
      await this.#k.sched.point("iommu.share:after-check");
      group.shares.set(owner, (group.shares.get(owner) ?? 0) + 1);
      return group.domain;
    } finally {
      if (locked) group.mutex.unlock();
    }
  }

  /** iommu_group_unshare_domain on behalf of `owner`. */
  async unshare(group: IommuGroup, owner: number): Promise<IommuDomain | "EINVAL"> {
    await group.mutex.lock(this.#k.sched, "iommu.unshare:lock");
    try {
      const held = group.shares.get(owner) ?? 0;
      if (this.#k.quirks.unshareUnderflow) {
        group.shares.set(owner, held - 1);
        if (held - 1 < 0) this.#k.emit({ warn: "unshare-underflow", group: group.id, owner });
        if (held - 1 === 0) group.shares.delete(owner);
        return group.domain ?? "EINVAL";
      }
      if (held <= 0 || group.domain === null) return "EINVAL";
      if (held === 1) group.shares.delete(owner);
      else group.shares.set(owner, held - 1);
      return group.domain;
    } finally {
      group.mutex.unlock();
    }
  }

  /** __iommu_attach_group: EBUSY unless in the default domain and not shared. */
  async attachGroup(group: IommuGroup, domain: IommuDomain): Promise<"EBUSY" | undefined> {
    await group.mutex.lock(this.#k.sched, "iommu.attach:lock");
    try {
      if (group.domain !== group.defaultDomain || IommuCore.sharedRef(group) > 0) return "EBUSY";
      await this.#k.sched.point("iommu.attach:after-check");
      group.domain = domain;
      return undefined;
    } finally {
      group.mutex.unlock();
    }
  }

  /** __iommu_detach_group: back to the default domain. */
  async detachGroup(group: IommuGroup): Promise<void> {
    await group.mutex.lock(this.#k.sched, "iommu.detach:lock");
    group.domain = group.defaultDomain;
    group.mutex.unlock();
  }

  /**
   * dma_alloc_coherent for a group's device: first fit among the group's kernel buffers. The
   * allocator does not see user mappings in the same domain; a collision fails with ENOMEM.
   */
  dmaAlloc(group: IommuGroup, pages: number): { iova: number; buffer: number } | Errno {
    const domain = group.defaultDomain;
    if (domain === null || !Number.isSafeInteger(pages) || pages <= 0) return "EINVAL";
    const size = pages * PAGE_SIZE;
    const taken = [...this.buffers.values()]
      .filter((b) => b.group === group.id)
      .sort((a, b) => a.iova - b.iova);
    let iova = KERNEL_IOVA_BASE;
    for (const b of taken) {
      if (iova + size <= b.iova) break;
      iova = Math.max(iova, b.iova + b.frames.length * PAGE_SIZE);
    }
    const id = lowestFreeId(this.buffers, 1);
    const frames = Array.from(
      { length: pages },
      (_, i) => this.#k.phys.alloc({ kind: "kernel", buffer: id, offset: i * PAGE_SIZE }),
    );
    if (this.map(domain, iova, frames) !== undefined) {
      for (const f of frames) this.#k.phys.free(f.pfn);
      this.#k.emit({ warn: "iova-collision", group: group.id, iova });
      return "ENOMEM";
    }
    this.buffers.set(id, { id, group: group.id, iova, frames });
    return { iova, buffer: id };
  }

  /** dma_free_coherent. */
  async dmaFree(group: IommuGroup, iova: number): Promise<Errno | undefined> {
    const buffer = [...this.buffers.values()].find((b) => b.group === group.id && b.iova === iova);
    if (!buffer) return "EINVAL";
    this.buffers.delete(buffer.id);
    await this.unmap(group.defaultDomain!, iova, buffer.frames.length * PAGE_SIZE);
    for (const f of buffer.frames) this.#k.phys.free(f.pfn);
    return undefined;
  }

  /** The domain a DMA of `group` is translated through (an mdev DMAs as its parent). */
  dmaDomain(group: IommuGroup): IommuDomain | null {
    return (group.parent ?? group).domain;
  }

  /** `iommu_dev_enable_feature(SVA)`: the device of `group` gets an (empty) PASID table. */
  enablePasids(group: IommuGroup): void {
    group.pasidTable ??= new Map();
  }

  /**
   * A DMA of `group`'s device tagged with `pasid` at `vaddr`: the frame of that PASID's address
   * space (the I/O page-fault handler faults an absent page in, as the CPU would), or undefined
   * for an I/O page fault it cannot resolve (no entry, or an mm without users), logged as an
   * `iopf` fault.
   */
  dmaPasid(group: IommuGroup, pasid: number, vaddr: number): Frame | undefined {
    const mm = group.pasidTable?.get(pasid);
    if (!mm?.users) {
      this.#k.emit({ fault: "iopf", group: group.id, pasid, vaddr });
      return undefined;
    }
    return mm.page(vaddr - vaddr % PAGE_SIZE);
  }

  /** First half of a DMA: translate and hold the translation; undefined is an IOMMU fault. */
  translate(group: IommuGroup, iova: number): DmaLease | undefined {
    const domain = this.dmaDomain(group);
    const offset = iova % PAGE_SIZE;
    const page = iova - offset;
    const frame = domain?.table.get(page);
    if (!domain || !frame) {
      this.#k.emit({ fault: "iommu", group: group.id, iova });
      return undefined;
    }
    domain.inflight.set(page, (domain.inflight.get(page) ?? 0) + 1);
    return { domain, page, frame, offset };
  }

  /**
   * A DMA translated and performed at once ({@link IommuCore.translate} then
   * {@link IommuCore.access} with nothing in between): no unmap can run while the translation is
   * held, so the in-flight count, up and down again, is left alone. The frame accessed, or
   * undefined on an IOMMU fault or a freed frame; faults and violations are logged as there.
   */
  dma(group: IommuGroup, iova: number): Frame | undefined {
    const domain = this.dmaDomain(group);
    const frame = domain?.table.get(iova - iova % PAGE_SIZE);
    if (!frame) {
      this.#k.emit({ fault: "iommu", group: group.id, iova });
      return undefined;
    }
    if (frame.owner === null) {
      this.#k.emit({ fault: "dma-to-freed-frame", pfn: frame.pfn });
      return undefined;
    }
    if (frame.owner.kind === "user" && frame.pins <= 0) {
      this.#k.emit({ fault: "dma-to-unpinned-page", mm: frame.owner.mm, vaddr: frame.owner.vaddr });
    }
    return frame;
  }

  /**
   * Second half of a DMA: the device accesses the frame it translated to. Touching a freed
   * frame or an unpinned page of process memory is a safety violation, logged as a fault.
   */
  access(lease: DmaLease): FrameOwner | null {
    const { domain, page, frame } = lease;
    domain.inflight.set(page, domain.inflight.get(page)! - 1);
    if (frame.owner === null) {
      this.#k.emit({ fault: "dma-to-freed-frame", pfn: frame.pfn });
    } else if (frame.owner.kind === "user" && frame.pins <= 0) {
      this.#k.emit({ fault: "dma-to-unpinned-page", mm: frame.owner.mm, vaddr: frame.owner.vaddr });
    }
    return frame.owner;
  }
}
