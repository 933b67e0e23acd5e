/**
 * A VFIO container and the group ioctls that bind groups to it (drivers/vfio/vfio.c:
 * vfio_group_set_container, vfio_ioctl_set_iommu, __vfio_group_unset_container) plus the
 * argument checks of VFIO_IOMMU_MAP_DMA / UNMAP_DMA, and VFIO_IOMMU_BIND / UNBIND with
 * VFIO_IOMMU_BIND_PROCESS (the seed's `_wd_bind_process`), whose bonds the container's last
 * group takes with it.
 *
 * @module
 */
import { pageAligned } from "../../spec/iommu.ts";
import type { Errno } from "../../spec/types.ts";
import { type Kernel, lockAll, Mutex } from "../kernel.ts";
import type { IommuCore, IommuGroup } from "../iommu/core.ts";
import type { IommuSva } from "../iommu/sva.ts";
import type { AddressSpace } from "../mem/mm.ts";
import {
  type DeviceHooks,
  type InvalidateHandler,
  type SharedParents,
  VfioIommu,
} from "./type1.ts";

/** Everything a container needs from the rest of the kernel. */
export interface ContainerDeps {
  /** Shared kernel context. */
  readonly kernel: Kernel;
  /** The IOMMU subsystem. */
  readonly core: IommuCore;
  /** Device-driver hooks for sdmdev queues. */
  readonly hooks: DeviceHooks;
  /** Parents currently shared by some vfio_domain. */
  readonly shared: SharedParents;
  /**
   * Held by an attach that may allocate an IOMMU domain until it is done or undone: a domain's
   * id is the lowest free one, and the spec's attach is one step, so no allocation elsewhere
   * may see an id that a failing attach holds for a while and then gives back.
   */
  readonly domainIds: Mutex;
  /** The iommu-sva layer VFIO_IOMMU_BIND binds through, if the machine has one. */
  readonly sva?: IommuSva;
}

/** struct vfio_container, opened by one process. */
export class VfioContainer {
  /** Container id. */
  readonly id: number;
  /** The opening process's memory. */
  readonly mm: AddressSpace;
  /** Groups set into the container, in order. */
  readonly groups: IommuGroup[] = [];
  /** The type1 backend, once VFIO_SET_IOMMU succeeded. */
  iommu: VfioIommu | null = null;
  /** container->group_lock: serializes the container's ioctls with group set/unset. */
  readonly lock: Mutex = new Mutex();
  /** Groups of this container whose device fd is open. */
  readonly deviceFds: Set<IommuGroup> = new Set();
  /** Vendor drivers' invalidation handlers, registered with the container, kept across SET_IOMMUs. */
  readonly notifiers: Set<InvalidateHandler> = new Set();
  /** Device fds being closed: their release runs, a second close waits for it and fails. */
  readonly #closing = new Set<IommuGroup>();
  /** The devices (PASID-capable groups) VFIO_IOMMU_BIND bound the process to, or null. */
  svaBound: IommuGroup[] | null = null;
  #deps: ContainerDeps;

  /** An empty container. */
  constructor(id: number, mm: AddressSpace, deps: ContainerDeps) {
    this.id = id;
    this.mm = mm;
    this.#deps = deps;
  }

