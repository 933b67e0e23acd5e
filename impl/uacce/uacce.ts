/**
 * The uacce core (upstream drivers/misc/uacce/uacce.c, after its fixes for parent removal):
 * registration with SVA negotiated, the file operations (open → a queue in INIT, release, the
 * START_Q and PUT_Q ioctls, mmap of the MMIO and DUS regions, the VMAs' close), the sysfs
 * attributes, and `uacce_remove`, which turns the queues of open files ZOMBIE and zaps their
 * mappings.
 *
 * Locks, as upstream has them: `uacce->mutex` serializes open, release, the ioctls and remove
 * (open checks `uacce->parent` under it, so it never gets a device remove is tearing down);
 * `q->mutex` serializes mmap with the queue's stop and with the drop of a mapping (mmap runs
 * under mmap_lock, which open's SVA bind takes under `uacce->mutex`, so mmap cannot take
 * `uacce->mutex`). A close or munmap drops its reference and, with the last one, releases the
 * file under both, in that order (upstream's release runs from the last `fput`, after the
 * drop): the drop and the release are one step, as the spec's close and munmap are.
 * Where this core differs from upstream (PUT_Q gives the queue back only when nothing maps it;
 * remove zaps before it frees), spec/uacce.ts says why. A call looks its fd up again where it
 * takes effect (under its lock), so a close racing it comes either before it (EBADF) or after
 * it, never in its middle.
 *
 * Quirks: `removeVsOpenNoLock` (open checks the parent without `uacce->mutex`),
 * `releaseVsRemoveRace` (release decides under `q->mutex` alone and puts the queue later),
 * `putQueueFreesMapped` (PUT_Q calls `put_queue` whatever maps the queue).
 *
 * @module
 */
import type { Errno, Ret } from "../../spec/types.ts";
import { UACCE_DEV_SVA } from "../../spec/uacce.ts";
import type { Kernel } from "../kernel.ts";
import type { SvaPasids } from "../sdmdev/sva.ts";
import { dir, liveDir, roAttr, type SysfsNode } from "../sysfs.ts";
import type { KernelFile } from "../vfio/files.ts";
import { UacceDevice, UacceFile, type UacceInterface, UacceQueue } from "./queue.ts";

/** `uacce->ops`, which remove clears: its user after a removal dereferences NULL. */
function opsOf(u: UacceDevice, where: string) {
  if (u.ops === null) throw new TypeError(`${where}: NULL uacce->ops (the device was removed)`);
  return u.ops;
}

function isInt(v: unknown, min: number): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min;
}

/** `dev_name` of a device: `<name>-<dev>`. */
function deviceName(u: UacceDevice): string {
  return `${u.iface.name}-${u.dev}`;
}

/** The sysfs attributes of a device. */
export interface UacceAttrs {
  /** `api`. */
  readonly api: string;
  /** `flags`. */
  readonly flags: number;
  /** `available_instances`. */
  readonly available_instances: number;
  /** `algorithms`. */
  readonly algorithms: string;
  /** `region_mmio_size`. */
  readonly region_mmio_size: number;
  /** `region_dus_size`. */
  readonly region_dus_size: number;
}

/** An open `/dev/<name>-<dev>` as a process's fd table holds it. */
export class UacceFd implements KernelFile {
  /** Kind tag. */
  readonly kind = "uacce";

  /** The fd of file `id` of `core`. */
  constructor(readonly core: UacceCore, readonly id: number) {}

  /** The close of the fd (the file stays while a mapping holds it). */
  release(): Promise<Errno | undefined> {
    return this.core.close(this.id);
  }
}

/** A UACCE ioctl: START_Q, PUT_Q, or the driver's SET_QP_CTX with its `qc_type`. */
export type UacceIoctl = "startQ" | "putQ" | { readonly setQpCtx: number };

/** The uacce class: its devices (the xarray of minors) and the open files. */
export class UacceCore {
  /** Registered devices by minor (`uacce_xa`). */
  readonly xa: Map<number, UacceDevice> = new Map();
  /** Files held by an fd or a VMA, by id (the processes' side, as far as uacce sees it). */
  readonly files: Map<number, UacceFile> = new Map();
  /** The minor the next device gets. */
  nextDev = 1;
  /** The id the next file gets. */
  nextFile = 1;
  readonly #k: Kernel;
  readonly #sva: SvaPasids;

