/**
 * The mediated-device core and its VFIO bus driver (mdev v7, seed 004:
 * `drivers/vfio/mdev/mdev_core.c`, `mdev_sysfs.c`, 2/4 `vfio_mdev.c`): parent registration
 * with mandatory callbacks, supported types and `available_instances`, create by UUID (each
 * mdev in its own IOMMU group), remove, open/release through the device fd, and parent
 * unregister that waits for open devices.
 *
 * Structure as in the seed: a parent holds its `mdev_list` under `mdev_list_lock`; a device
 * is reference-counted (`mdev_get_device`/`mdev_put_device`): creation holds one reference
 * and an open device fd another, and the last put takes the device off its parent's list.
 * Decisions the seed lacks follow the later upstream code (see `spec/mdev.ts`): remove is
 * refused while open, unregister leaves open devices until their release.
 *
 * Quirks (impl/quirks.ts): `unregisterLoopDoubleDestroy` (the v7 unregister loop),
 * `removeWhileOpenDestroys` (v7 `mdev_device_destroy` without an open check) and
 * `removeWhileOpenFreesRing` (the vendor's remove runs before the open fd is noticed).
 *
 * Ghost fields, kept only so {@link MdevCore.observe} can name what the spec names: creation
 * serials, `unregisterFrom`, and each vendor's resource units.
 *
 * @module
 */
import { lowestFreeId } from "../../spec/iommu.ts";
import {
  FIRST_MDEV_GROUP,
  MAX_MDEV_TYPES,
  type MdevCommand,
  type MdevDevice as SpecDevice,
  type MdevParent as SpecParent,
  type MdevState,
  type MdevTypeInfo,
  type MdevVendor,
} from "../../spec/mdev.ts";
import type { Errno } from "../../spec/types.ts";
import { type Kernel, Mutex } from "../kernel.ts";
import type { IommuCore } from "../iommu/core.ts";
import { dir, liveDir, roAttr, type SysfsDir, woAttr } from "../sysfs.ts";

/** One supported type (`mdev_supported_types/<id>/`) and the units an instance takes. */
export interface MdevTypeDesc {
  /** Directory name, `<parent name>-<index>`. */
  readonly id: string;
  /** `name` attribute. */
  readonly name: string;
  /** `device_api` attribute. */
  readonly deviceApi: string;
  /** Resource units one instance takes from the vendor's pool. */
  readonly cost: number;
}

/** The types a parent named `name` declares: type `i` costs `2^i` units (mdev v7 review). */
export function mdevTypes(name: string, deviceApi: string, count: number): MdevTypeDesc[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `${name}-${i}`;
    return { id, name: id, deviceApi, cost: 2 ** i };
  });
}

/** A vendor's resource pool in the spec's units (observation only). */
export interface MdevUnits {
  /** Units of the pool. */
  readonly capacity: number;
  /** Units held by users outside the mdev core. */
  readonly reserved: number;
  /** Units held by mdevs. */
  readonly used: number;
}

/** `struct parent_ops` (mdev v7): what a vendor driver hands `mdev_register_device`. */
export interface MdevParentOps {
  /** Which driver registers (selects the sysfs files a user action goes through). */
  readonly vendor: MdevVendor;
  /** The parent's name; type ids derive from it. */
  readonly name: string;
  /** Supported types, in index order. */
  readonly types: readonly MdevTypeDesc[];
  /** `create` (mandatory): set the vendor state up for a new mdev. */
  create?(mdev: MdevDevice): Promise<Errno | undefined>;
  /** `destroy`/`remove` (mandatory): tear it down; an error refuses a non-forced remove. */
  remove?(mdev: MdevDevice): Promise<Errno | undefined>;
  /** `open`: the device fd of process `by` is being opened. */
  open?(mdev: MdevDevice, by: number): Promise<Errno | undefined>;
  /** `release`: the last reference to the device fd is gone. */
  release?(mdev: MdevDevice): Promise<void>;
  /** `available_instances` of `type`. */
  availableInstances(type: MdevTypeDesc): number;
  /** The end of the vendor's unregister once the parent's last device is gone (`release_done`). */
  unregistered?(): void;
  /** Ghost: the vendor's pool in units. */
  units(): MdevUnits;
}

