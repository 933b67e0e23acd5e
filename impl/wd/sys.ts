/**
 * What a process using the wd library calls (the libc and system calls of `wd.c`): paths in
 * the kernel's namespace (sysfs attributes read and written, device nodes opened), its file
 * descriptor table, ioctls on the files, mmap of the device's regions and the WAIT ioctl.
 * The library reaches the kernel only through here: no path is known in advance, every file
 * is a descriptor.
 *
 * mmap follows the C interface: it returns an address, or {@link MAP_FAILED} with `errno` set,
 * so that a caller's check of the pointer is the caller's (quirk `mmapFailureUnchecked`).
 *
 * A device fd is either a VFIO device (an sdmdev mdev: mmap by page offset, the WAIT ioctl) or
 * a uacce char device (mmap of its regions, its ioctls, poll(2)); each call acts on the kind of
 * file the fd holds, as the kernel's file operations do.
 *
 * @module
 */
import type { Errno, Ret } from "../../spec/types.ts";
import { PAGE_SIZE } from "../../spec/types.ts";
import { QmMemory } from "../device/qm_device.ts";
import { FdTable } from "../fd_table.ts";
import type { AddressSpace } from "../mem/mm.ts";
import { mmap as sdmdevMmap, wait as sdmdevWait } from "../sdmdev/fops.ts";
import type { SdmdevQueue } from "../sdmdev/queue.ts";
import { checkFd, type VfioSdmdev } from "../sdmdev/sdmdev.ts";
import type { UacceBacking } from "../uacce/queue.ts";
import { UacceFd, type UacceIoctl } from "../uacce/uacce.ts";
import type { KernelFile } from "../vfio/files.ts";
import { VfioDeviceFile } from "../vfio/files.ts";
import type { WdKernel } from "./host.ts";

/** `(void *)-1` as an unsigned address. */
export const MAP_FAILED = 2 ** 64 - 1;

/** Where mmap places the first device mapping (top-down, as the kernel's default layout). */
const MMAP_TOP = 0x7f00_0000_0000;

/** A device region mapped into the process. */
export interface DeviceMapping {
  /** Bytes. */
  readonly size: number;
  /** What the mapping reaches (the ring memory or the doorbell page). */
  readonly backing: unknown;
  /** munmap(2) of it: the driver's VMA close. */
  readonly unmap: () => Promise<Errno | undefined>;
  /** Whether the kernel zapped it (a uacce device's removal): it reaches nothing. */
  readonly zapped: () => boolean;
}

/** Nothing the device will report during a wait (the process sleeps through scheduling). */
const NO_FUTURE = { at: -1, post: () => {} };

/** One process's view of the kernel. */
export class WdSys {
  /** Process id. */
  readonly pid: number;
  /** Its open files. */
  readonly fds: FdTable = new FdTable();
  /** Its device mappings by address. */
  readonly maps: Map<number, DeviceMapping> = new Map();
  /** `errno` of the last failed mmap. */
  errno: Errno | undefined;
  readonly #host: WdKernel;
  readonly #mm: AddressSpace;
  #top = MMAP_TOP;

  /**
   * Process `pid` on `host`'s kernel; it must be one of the machine's processes (on sdmdev,
   * with its container in `host.vfio`).
   */
  constructor(host: WdKernel, pid: number) {
    const mm = host.backend === "sdmdev" ? host.vfio.containers.get(pid)?.mm : host.mms.get(pid);
    if (!mm) throw new Error(`process ${pid} does not run on this machine`);
    this.#host = host;
    this.#mm = mm;
    this.pid = pid;
  }

  /** The process's memory. */
  get mm(): AddressSpace {
    return this.#mm;
  }

  /** The machine's kernel objects (for the user driver's view of its mappings). */
  get host(): WdKernel {
    return this.#host;
  }

  /** Reads a sysfs attribute: its text without the trailing newline, or the errno. */
  readAttr(path: string): string | Errno {
    const r = this.#host.platform.kernel.sysfs.read(path);
    return typeof r === "string" ? r.replace(/\n$/, "") : r.errno;
  }

