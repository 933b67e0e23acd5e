/**
 * The VFIO core's files (`drivers/vfio/vfio.c`): the container of each process, the group
 * files (`/dev/vfio/<group>`, one open at a time) and which container holds each, and the
 * device fds whose open and release reach the device behind the group
 * ({@link VfioDevices}: an mdev's open is its parent driver's). The type1 IOMMU backend is
 * each container's ({@link VfioContainer}).
 *
 * @module
 */
import type { Errno } from "../../spec/types.ts";
import type { IommuCore, IommuGroup } from "../iommu/core.ts";
import type { IommuSva } from "../iommu/sva.ts";
import { type Kernel, Mutex } from "../kernel.ts";
import { AddressSpace } from "../mem/mm.ts";
import { VfioContainer } from "./container.ts";
import { vfioDevDir } from "./files.ts";
import type { DeviceHooks, SharedParents } from "./type1.ts";

/**
 * The devices behind VFIO groups whose files do more than exist (`vfio_device_ops`): an
 * mdev's open and release reach its parent driver.
 */
export interface VfioDevices {
  /** The device of `group` is opened by process `mm` (undefined: no such device). */
  open(group: number, mm: number): Promise<Errno | undefined> | undefined;
  /** Its device fd was closed by process `mm`. */
  release(group: number, mm: number): Promise<Errno | undefined> | undefined;
  /** The group's file is opened: its device is held (an errno refuses the open). */
  openGroup(group: number): Errno | undefined;
  /** The group's file was closed. */
  closeGroup(group: number): void;
  /** Whether every device of `group` is bound to a VFIO driver or none (default: yes). */
  viable?(group: number): boolean;
}

/** `VFIO_API_VERSION`. */
export const VFIO_API_VERSION = 0;

/** IOMMU types the type1 module backs (`VFIO_TYPE1_IOMMU`, `VFIO_TYPE1v2_IOMMU`). */
export const TYPE1_IOMMU_TYPES: readonly number[] = [1, 3];

/** A device operation that has nothing to do. */
function nothing(): Promise<undefined> {
  return Promise.resolve(undefined);
}

/** The VFIO core of one machine. */
export class Vfio {
  /** Containers by id (one per process, same id as its mm). */
  readonly containers: Map<number, VfioContainer> = new Map();
  /** Open group files and the container holding each. */
  readonly groupFds: Map<number, VfioContainer> = new Map();
  /** Whether the vfio_iommu_type1 module is loaded (registered with the VFIO core). */
  type1Loaded = true;
  /** Processes whose container file (`/dev/vfio/vfio`) is open. */
  readonly containerFds: Set<number> = new Set();
  readonly #devices: VfioDevices | undefined;

  /**
   * A container for each of `processes` (`{id, mm}`), over `iommu`; `hooks` quiesce the
   * devices of a group around a detach; `sva` serves VFIO_IOMMU_BIND.
   */
  constructor(
    kernel: Kernel,
    iommu: IommuCore,
    hooks: DeviceHooks,
    processes: readonly { readonly id: number; readonly mm: number }[],
    devices?: VfioDevices,
    sva?: IommuSva,
  ) {
    this.#devices = devices;
    const shared: SharedParents = new Set();
    const deps = { kernel, core: iommu, hooks, shared, domainIds: new Mutex(), sva };
    for (const c of processes) {
      this.containers.set(c.id, new VfioContainer(c.id, new AddressSpace(c.mm, kernel.phys), deps));
    }
    kernel.sysfs.mount("/dev/vfio", vfioDevDir(this, iommu));
  }

  /** VFIO_CHECK_EXTENSION on a container: 1 when a loaded IOMMU backend supports `type`. */
  checkExtension(type: number): 0 | 1 {
    return this.type1Loaded && TYPE1_IOMMU_TYPES.includes(type) ? 1 : 0;
  }

  /** VFIO_SET_IOMMU(`type`): ENODEV when no loaded backend supports it. */
  setIommu(c: VfioContainer, type: number): Promise<Errno | undefined> {
    if (this.checkExtension(type) === 0) return Promise.resolve("ENODEV");
    return c.setIommu();
  }

  /** Unloading (`false`) or loading the type1 module: EBUSY while a container uses it. */
  loadType1(loaded: boolean): Errno | undefined {
    if (!loaded && [...this.containers.values()].some((c) => c.iommu !== null)) return "EBUSY";
    this.type1Loaded = loaded;
    return undefined;
  }

  /** VFIO_GROUP_GET_STATUS through the caller's group file: viable or not; EINVAL if not held. */
  groupViable(c: VfioContainer, group: IommuGroup): boolean | Errno {
    if (this.groupFds.get(group.id) !== c) return "EINVAL";
    return this.#devices?.viable?.(group.id) ?? true;
  }

  /** Opening `/dev/vfio/<group>`: EPERM for a group a kernel driver owns, EBUSY while open. */
  openGroup(c: VfioContainer, group: IommuGroup): Errno | undefined {
    if (group.kernelDriver !== null) return "EPERM";
    if (this.groupFds.has(group.id)) return "EBUSY";
    const refused = this.#devices?.openGroup(group.id);
    if (refused !== undefined) return refused;
    this.groupFds.set(group.id, c);
    return undefined;
  }

  /** The group file's last close: EINVAL unless `c` holds it; the group is unset first. */
  closeGroup(c: VfioContainer, group: IommuGroup): Promise<Errno | undefined> {
    const refuse = () => (this.groupFds.get(group.id) !== c ? "EINVAL" : undefined);
    const drop = () => {
      this.groupFds.delete(group.id);
      this.#devices?.closeGroup(group.id);
    };
    return c.closeGroup(group, refuse, drop);
  }

  /**
   * VFIO_GROUP_SET_CONTAINER: the caller's group file, a group in no container yet; EPERM for
   * a group that is not viable.
   */
  attach(c: VfioContainer, group: IommuGroup): Promise<Errno | undefined> {
    const refuse = () => {
      if (this.groupFds.get(group.id) !== c) return "EINVAL";
      if (this.#devices?.viable?.(group.id) === false) return "EPERM";
      const inAny = [...this.containers.values()].some((k) => k.groups.includes(group));
      return inAny ? "EINVAL" : undefined;
    };
    return c.setContainer(group, refuse);
  }

  /** VFIO_GROUP_GET_DEVICE_FD through the caller's group file; the device's open runs. */
  async getDeviceFd(c: VfioContainer, group: IommuGroup): Promise<Errno | undefined> {
    if (this.groupFds.get(group.id) !== c) return "EINVAL";
    const devices = this.#devices;
    const open = devices && (() => devices.open(group.id, c.mm.id) ?? nothing());
    return await c.getDeviceFd(group, open);
  }

  /** Closing the device fd; the device's release runs. */
  async closeDeviceFd(c: VfioContainer, group: IommuGroup): Promise<Errno | undefined> {
    if (this.groupFds.get(group.id) !== c) return "EINVAL";
    const devices = this.#devices;
    const release = devices && (() => devices.release(group.id, c.mm.id) ?? nothing());
    return await c.closeDeviceFd(group, release);
  }
}