  /**
   * The class over the kernel and its SVA layer; `/sys/class/uacce` lists its devices as
   * `<name>-<dev>`, each with its attributes ({@link UacceAttrs}).
   */
  constructor(kernel: Kernel, sva: SvaPasids) {
    this.#k = kernel;
    this.#sva = sva;
    kernel.sysfs.mount(
      "/sys/class/uacce",
      liveDir(() => [...this.xa.values()].map((u) => [deviceName(u), this.#classDir(u)])),
    );
  }

  #classDir(u: UacceDevice): SysfsNode {
    const attr = (name: keyof UacceAttrs) => roAttr(() => this.attrs(u)[name]);
    return dir({
      api: attr("api"),
      flags: attr("flags"),
      available_instances: attr("available_instances"),
      algorithms: attr("algorithms"),
      region_mmio_size: attr("region_mmio_size"),
      region_dus_size: attr("region_dus_size"),
    });
  }

  /** The registered device of `parent` (the char device node a process opens). */
  lookup(parent: number): UacceDevice | undefined {
    for (const u of this.xa.values()) if (u.parent === parent) return u;
    return undefined;
  }

  /**
   * `uacce_alloc` + `uacce_register` for `parent`: SVA is kept only if `svaCapable` (the
   * IOMMU feature could be enabled), else dropped from the flags. EEXIST when registered.
   */
  register(parent: number, iface: UacceInterface, svaCapable: boolean): UacceDevice | Errno {
    if (this.lookup(parent)) return "EEXIST";
    const flags = iface.flags & UACCE_DEV_SVA && svaCapable ? UACCE_DEV_SVA : 0;
    const u = new UacceDevice(this.nextDev++, parent, flags, iface);
    this.xa.set(u.dev, u);
    this.#k.sysfs.mount(`/dev/${deviceName(u)}`, {
      kind: "dev",
      open: async (pid) => {
        const id = await this.openDevice(u, pid);
        return typeof id === "string" ? id : new UacceFd(this, id);
      },
    });
    return u;
  }

  /**
   * `uacce_fops_open` by process `by`: the new file's id. ENODEV once the device is removed,
   * EBUSY without a free hardware queue. Quirk `removeVsOpenNoLock`: no `uacce->mutex`, so a
   * remove can run between the parent check and `get_queue`.
   */
  open(parent: number, by: number): Promise<number | Errno> {
    const u = this.lookup(parent);
    if (!u) return Promise.resolve("ENODEV");
    return this.openDevice(u, by);
  }

  /** {@link UacceCore.open} of device `u` (its char device node): ENODEV once removed. */
  openDevice(u: UacceDevice, by: number): Promise<number | Errno> {
    if (this.#k.quirks.removeVsOpenNoLock) return this.#open(u, by);
    return u.mutex.hold(this.#k.sched, "uacce.open:uacce-mutex", () => this.#open(u, by));
  }

  async #open(u: UacceDevice, by: number): Promise<number | Errno> {
    if (u.parent === null) return "ENODEV";
    const parent = u.parent;
    // kzalloc of the queue and, with SVA, iommu_sva_bind_device: both may sleep.
    await this.#k.sched.point("uacce.open:parent-checked");
    const pasid = u.flags & UACCE_DEV_SVA ? this.#sva.bind(by) : 0;
    if (typeof pasid === "string") return pasid;
    const q = new UacceQueue(u, parent, by, pasid);
    const r = await opsOf(u, "uacce_fops_open").getQueue(q);
    if (r !== undefined) return r;
    u.queues.push(q);
    const f = new UacceFile(this.nextFile++, q);
    this.files.set(f.id, f);
    return f.id;
  }

  /** The file `id` if its fd is open. */
  #fd(id: number): UacceFile | undefined {
    const f = this.files.get(id);
    return f?.fd ? f : undefined;
  }

