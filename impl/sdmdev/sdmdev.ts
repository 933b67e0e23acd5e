/**
 * sdmdev, the share-domain mdev (RFCv2 3/7, `drivers/vfio/sdmdev/vfio_sdmdev.c`): the
 * `sdmdev_class` devices, their registration as mdev parents, the mdev callbacks that map
 * the mdev lifecycle onto the vendor's queues (create → `get_queue`, remove → `put_queue`,
 * open → `start_queue` with PASID 0 without SVA, release → `stop_queue`), the one-process
 * rule without PASID support, and the sysfs attributes.
 *
 * Quirks: `putQueueStraySemicolon` (L1497, `if (ops->put_queue);`) and `errPtrTreatedAsNull`
 * (the `!sdmdev` tests of the show functions, found by smatch, L6500).
 *
 * @module
 */
import {
  SDMDEV_DEVICE_API,
  SDMDEV_DMA_FLAG,
  type SdmdevAttrs,
  sdmdevTypeId,
  VFIO_TYPE1_IOMMU,
} from "../../spec/sdmdev.ts";
import type { Errno } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import { MdevCore, type MdevDevice, type MdevParentOps, mdevTypes } from "../vfio/mdev.ts";
import { SdmdevQueue, type SdmdevVendorOps } from "./queue.ts";
import type { VfioDevices } from "../vfio/vfio.ts";
import type { PasidLayer } from "./sva.ts";
import { sdmdevClassDir } from "./sysfs.ts";

/** `struct vfio_sdmdev` (RFCv2 3/7): one accelerator exposed through sdmdev. */
export class VfioSdmdev {
  /** `sdmdev->dev`: the parent device id. */
  readonly parent: number;
  /** `name` attribute. */
  readonly name: string;
  /** PASID support (CONFIG_IOMMU_SVA): queues start at BIND_PASID, many processes allowed. */
  readonly sva: boolean;
  /** `sdmdev->ops`. */
  readonly ops: SdmdevVendorOps;
  /** `iommu_type`. */
  readonly iommuType: number = VFIO_TYPE1_IOMMU;
  /** `api_ver`, the types' `device_api`. */
  readonly apiVer: string = SDMDEV_DEVICE_API;
  /** `flags`. */
  readonly flags: number = 0;
  /** References on the parent device its mdevs hold (`get_device(pdev)` at create). */
  pdevRefs = 0;

  /** An accelerator about to register. */
  constructor(parent: number, name: string, sva: boolean, ops: SdmdevVendorOps) {
    this.parent = parent;
    this.name = name;
    this.sva = sva;
    this.ops = ops;
  }

  /** `dma_flag`: one process, or many via PASIDs. */
  get dmaFlag(): number {
    return this.sva ? SDMDEV_DMA_FLAG.MULTI_PROC_MAP : SDMDEV_DMA_FLAG.SINGLE_PROC_MAP;
  }
}

/** The sdmdev queue of an mdev (`mdev_get_drvdata`). */
export function queueOf(mdev: MdevDevice): SdmdevQueue {
  if (!(mdev.drvdata instanceof SdmdevQueue)) throw new Error(`mdev ${mdev.uuid} has no queue`);
  return mdev.drvdata;
}

/**
 * Whether process `by` holds `q`'s device fd: undefined if so; ENODEV once the device is
 * removed or its release is removing it; else EPERM.
 */
export function checkFd(q: SdmdevQueue, by: number): Errno | undefined {
  if (q.openedBy !== null && q.openedBy === by && q.fd) return undefined;
  return q.mdev.gone || q.mdev.removing ? "ENODEV" : "EPERM";
}

/** `sdmdev_class` and the glue between it and the mdev core. */
export class SdmdevClass {
  /** Class devices by parent id, including parents being unregistered. */
  readonly devices: Map<number, VfioSdmdev> = new Map();
  /** The SVA layer BIND_PASID asks and a released queue gives its bond back to. */
  sva: PasidLayer | null = null;
  #k: Kernel;
  #core: MdevCore;

