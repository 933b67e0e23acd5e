/**
 * The VFIO files a process holds (drivers/vfio/vfio.c `vfio_fops`, `vfio_group_fops`,
 * `vfio_device_fops`) and the device nodes that open them: `/dev/vfio/vfio` (the process's
 * container: the model has one per process, so a second open while one is held is EBUSY) and
 * `/dev/vfio/<group>` for every IOMMU group. Each ioctl is a method taking what its argument
 * struct carries; each file's `release` is its last close.
 *
 * @module
 */
import type { Errno } from "../../spec/types.ts";
import type { IommuCore } from "../iommu/core.ts";
import { liveDir, type SysfsDir, type SysfsNode } from "../sysfs.ts";
import type { VfioContainer } from "./container.ts";
import { type Vfio, VFIO_API_VERSION } from "./vfio.ts";

/** An open file of the simulated kernel. */
export interface KernelFile {
  /** What it is. */
  readonly kind: string;
  /** The last close. */
  release(): Promise<Errno | undefined>;
}

/** `/dev/vfio/vfio` opened by one process. */
export class VfioContainerFile implements KernelFile {
  /** Kind tag. */
  readonly kind = "vfio-container";

  /** The file of `container`. */
  constructor(readonly vfio: Vfio, readonly container: VfioContainer) {}

  /** VFIO_GET_API_VERSION. */
  apiVersion(): number {
    return VFIO_API_VERSION;
  }

  /** VFIO_CHECK_EXTENSION: 1 if `type` is backed, else 0 (not an error). */
  checkExtension(type: number): 0 | 1 {
    return this.vfio.checkExtension(type);
  }

  /** VFIO_SET_IOMMU. */
  setIommu(type: number): Promise<Errno | undefined> {
    return this.vfio.setIommu(this.container, type);
  }

  /** VFIO_IOMMU_MAP_DMA. */
  mapDma(vaddr: number, iova: number, size: number): Promise<Errno | undefined> {
    return this.container.mapDma(iova, size, vaddr);
  }

  /** VFIO_IOMMU_UNMAP_DMA: bytes unmapped. */
  unmapDma(iova: number, size: number): Promise<number | Errno> {
    return this.container.unmapDma(iova, size);
  }

  /** The container outlives its fd while groups are set into it (they hold a reference). */
  release(): Promise<Errno | undefined> {
    this.vfio.containerFds.delete(this.container.id);
    return Promise.resolve(undefined);
  }
}

/** `/dev/vfio/<group>` opened by one process. */
export class VfioGroupFile implements KernelFile {
  /** Kind tag. */
  readonly kind = "vfio-group";

  /** The group file of `group`, opened by the process of `container`. */
  constructor(
    readonly vfio: Vfio,
    readonly container: VfioContainer,
    readonly group: number,
    readonly iommu: IommuCore,
  ) {}

  /** VFIO_GROUP_GET_STATUS: `{ viable }`. */
  getStatus(): { readonly viable: boolean } | Errno {
    const v = this.vfio.groupViable(this.container, this.#group());
    return typeof v === "string" ? v : { viable: v };
  }

  /** VFIO_GROUP_SET_CONTAINER with the fd of `file`: EINVAL for another process's container. */
  setContainer(file: VfioContainerFile): Promise<Errno | undefined> {
    if (file.container !== this.container) return Promise.resolve("EINVAL");
    return this.vfio.attach(this.container, this.#group());
  }

  /** VFIO_GROUP_GET_DEVICE_FD: the device's file (its open ran). */
  async getDeviceFd(): Promise<VfioDeviceFile | Errno> {
    const r = await this.vfio.getDeviceFd(this.container, this.#group());
    return r ?? new VfioDeviceFile(this.vfio, this.container, this.group, this.iommu);
  }

  /** The group file's last close (the group leaves its container first). */
  release(): Promise<Errno | undefined> {
    return this.vfio.closeGroup(this.container, this.#group());
  }

  #group() {
    return this.iommu.groups.get(this.group)!;
  }
}

/** A device fd from VFIO_GROUP_GET_DEVICE_FD. */
export class VfioDeviceFile implements KernelFile {
  /** Kind tag. */
  readonly kind = "vfio-device";

  /** The device of `group`, for the process of `container`. */
  constructor(
    readonly vfio: Vfio,
    readonly container: VfioContainer,
    readonly group: number,
    readonly iommu: IommuCore,
  ) {}

  /** Its close: the device's release runs. */
  release(): Promise<Errno | undefined> {
    return this.vfio.closeDeviceFd(this.container, this.iommu.groups.get(this.group)!);
  }
}

/** `/dev/vfio`: `vfio` and one node per IOMMU group of `iommu`. */
export function vfioDevDir(vfio: Vfio, iommu: IommuCore): SysfsDir {
  const container: SysfsNode = {
    kind: "dev",
    open: (pid) => {
      const c = vfio.containers.get(pid);
      if (!c) return "ENODEV";
      if (vfio.containerFds.has(pid)) return "EBUSY";
      vfio.containerFds.add(pid);
      return new VfioContainerFile(vfio, c);
    },
  };
  return liveDir(() => {
    const out: [string, SysfsNode][] = [["vfio", container]];
    for (const [id, group] of iommu.groups) {
      out.push([String(id), {
        kind: "dev",
        open: (pid) => {
          const c = vfio.containers.get(pid);
          if (!c) return "ENODEV";
          return vfio.openGroup(c, group) ?? new VfioGroupFile(vfio, c, id, iommu);
        },
      }]);
    }
    return out;
  });
}