  /** close of the fd: EBADF unless open; the file is released once no VMA holds it. */
  close(id: number): Promise<Errno | undefined> {
    const f = this.#fd(id);
    if (!f) return Promise.resolve("EBADF");
    return this.#drop(f, () => {
      if (!f.fd) return "EBADF";
      f.fd = false;
    });
  }

  /**
   * munmap (`uacce_vma_close` clears `q->qfrs[region]`): EINVAL for no such mapping; the file
   * is released once neither its fd nor another VMA holds it.
   */
  munmap(id: number, map: number): Promise<Errno | undefined> {
    const f = this.files.get(id);
    if (!f) return Promise.resolve("EINVAL");
    return this.#drop(f, () => {
      const i = f.vmas.findIndex((v) => v.id === map);
      if (i < 0) return "EINVAL";
      f.vmas.splice(i, 1);
    });
  }

  /**
   * Drops a reference of `f` (`drop`, an errno if there is none to drop) and releases the file
   * with its last one (`fput` → `uacce_fops_release`). Drop and release happen under
   * `uacce->mutex` and `q->mutex` in one go, so no open, ioctl, mmap or removal sees a file
   * gone whose queue still holds its queue pair. Quirk `releaseVsRemoveRace`: the release
   * decides under `q->mutex` alone whether the queue still holds anything, and acts on that
   * later, without `uacce->mutex`: a remove in between has put the queue and cleared the ops.
   */
  #drop(f: UacceFile, drop: () => Errno | undefined): Promise<Errno | undefined> {
    const q = f.q;
    const { sched } = this.#k;
    if (this.#k.quirks.releaseVsRemoveRace) return this.#dropUnlocked(f, drop);
    return q.uacce.mutex.hold(
      sched,
      "uacce.release:uacce-mutex",
      () =>
        q.mutex.hold(sched, "uacce.release:q-mutex", async () => {
          const e = drop();
          if (e !== undefined || !f.unheld) return e;
          this.#forget(f);
          await this.#stop(q, "uacce_fops_release");
          if (q.held) await this.#put(q, "uacce_fops_release");
          return undefined;
        }),
    );
  }

  /** {@link UacceCore.#drop} as quirk `releaseVsRemoveRace` has it. */
  async #dropUnlocked(f: UacceFile, drop: () => Errno | undefined): Promise<Errno | undefined> {
    const q = f.q;
    let held = false;
    const e = await q.mutex.hold(this.#k.sched, "uacce.release:q-mutex", () => {
      const e = drop();
      if (e !== undefined || !f.unheld) return e;
      this.#forget(f);
      held = q.held;
    });
    if (held) {
      await this.#k.sched.point("uacce.release:checked");
      await this.#stop(q, "uacce_fops_release");
      await this.#put(q, "uacce_fops_release");
    }
    return e;
  }

  /** A released file leaves the files and its queue the device's list. */
  #forget(f: UacceFile): void {
    this.files.delete(f.id);
    const { queues } = f.q.uacce;
    queues.splice(queues.indexOf(f.q), 1);
  }

  /** The queue leaves INIT/STARTED for ZOMBIE (under `q->mutex`); a running one is stopped. */
  async #stop(q: UacceQueue, where: string): Promise<void> {
    const started = await q.mutex.hold(this.#k.sched, "uacce.stop:q-mutex", () => {
      const was = q.state === "STARTED";
      q.state = "ZOMBIE";
      return was;
    });
    if (started) await opsOf(q.uacce, where).stopQueue(q);
  }

  /** `put_queue`: the hardware queue and its DMA memory go back to the driver. */
  async #put(q: UacceQueue, where: string): Promise<void> {
    await opsOf(q.uacce, where).putQueue(q);
    q.held = false;
  }

  /**
   * The START_Q and PUT_Q ioctls (`uacce_fops_unl_ioctl`, under `uacce->mutex`): EBADF, ENXIO
   * for a queue neither INIT nor STARTED, EINVAL for a START_Q of a started queue. PUT_Q gives
   * the queue back at once only when the file maps nothing (quirk `putQueueFreesMapped`:
   * always, as upstream's `uacce_put_queue`). Any other command is the driver's (`ops->ioctl`):
   * SET_QP_CTX returns the queue pair's number.
   */
  ioctl(id: number, cmd: UacceIoctl): Promise<Ret> {
    const f = this.#fd(id);
    if (!f) return Promise.resolve({ err: "EBADF" });
    const q = f.q;
    return q.uacce.mutex.hold(this.#k.sched, "uacce.ioctl:uacce-mutex", async (): Promise<Ret> => {
      if (!f.fd) return { err: "EBADF" };
      if (q.state === "ZOMBIE") return { err: "ENXIO" };
      if (typeof cmd === "object") {
        const qn = opsOf(q.uacce, "uacce_fops_unl_ioctl").setQpCtx(q, cmd.setQpCtx);
        return typeof qn === "string" ? { err: qn } : { ok: qn };
      }
      if (cmd === "startQ") {
        if (q.state !== "INIT") return { err: "EINVAL" };
        const r = await opsOf(q.uacce, "uacce_start_queue").startQueue(q);
        if (r !== undefined) return { err: r };
        q.state = "STARTED";
        return { ok: 0 };
      }
      await this.#stop(q, "uacce_put_queue");
      if (f.vmas.length === 0 || this.#k.quirks.putQueueFreesMapped) {
        await this.#put(q, "uacce_put_queue");
      }
      return { ok: 0 };
    });
  }

  /**
   * `uacce_fops_poll` of file `id` (the wait already slept): whether the queue was updated
   * (`is_q_updated`); EBADF, ENXIO for a ZOMBIE queue (POLLERR).
   */
  poll(id: number): boolean | Errno {
    const f = this.#fd(id);
    if (!f) return "EBADF";
    if (f.q.state === "ZOMBIE") return "ENXIO";
    return opsOf(f.q.uacce, "uacce_fops_poll").isQUpdated(f.q);
  }

  /**
   * `uacce_fops_mmap` of region `pgoff` (under `q->mutex`): the mapping's id. EBADF; EINVAL for
   * another region; ENXIO unless INIT or STARTED; EEXIST when the region is mapped; the
   * driver's EINVAL for a size it does not map.
   */
  mmap(id: number, pgoff: number, size: number): Promise<number | Errno> {
    const f = this.#fd(id);
    if (!f) return Promise.resolve("EBADF");
    const q = f.q;
    return q.mutex.hold(this.#k.sched, "uacce.mmap:q-mutex", () => {
      if (!f.fd) return "EBADF";
      if (pgoff !== 0 && pgoff !== 1) return "EINVAL";
      if (q.state === "ZOMBIE") return "ENXIO";
      if (f.vmas.some((v) => v.region === pgoff)) return "EEXIST";
      if (!isInt(size, 1)) return "EINVAL";
      const backing = opsOf(q.uacce, "uacce_fops_mmap").mmap(q, pgoff, size);
      if (typeof backing === "string") return backing;
      let vid = 1;
      while (f.vmas.some((v) => v.id === vid)) vid++;
      f.vmas.push({ id: vid, region: pgoff, size, zapped: false, backing });
      f.vmas.sort((a, b) => a.id - b.id);
      return vid;
    });
  }

  /**
   * The process touches mapping `map` of file `id`: EINVAL for no such mapping, EFAULT once
   * zapped. A page the mapping still reaches after it was freed is a use-after-free.
   */
  access(id: number, map: number): Errno | undefined {
    const vma = this.files.get(id)?.vmas.find((v) => v.id === map);
    if (!vma) return "EINVAL";
    if (vma.zapped) return "EFAULT";
    const { backing } = vma;
    if (backing.kind === "mmio") {
      backing.regs.readl(0);
      return undefined;
    }
    const freed = backing.frames.find((fr) => fr.owner === null);
    if (freed) {
      this.#k.emit({ fault: "use-after-free", where: "user access to DUS", file: id, map });
    }
    return undefined;
  }

  /**
   * `uacce_remove` (the parent's PCI remove, which cannot fail), under `uacce->mutex`: in one
   * step the device leaves the xarray, its `parent` is cleared, every queue becomes ZOMBIE and
   * every mapping of its files is zapped (upstream takes each `q->mutex` there to keep mmap
   * out; no mmap runs in the middle of that step here); then each queue that ran is stopped and
   * each is put, and `ops` is cleared. ENODEV for a device removed already (the driver core
   * runs one remove per bound device).
   */
  remove(u: UacceDevice): Promise<Errno | undefined> {
    return u.mutex.hold(this.#k.sched, "uacce.remove:uacce-mutex", async () => {
      if (u.parent === null) return "ENODEV";
      this.xa.delete(u.dev);
      u.parent = null;
      const ran = u.queues.filter((q) => q.state === "STARTED");
      for (const q of u.queues) q.state = "ZOMBIE";
      for (const f of this.files.values()) {
        if (f.q.uacce === u) { for (const v of f.vmas) v.zapped = true; }
      }
      for (const q of [...u.queues]) {
        if (ran.includes(q)) await opsOf(u, "uacce_remove").stopQueue(q);
        if (q.held) await this.#put(q, "uacce_remove");
      }
      u.ops = null;
      return undefined;
    });
  }

  /** The sysfs attributes of `u`. */
  attrs(u: UacceDevice): UacceAttrs {
    const { api, algorithms, mmioSize, dusSize } = u.iface;
    return {
      api,
      flags: u.flags,
      available_instances: opsOf(u, "available_instances_show").getAvailableInstances(),
      algorithms,
      region_mmio_size: mmioSize,
      region_dus_size: dusSize,
    };
  }
}