  /** The class (`vfio_sdmdev_init`) over the mdev core. */
  constructor(kernel: Kernel, core: MdevCore) {
    this.#k = kernel;
    this.#core = core;
    kernel.sysfs.mount("/sys/class/sdmdev", sdmdevClassDir(this, core));
  }

  /**
   * `vfio_sdmdev_register`: the mdev parent, then the class device. EEXIST, EINVAL. The
   * class device is listed only once the parent registered, so nothing racing the
   * registration (a completion, a create, a second register) sees a half-registered
   * accelerator; two registers of one parent are told apart by the mdev core's EEXIST.
   */
  async register(sd: VfioSdmdev): Promise<Errno | undefined> {
    const ops = this.#mdevOps(sd);
    if (this.devices.has(sd.parent) && !MdevCore.malformed(sd.parent, ops)) return "EEXIST";
    const r = await this.#core.register(sd.parent, ops);
    if (r === undefined) this.devices.set(sd.parent, sd);
    return r;
  }

  /**
   * `vfio_sdmdev_unregister`: `mdev_unregister_device`, which cannot fail (the parent's PCI
   * remove is void); the class device goes with the parent's last user (an mdev, or a
   * kernel crypto user of its qps). The open devices still waited for.
   */
  unregister(sd: VfioSdmdev): Promise<number | Errno> {
    return this.#core.unregister(sd.parent, "sdmdev");
  }

  /**
   * The class device of `parent` as the kernel's own paths find it (the IRQ thread's
   * wake-ups, the crypto transforms): also while it unregisters, but not once its last mdev's
   * release is removing it (it goes then).
   */
  kernelParent(parent: number): VfioSdmdev | undefined {
    const sd = this.devices.get(parent);
    return sd && !this.#core.isGoing(parent) ? sd : undefined;
  }

  /** A kernel user gave its qps back: an unregister waiting for it may complete. */
  kernelUserGone(sd: VfioSdmdev): void {
    this.#core.reservedReleased(sd.parent);
  }