/** `struct parent_device` (mdev v7). */
export class MdevParent {
  /** Parent device id. */
  readonly id: number;
  /** The vendor's callbacks. */
  readonly ops: MdevParentOps;
  /** `mdev_list`: live devices, in creation order. */
  readonly mdevList: MdevDevice[] = [];
  /** `mdev_list_lock`. */
  readonly listLock: Mutex = new Mutex();
  /** Ghost: `nextSerial` when `mdev_unregister_device` began; null while registered. */
  unregisterFrom: number | null = null;

  /** A freshly registered parent. */
  constructor(id: number, ops: MdevParentOps) {
    this.id = id;
    this.ops = ops;
  }

  /** Off `parent_list`: its sysfs create files are gone. */
  get unregistering(): boolean {
    return this.unregisterFrom !== null;
  }
}

/** `struct mdev_device` (mdev v7). */
export class MdevDevice {
  /** Canonical lower-case UUID: the device name on the mdev bus. */
  readonly uuid: string;
  /** Its parent. */
  readonly parent: MdevParent;
  /** Its type. */
  readonly type: MdevTypeDesc;
  /** Its IOMMU group id (`mdev_attach_iommu`), set when it is listed. */
  group = -1;
  /** Ghost: creation serial, set when it is listed. */
  serial = -1;
  /** The device fd is open. */
  open = false;
  /** `kref`: one for the creation, one for an open fd. */
  ref = 1;
  /** Off the list for good (its memory is gone in the kernel). */
  gone = false;
  /** Its last release is removing it (the parent unregisters): lookups no longer find it. */
  removing = false;
  /** Open VFIO group files of its group (each holds the device, `vfio_group_get_device`). */
  groupUsers = 0;
  /** `mdev_get_drvdata`: the vendor's per-device state. */
  drvdata: unknown = undefined;
  /**
   * The driver bound to it: vfio_mdev, or a host driver (`driver_override`), which makes its
   * group not viable for VFIO (VFIO_GROUP_GET_STATUS).
   */
  driver: "vfio_mdev" | "host" = "vfio_mdev";

  /** A device being created. */
  constructor(uuid: string, parent: MdevParent, type: MdevTypeDesc) {
    this.uuid = uuid;
    this.parent = parent;
    this.type = type;
  }
}

const UUID_TEXT = /^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\n?$/i;
const NAME = /^[A-Za-z0-9_]{1,32}$/;

/** `uuid_le_to_bin` on what was written to sysfs: the canonical UUID, or undefined. */
export function uuidFromSysfs(text: unknown): string | undefined {
  if (typeof text !== "string" || !UUID_TEXT.test(text)) return undefined;
  return text.slice(0, 36).toLowerCase();
}

/** The mdev core: `parent_list`, the mdev bus and the IOMMU group allocator. */
export class MdevCore {
  /** Registered parents, including those being unregistered, by id. */
  readonly parents: Map<number, MdevParent> = new Map();
  /** Listed devices by UUID (the mdev bus). */
  readonly devices: Map<string, MdevDevice> = new Map();
  /** IOMMU group id to its mdev. */
  readonly groups: Map<number, MdevDevice> = new Map();
  /**
   * Groups of removed mdevs that an open VFIO group file still references: the IOMMU group
   * (and its id) lives until that file's last close.
   */
  readonly retainedGroups: Set<number> = new Set();
  /** Ghost: successful creates so far. */
  nextSerial = 0;
  /** Devices created from now on bind to a host driver instead of vfio_mdev (an operator's). */
  hostDriver = false;
  /** Device names taken on the bus, including devices still being created. */
  #names = new Set<string>();
  /** Devices a remove is destroying: their group files can no longer be opened. */
  #removing = new Set<MdevDevice>();
  /** `parent_list_lock`. */
  #parentListLock = new Mutex();
  #k: Kernel;
  #iommu: IommuCore | null;