  /**
   * ENODEV for a group that went while the caller waited for a lock (an mdev's retained
   * group, freed by its last file's close): the call answers as one made after that close.
   */
  #gone(group: IommuGroup): Errno | undefined {
    return this.#deps.core.groups.get(group.id) === group ? undefined : "ENODEV";
  }

  /** Runs `body` holding the container lock. */
  #locked<T>(label: string, body: () => Promise<T> | T): Promise<T> {
    return this.lock.hold(this.#deps.kernel.sched, label, body);
  }

  /**
   * VFIO_GROUP_SET_CONTAINER; with the IOMMU already set the group is attached at once.
   * `refuse` (the caller's group-fd and membership checks) is asked once the group's mutex is
   * held.
   */
  setContainer(group: IommuGroup, refuse: () => Errno | undefined): Promise<Errno | undefined> {
    return this.#locked("container.set:lock", () => {
      const body = async () => {
        const unlock = await lockAll(this.#deps.kernel.sched, "container.set:group", [group]);
        try {
          const refused = this.#gone(group) ?? refuse();
          if (refused !== undefined) return refused;
          if (this.iommu) {
            const r = await this.iommu.attachGroup(group);
            if (r !== undefined) return r;
          }
          this.groups.push(group);
          return undefined;
        } finally {
          unlock();
        }
      };
      // The domain-id lock comes before any group's mutex, as in SET_IOMMU.
      const { domainIds, kernel } = this.#deps;
      return this.iommu ? domainIds.hold(kernel.sched, "container.set:domain-ids", body) : body();
    });
  }

  /** VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU): attaches every group; a failure undoes the others. */
  setIommu(): Promise<Errno | undefined> {
    return this.#locked("container.setIommu:lock", () => this.#setIommu());
  }

  async #setIommu(): Promise<Errno | undefined> {
    if (this.groups.length === 0 || this.iommu) return "EINVAL";
    const { domainIds, kernel } = this.#deps;
    return await domainIds.hold(kernel.sched, "container.setIommu:domain-ids", async () => {
      const involved = this.groups.flatMap((g) => (g.parent ? [g, g.parent] : [g]));
      const unlock = await lockAll(kernel.sched, "container.setIommu:groups", involved);
      try {
        return await this.#attachAll();
      } finally {
        unlock();
      }
    });
  }

  async #attachAll(): Promise<Errno | undefined> {
    const { kernel, core, hooks, shared } = this.#deps;
    const iommu = new VfioIommu(this.id, kernel, core, this.mm, hooks, shared, this.notifiers);
    for (let i = 0; i < this.groups.length; i++) {
      const r = await iommu.attachGroup(this.groups[i]);
      if (r !== undefined) {
        for (const g of this.groups.slice(0, i).reverse()) await iommu.detachGroup(g);
        return r;
      }
    }
    this.iommu = iommu;
    return undefined;
  }

  /** VFIO_GROUP_UNSET_CONTAINER; the last group takes the IOMMU backend with it. */
  unsetContainer(group: IommuGroup): Promise<Errno | undefined> {
    return this.#locked("container.unset:lock", async () => {
      const gone = this.#gone(group);
      if (gone !== undefined) return gone;
      const index = this.groups.indexOf(group);
      if (index < 0) return "EINVAL";
      if (this.deviceFds.has(group)) return "EBUSY";
      if (this.iommu) await this.iommu.detachGroup(group);
      this.groups.splice(index, 1);
      if (this.groups.length === 0) {
        this.iommu = null;
        this.#unbindProcess();
      }
      return undefined;
    });
  }

  /**
   * VFIO_IOMMU_BIND (VFIO_IOMMU_BIND_PROCESS): the process's mm bound to every PASID-capable
   * device behind the container's groups (an mdev group's parent), one bond each; its PASID.
   * The same PASID and no new bond when bound already; EINVAL without such a device or SVA.
   */
  bindProcess(): Promise<number | Errno> {
    return this.#locked("container.bind:lock", () => {
      const sva = this.#deps.sva;
      if (!sva) return "EINVAL";
      if (this.svaBound) return sva.mms.get(this.mm.id)?.pasid ?? "EINVAL";
      const devices = [...new Set(this.groups.map((g) => g.parent ?? g))]
        .filter((d) => d.pasidTable !== null)
        .sort((a, b) => a.id - b.id);
      if (devices.length === 0) return "EINVAL";
      let pasid: number | Errno = "EINVAL";
      for (const [i, d] of devices.entries()) {
        pasid = sva.bind(d, this.mm);
        if (typeof pasid === "string") {
          for (const done of devices.slice(0, i)) sva.unbind(done, this.mm);
          return pasid;
        }
      }
      this.svaBound = devices;
      return pasid;
    });
  }

  /** VFIO_IOMMU_UNBIND: the bonds VFIO_IOMMU_BIND took go; EINVAL when it holds none. */
  unbindProcess(): Promise<Errno | undefined> {
    return this.#locked("container.unbind:lock", () => {
      if (!this.svaBound) return "EINVAL";
      this.#unbindProcess();
      return undefined;
    });
  }

  #unbindProcess(): void {
    for (const d of this.svaBound ?? []) this.#deps.sva?.unbind(d, this.mm);
    this.svaBound = null;
  }

  /**
   * The last close of a group fd held by this container (vfio_group_fops_release), with the
   * container lock then the group's mutex held, the kernel's lock order: ENODEV for a group
   * removed meanwhile, `refuse` (the fd owner check), EBUSY while the device fd is open, the
   * group unset if still set, then `drop` forgets the fd.
   */
  closeGroup(
    group: IommuGroup,
    refuse: () => Errno | undefined,
    drop: () => void,
  ): Promise<Errno | undefined> {
    return this.#locked("container.closeGroup:lock", async () => {
      const unlock = await lockAll(this.#deps.kernel.sched, "container.closeGroup:group", [group]);
      try {
        const refused = this.#gone(group) ?? refuse();
        if (refused !== undefined) return refused;
        if (this.deviceFds.has(group)) return "EBUSY";
        if (this.groups.includes(group)) {
          const r = await this.unsetContainer(group);
          if (r !== undefined) return r;
        }
        drop();
        return undefined;
      } finally {
        unlock();
      }
    });
  }

  /**
   * VFIO_GROUP_GET_DEVICE_FD: the group set into this container with the IOMMU set, once;
   * `open` is its device's open (`vfio_device_ops.open`), whose failure leaves no fd.
   */
  getDeviceFd(
    group: IommuGroup,
    open?: () => Promise<Errno | undefined>,
  ): Promise<Errno | undefined> {
    return this.#locked("container.getDeviceFd:lock", async () => {
      const gone = this.#gone(group);
      if (gone !== undefined) return gone;
      if (!this.groups.includes(group) || !this.iommu) return "EINVAL";
      if (this.deviceFds.has(group)) return "EBUSY";
      const r = await open?.();
      if (r !== undefined) return r;
      this.deviceFds.add(group);
      return undefined;
    });
  }

  /**
   * Closing a device fd; `release` is its device's release (`vfio_device_ops.release`). The
   * fd holds its group until the release is done, as `vfio_device_put` comes after it.
   */
  async closeDeviceFd(
    group: IommuGroup,
    release?: () => Promise<Errno | undefined>,
  ): Promise<Errno | undefined> {
    if (this.#closing.has(group)) {
      // The fd is being closed: this close sees it closed, once that close is done.
      const sched = this.#deps.kernel.sched;
      await sched.waitUntil("container.closeDeviceFd:closing", () => !this.#closing.has(group));
      return "EINVAL";
    }
    if (!this.deviceFds.has(group)) return "EINVAL";
    this.#closing.add(group);
    try {
      return await release?.();
    } finally {
      this.#closing.delete(group);
      this.deviceFds.delete(group);
    }
  }

  /** VFIO_IOMMU_MAP_DMA. */
  mapDma(iova: number, size: number, vaddr: number): Promise<Errno | undefined> {
    return this.#locked("container.map:lock", () => this.#mapDma(iova, size, vaddr));
  }

  #mapDma(iova: number, size: number, vaddr: number): Promise<Errno | undefined> | Errno {
    if (!this.iommu) return "EINVAL";
    if (!pageAligned(iova) || !pageAligned(vaddr) || !pageAligned(size) || size === 0) {
      return "EINVAL";
    }
    if (!Number.isSafeInteger(iova + size) || !Number.isSafeInteger(vaddr + size)) return "EINVAL";
    return this.iommu.map(iova, size, vaddr);
  }

  /** VFIO_IOMMU_UNMAP_DMA: bytes unmapped. */
  unmapDma(iova: number, size: number): Promise<number | Errno> {
    return this.#locked("container.unmap:lock", () => this.#unmapDma(iova, size));
  }

  #unmapDma(iova: number, size: number): Promise<number | Errno> | Errno {
    if (!this.iommu) return "EINVAL";
    if (!pageAligned(iova) || !pageAligned(size) || size === 0) return "EINVAL";
    return this.iommu.unmap(iova, size);
  }

  /**
   * vfio_pin_pages of a vendor driver for its mdev `group`: the group set into this container
   * with the IOMMU set, else EINVAL. No container lock: the kernel holds group_lock for read
   * here, as UNMAP_DMA does while it runs the invalidation handlers that unpin.
   */
  pinPages(group: IommuGroup, iova: number, pages: number): Promise<number | Errno> | Errno {
    if (!this.groups.includes(group) || !this.iommu) return "EINVAL";
    return this.iommu.pinPages(group, iova, pages);
  }

  /** vfio_unpin_pages of a vendor driver for its mdev `group`; as {@link pinPages}. */
  unpinPages(group: IommuGroup, iova: number, pages: number): Promise<number | Errno> | Errno {
    if (!this.groups.includes(group) || !this.iommu) return "EINVAL";
    return this.iommu.unpinPages(group, iova, pages);
  }
}