  /** `vfio_sdmdev_pdev_sdmdev`: the live sdmdev of a parent, or ENODEV (an ERR_PTR). */
  pdevSdmdev(parent: number): VfioSdmdev | Errno {
    const sd = this.devices.get(parent);
    if (!sd || typeof this.#core.liveParent(parent, "sdmdev") === "string") return "ENODEV";
    return sd;
  }

  /** The `create` file of the parent's one type: the new mdev's group id. */
  async create(parent: number, uuid: string): Promise<number | Errno> {
    const sd = this.pdevSdmdev(parent);
    if (typeof sd === "string") return sd;
    return await this.#core.create(parent, sdmdevTypeId(sd.name), uuid, "sdmdev");
  }

  /** The sdmdev and queue of the device named by `uuid`. */
  lookup(uuid: string): [VfioSdmdev, SdmdevQueue] | Errno {
    const mdev = this.#core.lookup(uuid, "sdmdev");
    if (typeof mdev === "string") return mdev;
    return [this.devices.get(mdev.parent.id)!, queueOf(mdev)];
  }

  /**
   * Like {@link lookup}, for process `by`, which must hold the device fd ({@link checkFd}).
   * A closed fd's answer waits for an open or release under way, if any ({@link fdSettled}).
   */
  async fd(uuid: string, by: number): Promise<[VfioSdmdev, SdmdevQueue] | Errno> {
    const r = this.lookup(uuid);
    if (typeof r === "string") return r;
    return checkFd(r[1], by) === undefined ? r : (await this.fdSettled(r[1], by)) ?? r;
  }

  /**
   * Whether process `by` holds `q`'s device fd (undefined) or why not ({@link checkFd}), asked
   * once no open or release of its parent's devices is under way. An open makes the fd
   * visible only when it is done, and a close drops it before its release stops the queue:
   * an answer in between would see the file closed while its queue runs.
   */
  async fdSettled(q: SdmdevQueue, by: number): Promise<Errno | undefined> {
    await this.settled(q.mdev.parent.id, "sdmdev.fd:list-lock");
    return checkFd(q, by);
  }

  /** Waits until no release of a device of `parent` is under way ({@link MdevCore.settled}). */
  settled(parent: number, label: string): Promise<void> {
    return this.#core.settled(parent, label);
  }

  /**
   * Close of the device fd by process `by`: EINVAL when the file is not open or the fd is
   * closed already, EPERM for another process. The file is released (the mdev core's
   * release → `vfio_sdmdev_mdev_release`) only when no mapping holds it any more. The fd's
   * reference is dropped under the mdev list lock, so an open, a close or a munmap racing it
   * sees the file either before or after, never half released.
   */
  async close(uuid: string, by: number): Promise<Errno | undefined> {
    const r = this.lookup(uuid);
    if (typeof r === "string") return r;
    const q = r[1];
    return await this.#core.release(uuid, "sdmdev", () => {
      if (q.openedBy === null || !q.fd) return "EINVAL";
      if (q.openedBy !== by) return "EPERM";
      q.fd = false;
      return q.vmas.length > 0 ? "keep" : undefined;
    });
  }

  /**
   * munmap of mapping `map` by process `by` (its mm must hold the device's mappings, else
   * EPERM; EINVAL for no such mapping). While the fd is open the file stays; once it is
   * closed, the mapping's reference is dropped under the mdev list lock and the last one
   * releases the file.
   */
  async munmap(uuid: string, by: number, map: number): Promise<Errno | undefined> {
    const r = this.lookup(uuid);
    if (typeof r === "string") return r;
    const q = r[1];
    const drop = (): Errno | "keep" | undefined => {
      if (q.openedBy === null || q.openedBy !== by) return "EPERM";
      const i = q.vmas.findIndex((m) => m.id === map);
      if (i < 0) return "EINVAL";
      q.vmas.splice(i, 1);
      return q.fd || q.vmas.length > 0 ? "keep" : undefined;
    };
    if (q.fd) {
      const verdict = drop();
      return verdict === "keep" ? undefined : verdict;
    }
    if (q.openedBy === null || q.openedBy !== by) return "EPERM";
    return await this.#core.release(uuid, "sdmdev", drop);
  }

  /** The sysfs attributes (`iommu_type_show`, `dma_flag_show` and the type attributes). */
  readAttrs(parent: number): SdmdevAttrs | Errno {
    const sd = this.pdevSdmdev(parent);
    if (typeof sd === "string") {
      if (!this.#k.quirks.errPtrTreatedAsNull) return sd;
      this.#k.emit({ fault: "oops", where: "iommu_type_show", deref: `ERR_PTR(-${sd})` });
      return "EFAULT";
    }
    return {
      iommu_type: sd.iommuType,
      dma_flag: sd.dmaFlag,
      flags: sd.flags,
      name: sd.name,
      device_api: sd.apiVer,
      available_instances: sd.ops.getAvailableInstances?.() ?? 0,
    };
  }

  /** `sdmdev->mdev_fops`: the parent ops sdmdev registers for an accelerator. */
  #mdevOps(sd: VfioSdmdev): MdevParentOps {
    return {
      vendor: "sdmdev",
      name: sd.name,
      types: mdevTypes(sd.name, sd.apiVer, 1),
      create: (mdev) => Promise.resolve(this.#create(sd, mdev)),
      remove: (mdev) => this.#remove(sd, mdev),
      open: (mdev, by) => this.#open(sd, mdev, by),
      release: (mdev) => this.#release(sd, mdev),
      availableInstances: () => sd.ops.getAvailableInstances?.() ?? 0,
      unregistered: () => this.devices.delete(sd.parent),
      units: () => {
        const pool = sd.ops.pool();
        const used = [...pool.owners.values()].filter((o) => "mdev" in o).length;
        return { capacity: pool.qpNum, reserved: pool.owners.size - used, used };
      },
    };
  }

  /** `vfio_sdmdev_mdev_create`: a queue from the vendor, a reference on the parent. */
  #create(sd: VfioSdmdev, mdev: MdevDevice): Errno | undefined {
    if (!sd.ops.getQueue) return "ENODEV";
    const q = new SdmdevQueue(mdev);
    const r = sd.ops.getQueue(q);
    if (r !== undefined) return r;
    mdev.drvdata = q;
    sd.pdevRefs++;
    return undefined;
  }

  /**
   * `vfio_sdmdev_mdev_remove`: the queue back to the vendor, then the parent reference
   * dropped (the reference outlives the queue, so it never counts fewer than the devices).
   */
  async #remove(sd: VfioSdmdev, mdev: MdevDevice): Promise<Errno | undefined> {
    if (sd.ops.putQueue) await sd.ops.putQueue(queueOf(mdev));
    sd.pdevRefs--;
    if (!sd.ops.putQueue && this.#k.quirks.putQueueStraySemicolon) {
      this.#k.emit({ fault: "oops", where: "vfio_sdmdev_mdev_remove", call: "NULL put_queue" });
      return "EFAULT";
    }
    return undefined;
  }

  /**
   * `vfio_sdmdev_mdev_open` for process `by`: without PASID support, EBUSY while another
   * process has an sdmdev of this parent open, else the queue starts with PASID 0 (quirk
   * `openIgnoresStartFailure`: the open succeeds when `start_queue` fails, as the seed's
   * open drops its return value, leaving an open device whose queue never ran).
   */
  async #open(sd: VfioSdmdev, mdev: MdevDevice, by: number): Promise<Errno | undefined> {
    const q = queueOf(mdev);
    if (!sd.sva) {
      const siblings = mdev.parent.mdevList.map(queueOf);
      if (siblings.some((o) => o.openedBy !== null && o.openedBy !== by)) return "EBUSY";
    }
    if (!sd.sva && sd.ops.startQueue) {
      q.pasid = 0;
      const r = await sd.ops.startQueue(q);
      if (r === undefined) q.started = true;
      else if (!this.#k.quirks.openIgnoresStartFailure) return r;
    }
    // The file is the opener's once its queue runs: nobody sees it open and not started.
    q.openedBy = by;
    q.fd = true;
    return undefined;
  }

  /**
   * `vfio_sdmdev_mdev_release`: the last reference to the device file is gone (its fd and
   * every mapping); `stop_queue` quiesces the hardware and frees the ring.
   */
  async #release(sd: VfioSdmdev, mdev: MdevDevice): Promise<void> {
    const q = queueOf(mdev);
    await q.mutex.hold(this.#k.sched, "sdmdev.release:q-mutex", async () => {
      await sd.ops.stopQueue?.(q);
      q.started = false;
      // Stopped and drained: the queue's bond can go, and with the mm's last its PASID.
      if (q.bound && q.openedBy !== null) this.sva?.unbindQueue?.(sd.parent, q.openedBy);
      q.bound = false;
      q.openedBy = null;
    });
  }
}

/**
 * The VFIO side of mdev devices (`vfio_mdev`): a group file holds its mdev, the device fd's
 * open is the mdev open for the process, its release the sdmdev close.
 */
export function mdevVfioDevices(core: MdevCore, sdmdev: SdmdevClass): VfioDevices {
  return {
    open: (group, mm) => {
      const d = core.groups.get(group);
      if (d) return core.open(d.uuid, "sdmdev", mm);
      return core.retainedGroups.has(group) ? Promise.resolve("ENODEV") : undefined;
    },
    release: (group, mm) => {
      const d = core.groups.get(group);
      return d && sdmdev.close(d.uuid, mm);
    },
    openGroup: (group) => core.groups.has(group) ? core.openGroup(group) : undefined,
    viable: (group) => core.groups.get(group)?.driver !== "host",
    closeGroup: (group) => core.closeGroup(group),
  };
}