  /**
   * An empty core (`mdev_init`). With `iommu`, each mdev gets its group there too (an mdev
   * group whose DMA is its parent's: the parent's id names its PCI group).
   */
  constructor(kernel: Kernel, iommu: IommuCore | null = null) {
    this.#k = kernel;
    this.#iommu = iommu;
    kernel.sysfs.mount("/sys/bus/mdev/devices", this.#busDir());
  }

  /** `/sys/bus/mdev/devices/<uuid>/{iommu_group, remove}`. */
  #busDir(): SysfsDir {
    return liveDir(() =>
      [...this.devices.values()].map((d): [string, SysfsDir] => [
        d.uuid,
        dir({
          iommu_group: roAttr(() => d.group),
          remove: woAttr((v) =>
            /^1\n?$/.test(v) ? this.remove(d.uuid, d.parent.ops.vendor) : "EINVAL"
          ),
        }),
      ])
    );
  }

  /** `mdev_register_device`: EINVAL without create/remove or malformed, EEXIST twice. */
  async register(id: number, ops: MdevParentOps): Promise<Errno | undefined> {
    if (MdevCore.malformed(id, ops)) return "EINVAL";
    await this.#parentListLock.lock(this.#k.sched, "mdev.register:parent-list-lock");
    try {
      if (this.parents.has(id)) return "EEXIST";
      this.parents.set(id, new MdevParent(id, ops));
      return undefined;
    } finally {
      this.#parentListLock.unlock();
    }
  }

  /** Whether `mdev_register_device` refuses `id` and `ops` as malformed (EINVAL). */
  static malformed(id: number, ops: MdevParentOps): boolean {
    return !ops.create || !ops.remove || !Number.isSafeInteger(id) || id < 1 ||
      typeof ops.name !== "string" || !NAME.test(ops.name) || ops.types.length < 1 ||
      ops.types.length > MAX_MDEV_TYPES ||
      ops.types.some((t) => typeof t.deviceApi !== "string" || t.deviceApi.length === 0);
  }

  /** A registered parent of `vendor` not being unregistered (`__find_parent_device`). */
  liveParent(id: number, vendor: MdevVendor): MdevParent | Errno {
    const p = this.parents.get(id);
    if (!p || p.unregistering) return "ENODEV";
    return p.ops.vendor === vendor ? p : "EPERM";
  }

  /** The listed device named by `uuidText`, checked against `vendor`. */
  lookup(uuidText: string, vendor: MdevVendor): MdevDevice | Errno {
    const uuid = uuidFromSysfs(uuidText);
    if (uuid === undefined) return "EINVAL";
    const d = this.devices.get(uuid);
    if (!d || d.removing) return "ENODEV";
    return d.parent.ops.vendor === vendor ? d : "EPERM";
  }

  /** Runs `body` holding the parent's `mdev_list_lock`. */
  async #locked<T>(p: MdevParent, label: string, body: () => Promise<T>): Promise<T> {
    await p.listLock.lock(this.#k.sched, label);
    try {
      return await body();
    } finally {
      p.listLock.unlock();
    }
  }

  /**
   * Waits until no release, open or remove of parent `parentId`'s devices is under way (takes
   * and drops its list lock): a caller that found a device file closed, or a queue stopping,
   * learns that the release doing it has finished.
   */
  async settled(parentId: number, label: string): Promise<void> {
    const p = this.parents.get(parentId);
    if (p) await this.#locked(p, label, () => Promise.resolve());
  }