  /** Writes a sysfs attribute. */
  writeAttr(path: string, value: string): Promise<Errno | undefined> {
    return this.#host.platform.kernel.sysfs.write(path, value);
  }

  /** The entries of a sysfs directory. */
  list(path: string): string[] | Errno {
    return this.#host.platform.kernel.sysfs.list(path);
  }

  /** open(2) of a device node: the new fd. */
  async open(path: string): Promise<number | Errno> {
    const node = this.#host.platform.kernel.sysfs.lookup(path);
    if (typeof node === "string") return node;
    if (node.kind !== "dev") return "EINVAL";
    const file = await node.open(this.pid) as KernelFile | Errno;
    if (typeof file === "string") return file;
    return this.fds.install(file);
  }

  /** close(2). */
  close(fd: number): Promise<Errno | undefined> {
    return this.fds.close(fd);
  }

  /** The file at `fd` if it is a `T`. */
  file<T extends KernelFile>(fd: number, kind: abstract new (...a: never[]) => T): T | undefined {
    const f = this.fds.get(fd);
    return f instanceof kind ? f : undefined;
  }

  /**
   * mmap(2) of `size` bytes of device fd `fd` at page offset `pgoff` (on a uacce fd, the
   * region): the address, or {@link MAP_FAILED} with {@link errno} set (ENOMEM past
   * `vm.max_map_count`, EINVAL for what the driver refuses or an fd that is no device, the
   * uacce core's errno).
   */
  async mmap(fd: number, pgoff: number, size: number): Promise<number> {
    const fail = (e: Errno) => {
      this.errno = e;
      return MAP_FAILED;
    };
    const uacce = this.file(fd, UacceFd);
    const dev = uacce ? undefined : this.#device(fd);
    if (typeof dev === "string") return fail(dev);
    if (this.maps.size >= this.#host.platform.kernel.maxMapCount) return fail("ENOMEM");
    const mapping = uacce
      ? await this.#uacceMap(uacce, pgoff, size)
      : this.#sdmdevMap(dev!, pgoff, size);
    if (typeof mapping === "string") return fail(mapping);
    this.#top -= mapping.size;
    this.maps.set(this.#top, mapping);
    return this.#top;
  }

  #sdmdevMap(
    [uuid, sd, q]: [string, VfioSdmdev, SdmdevQueue],
    pgoff: number,
    size: number,
  ): DeviceMapping | Errno {
    const host = this.#host;
    if (host.backend !== "sdmdev") return "EINVAL";
    const id = sdmdevMmap(sd, q, pgoff, size);
    if (typeof id === "string") return id;
    return {
      size: Math.ceil(size / PAGE_SIZE) * PAGE_SIZE,
      backing: q.vmas.find((m) => m.id === id)!.backing,
      unmap: () => host.sdmdev.munmap(uuid, this.pid, id),
      zapped: () => false,
    };
  }

  async #uacceMap(f: UacceFd, pgoff: number, size: number): Promise<DeviceMapping | Errno> {
    const id = await f.core.mmap(f.id, pgoff, size);
    if (typeof id === "string") return id;
    const vma = f.core.files.get(f.id)!.vmas.find((v) => v.id === id)!;
    return {
      size: Math.ceil(size / PAGE_SIZE) * PAGE_SIZE,
      backing: this.#cpuView(vma.backing),
      unmap: () => f.core.munmap(f.id, id),
      zapped: () => vma.zapped,
    };
  }

  /** What the process's loads and stores through a uacce mapping reach. */
  #cpuView(b: UacceBacking): unknown {
    return b.kind === "mmio" ? b.regs : new QmMemory(this.#host.platform.kernel.phys, b.frames);
  }

  /**
   * A load or store through the mapping at `addr`: EFAULT once the kernel zapped it (the
   * SIGBUS the process would take), EINVAL for an address {@link mmap} did not return.
   */
  access(addr: number): Errno | undefined {
    const m = this.maps.get(addr);
    if (!m) return "EINVAL";
    return m.zapped() ? "EFAULT" : undefined;
  }

  /** Mappings the kernel has not zapped: those that reach the device. */
  get reaching(): number {
    return [...this.maps.values()].filter((m) => !m.zapped()).length;
  }