  /** `mdev_create_store` → `mdev_device_create`: the new device's group id. */
  async create(parentId: number, typeId: string, uuidText: string, vendor: MdevVendor) {
    const p = this.liveParent(parentId, vendor);
    if (typeof p === "string") return p;
    const type = p.ops.types.find((t) => t.id === typeId);
    if (!type) return "ENODEV";
    const uuid = uuidFromSysfs(uuidText);
    if (uuid === undefined) return "EINVAL";
    return await this.#locked(p, "mdev.create:list-lock", async (): Promise<number | Errno> => {
      if (p.unregistering) return "ENODEV";
      if (this.#names.has(uuid)) return "EEXIST";
      // A release removing a device holds its group id until it is done, and lookups no
      // longer find that device: a create waits for it, so the id it gets is the one it
      // would get after the removal.
      const idle = () => ![...this.devices.values()].some((o) => o.removing);
      if (!idle()) await this.#k.sched.waitUntil("mdev.create:group-ida", idle);
      if (p.unregistering) return "ENODEV";
      if (this.#names.has(uuid)) return "EEXIST";
      this.#names.add(uuid);
      const mdev = new MdevDevice(uuid, p, type);
      if (this.hostDriver) mdev.driver = "host";
      const r = await p.ops.create!(mdev);
      if (r !== undefined) {
        this.#names.delete(uuid);
        return r;
      }
      // The group IDA: the IOMMU's groups when there is one (retained groups keep their ids).
      mdev.group = lowestFreeId(this.#iommu?.groups ?? this.groups, FIRST_MDEV_GROUP);
      mdev.serial = this.nextSerial++;
      this.groups.set(mdev.group, mdev);
      this.#iommu?.addGroup(mdev.group, "mdev", p.id);
      this.devices.set(uuid, mdev);
      p.mdevList.push(mdev);
      return mdev.group;
    });
  }

  /**
   * `mdev_destroy_store` → `mdev_device_destroy`: EBUSY while the device or its group file is
   * open (with `removeWhileOpenFreesRing`, only after the vendor's remove ran).
   */
  async remove(uuidText: string, vendor: MdevVendor): Promise<Errno | undefined> {
    const d = this.lookup(uuidText, vendor);
    if (typeof d === "string") return d;
    const { quirks } = this.#k;
    return await this.#locked(d.parent, "mdev.remove:list-lock", async () => {
      if (d.gone) return "ENODEV";
      const inUse = d.open || d.groupUsers > 0;
      if (d.groupUsers > 0 && !quirks.removeWhileOpenFreesRing) return "EBUSY";
      const checkFirst = !quirks.removeWhileOpenDestroys && !quirks.removeWhileOpenFreesRing;
      if (checkFirst && d.open) return "EBUSY";
      this.#removing.add(d);
      const r = await d.parent.ops.remove!(d);
      this.#removing.delete(d);
      if (r !== undefined) return r;
      if (quirks.removeWhileOpenFreesRing && inUse) return "EBUSY";
      this.#put(d);
      return undefined;
    });
  }

  /**
   * A process opened the VFIO group file of mdev group `group`: the device is held (a remove
   * is EBUSY until the file is closed). ENODEV for no such group or a device going away.
   */
  openGroup(group: number): Errno | undefined {
    const d = this.groups.get(group);
    if (!d || d.gone || d.removing || this.#removing.has(d)) return "ENODEV";
    d.groupUsers++;
    return undefined;
  }

  /** The VFIO group file of mdev group `group` was closed: a retained group goes now. */
  closeGroup(group: number): void {
    const d = this.groups.get(group);
    if (d) d.groupUsers--;
    if (this.retainedGroups.delete(group)) this.#iommu?.removeGroup(group);
  }

  /** `vfio_mdev_open` on behalf of process `by`: one open per device. */
  async open(uuidText: string, vendor: MdevVendor, by: number): Promise<Errno | undefined> {
    const d = this.lookup(uuidText, vendor);
    if (typeof d === "string") return d;
    return await this.#locked(d.parent, "mdev.open:list-lock", async () => {
      if (d.gone) return "ENODEV";
      if (d.open) return "EBUSY";
      // Opens of a device are serialized by the list lock: the device is open once its
      // vendor's open is done, so nobody sees it open with the vendor's part half done.
      const r = await d.parent.ops.open?.(d, by);
      if (r !== undefined) return r;
      d.open = true;
      d.ref++;
      return undefined;
    });
  }

  /**
   * `vfio_mdev_close`: EINVAL when not open. While the parent unregisters, the device is
   * removed at once (`mdev_put_device` → `release_done`), the parent with its last device.
   * `drop` is the vendor's part of the file's reference counting, run under the list lock
   * before anything is released: it drops the caller's reference and says whether that was
   * the last one (undefined: release), whether others keep the file ("keep"), or why the
   * caller holds no reference (an errno).
   */
  async release(
    uuidText: string,
    vendor: MdevVendor,
    drop: () => Errno | "keep" | undefined = () => undefined,
  ): Promise<Errno | undefined> {
    const d = this.lookup(uuidText, vendor);
    if (typeof d === "string") return d;
    return await this.#locked(d.parent, "mdev.release:list-lock", async () => {
      if (d.gone) return "ENODEV";
      const verdict = drop();
      if (verdict !== undefined) return verdict === "keep" ? undefined : verdict;
      if (!d.open) return "EINVAL";
      // Lookups find the device until its release has run: a caller that failed to find it
      // would otherwise see it gone while its queue still runs.
      await d.parent.ops.release?.(d);
      d.open = false;
      if (d.parent.unregistering) {
        d.removing = true;
        await d.parent.ops.remove!(d);
      }
      this.#put(d);
      if (d.parent.unregistering) this.#put(d);
      return undefined;
    });
  }

  /**
   * `mdev_unregister_device`: no create from now on, closed devices removed at once, open
   * ones left for their release; the parent goes when neither devices nor the vendor's
   * reserved units (its kernel users) are left. The open devices it still waits for.
   */
  async unregister(parentId: number, vendor: MdevVendor): Promise<number | Errno> {
    const p = this.liveParent(parentId, vendor);
    if (typeof p === "string") return p;
    return await this.#locked(p, "mdev.unregister:list-lock", async () => {
      if (p.unregistering) return "ENODEV";
      p.unregisterFrom = this.nextSerial;
      const pending = this.#k.quirks.unregisterLoopDoubleDestroy
        ? await this.#destroyLoopV7(p)
        : await this.#destroyClosed(p);
      this.#goneIfIdle(p);
      return pending;
    });
  }

  /**
   * Whether parent `parentId` is on its way out: it unregisters, holds no reserved units, and
   * every device it has left is being removed by its last release. From then on nothing finds
   * it (the release that is removing its last device removes it too).
   */
  isGoing(parentId: number): boolean {
    const p = this.parents.get(parentId);
    return p !== undefined && p.unregistering && p.ops.units().reserved === 0 &&
      p.mdevList.every((d) => d.removing);
  }

  /** A kernel user of `parentId`'s units left: an unregister waiting for it may complete. */
  reservedReleased(parentId: number): void {
    const p = this.parents.get(parentId);
    if (p) this.#goneIfIdle(p);
  }

  /** An unregistering parent with no device and no reserved units goes. */
  #goneIfIdle(p: MdevParent): void {
    if (p.unregistering && p.mdevList.length === 0 && p.ops.units().reserved === 0) {
      this.#parentGone(p);
    }
  }

  /** Removes every closed device in creation order; the number left open. */
  async #destroyClosed(p: MdevParent): Promise<number> {
    let pending = 0;
    for (const d of [...p.mdevList]) {
      if (d.open) {
        pending++;
      } else {
        await p.ops.remove!(d);
        this.#put(d);
      }
    }
    return pending;
  }

  /**
   * The v7 loop (quirk `unregisterLoopDoubleDestroy`): destroy the first device and put it
   * until the list is empty. An open device survives the first put (its fd holds a
   * reference), so it is destroyed again, and put again until it is off the list under
   * its user.
   */
  async #destroyLoopV7(p: MdevParent): Promise<number> {
    while (p.mdevList.length > 0) {
      const mdev = p.mdevList[0];
      await p.ops.remove!(mdev);
      this.#put(mdev);
    }
    return 0;
  }

  /**
   * `mdev_put_device`: the last reference takes the device off its list and drops its group,
   * which an open group file retains.
   */
  #put(d: MdevDevice): void {
    if (--d.ref > 0 || d.gone) return;
    d.gone = true;
    const list = d.parent.mdevList;
    list.splice(list.indexOf(d), 1);
    this.devices.delete(d.uuid);
    this.groups.delete(d.group);
    if (d.groupUsers > 0) this.retainedGroups.add(d.group);
    else this.#iommu?.removeGroup(d.group);
    this.#names.delete(d.uuid);
    this.#goneIfIdle(d.parent);
  }

  /** The parent's last reference: off the registry, the vendor's unregister completes. */
  #parentGone(p: MdevParent): void {
    if (this.parents.get(p.id) !== p) return;
    this.parents.delete(p.id);
    p.ops.unregistered?.();
  }

  /** The type attributes in sysfs (`mdev_supported_types`). */
  readTypes(parentId: number, vendor: MdevVendor): MdevTypeInfo[] | Errno {
    const p = this.liveParent(parentId, vendor);
    if (typeof p === "string") return p;
    return p.ops.types.map((t) => ({
      id: t.id,
      name: t.name,
      device_api: t.deviceApi,
      available_instances: p.ops.availableInstances(t),
    }));
  }

  /** The abstraction function of the core: its state in the spec's shape. */
  observe(): MdevState {
    const parents = new Map<number, SpecParent>();
    for (const p of this.parents.values()) {
      parents.set(p.id, {
        id: p.id,
        vendor: p.ops.vendor,
        name: p.ops.name,
        types: p.ops.types.map((t) => ({ ...t })),
        ...p.ops.units(),
        unregisterFrom: p.unregisterFrom,
      });
    }
    const devices = new Map<string, SpecDevice>();
    for (const d of this.devices.values()) {
      devices.set(d.uuid, {
        uuid: d.uuid,
        parent: d.parent.id,
        type: d.type.id,
        group: d.group,
        open: d.open,
        serial: d.serial,
      });
    }
    const groups = new Map<number, string>();
    for (const [g, d] of this.groups) groups.set(g, d.uuid);
    return { parents, devices, groups, nextSerial: this.nextSerial };
  }
}

/** What a generic vendor registers with: the `mdev.register` command's arguments. */
export type UnitPoolArgs = Omit<Extract<MdevCommand, { op: "mdev.register" }>, "op" | "parent">;

/**
 * A generic vendor driver (like the v7 sample drivers) with a pool of resource units: a
 * create takes its type's cost or is refused with EBUSY; every other callback succeeds.
 */
export function unitPoolVendor(a: UnitPoolArgs): MdevParentOps {
  let used = 0;
  const free = () => a.capacity - used;
  return {
    vendor: "mdev",
    name: a.name,
    types: mdevTypes(a.name, a.deviceApi, a.types),
    ...(a.create && {
      create: (mdev: MdevDevice) => {
        if (mdev.type.cost > free()) return Promise.resolve<Errno>("EBUSY");
        used += mdev.type.cost;
        return Promise.resolve(undefined);
      },
    }),
    ...(a.remove && {
      remove: (mdev: MdevDevice) => {
        used -= mdev.type.cost;
        return Promise.resolve(undefined);
      },
    }),
    availableInstances: (t) => Math.max(0, Math.floor(free() / t.cost)),
    units: () => ({ capacity: a.capacity, reserved: 0, used }),
  };
}