  /** munmap(2) of a mapping made by {@link mmap}: EINVAL for any other address. */
  async munmap(addr: number): Promise<Errno | undefined> {
    const m = this.maps.get(addr);
    if (!m) return "EINVAL";
    this.maps.delete(addr);
    return await m.unmap();
  }

  /**
   * The kernel's part of the process's exit (`do_exit`), whatever the library was doing:
   * `exit_mm` unmaps every device mapping, then `exit_files` closes every fd. A VFIO device
   * file holds its group and container (their releases wait for its last `fput`, the kernel's
   * `container_users`), so device files are released first, then the rest lowest first. The
   * library's state dies with the process: the caller starts a new one.
   */
  async exit(): Promise<void> {
    for (const addr of [...this.maps.keys()]) await this.munmap(addr);
    const fds = this.fds.numbers();
    const device = (fd: number) => (this.file(fd, VfioDeviceFile) ? 0 : 1);
    for (const fd of [...fds].sort((a, b) => device(a) - device(b))) await this.close(fd);
  }

  /** ioctl(2) of a uacce command on fd `fd`: EINVAL for an fd that is no uacce device. */
  ioctl(fd: number, cmd: UacceIoctl): Promise<Ret> {
    const f = this.file(fd, UacceFd);
    return f ? f.core.ioctl(f.id, cmd) : Promise.resolve({ err: "EINVAL" });
  }

  /**
   * poll(2) of uacce fd `fd` for input, `timeoutMs` milliseconds (0 here: forever, as the
   * library's API has it): the process sleeps one scheduling decision, as in {@link wait}, then
   * ok(1) if the queue was updated, ok(0) when a bounded wait timed out; EAGAIN for a forever
   * wait nothing woke (a signal); EINVAL for an fd that is no uacce device (also once closed
   * while it slept, as {@link wait}), the core's errno (a ZOMBIE queue).
   */
  async poll(fd: number, timeoutMs: number): Promise<Ret> {
    if (!this.file(fd, UacceFd)) return { err: "EINVAL" };
    await this.#host.platform.kernel.sched.point("wd.poll:sleeping");
    const f = this.file(fd, UacceFd); // closed while it slept?
    const r = f ? f.core.poll(f.id) : "EINVAL";
    if (typeof r === "string") return { err: r };
    return r ? { ok: 1 } : timeoutMs === 0 ? { err: "EAGAIN" } : { ok: 0 };
  }

  /**
   * VFIO_SDMDEV_CMD_WAIT on device fd `fd` for `jiffies` (0: forever): the process sleeps (the
   * scheduler runs whatever it chooses meanwhile: the device, the IRQ thread, other
   * processes), then the wait ends woken by an update or timed out. ok(jiffies left, 0 on
   * timeout or a forever wait woken); EAGAIN for a forever wait nothing woke.
   */
  async wait(fd: number, jiffies: number): Promise<Ret> {
    const dev = this.#device(fd);
    if (typeof dev === "string") return { err: dev };
    await this.#host.platform.kernel.sched.point("wd.wait:sleeping");
    const now = this.#device(fd); // closed or removed while it slept?
    return typeof now === "string" ? { err: now } : sdmdevWait(now[1], now[2], jiffies, NO_FUTURE);
  }

  /** The QM queue number behind device fd `fd` (the doorbell page it maps is that queue's). */
  queueNumber(fd: number): number | Errno {
    const dev = this.#device(fd);
    return typeof dev === "string" ? dev : dev[1].ops.hw(dev[2]).qn;
  }

  /** The mdev, sdmdev and queue behind device fd `fd` (vfio_mdev's dispatch to its parent). */
  #device(fd: number): [string, VfioSdmdev, SdmdevQueue] | Errno {
    const file = this.file(fd, VfioDeviceFile);
    const host = this.#host;
    if (!file || host.backend !== "sdmdev") return "EINVAL";
    const mdev = host.mdev.groups.get(file.group);
    if (!mdev) return "ENODEV";
    const r = host.sdmdev.lookup(mdev.uuid);
    if (typeof r === "string") return r;
    return checkFd(r[1], this.pid) ?? [mdev.uuid, ...r];
  }
}
