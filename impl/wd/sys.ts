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
 * @module
 */
import type { Errno, Ret } from "../../spec/types.ts";
import { PAGE_SIZE } from "../../spec/types.ts";
import { FdTable } from "../fd_table.ts";
import type { AddressSpace } from "../mem/mm.ts";
import { mmap as sdmdevMmap, wait as sdmdevWait } from "../sdmdev/fops.ts";
import type { SdmdevQueue } from "../sdmdev/queue.ts";
import { checkFd, type VfioSdmdev } from "../sdmdev/sdmdev.ts";
import type { KernelFile } from "../vfio/files.ts";
import { VfioDeviceFile } from "../vfio/files.ts";
import type { WdHost } from "./host.ts";

/** `(void *)-1` as an unsigned address. */
export const MAP_FAILED = 2 ** 64 - 1;

/** Where mmap places the first device mapping (top-down, as the kernel's default layout). */
const MMAP_TOP = 0x7f00_0000_0000;

/** A device region mapped into the process. */
export interface DeviceMapping {
  /** The mdev it maps. */
  readonly uuid: string;
  /** sdmdev's id of the mapping. */
  readonly id: number;
  /** Bytes. */
  readonly size: number;
  /** What the mapping reaches (the ring memory or the doorbell page). */
  readonly backing: unknown;
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
  readonly #host: WdHost;
  #top = MMAP_TOP;

  /** Process `pid` on `host`'s kernel; its container must exist in `host.vfio`. */
  constructor(host: WdHost, pid: number) {
    const c = host.vfio.containers.get(pid);
    if (!c) throw new Error(`process ${pid} has no VFIO container on this machine`);
    this.#host = host;
    this.pid = pid;
  }

  /** The process's memory. */
  get mm(): AddressSpace {
    return this.#host.vfio.containers.get(this.pid)!.mm;
  }

  /** The machine's kernel objects (for the user driver's view of its mappings). */
  get host(): WdHost {
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
   * mmap(2) of `size` bytes of device fd `fd` at page offset `pgoff`: the address, or
   * {@link MAP_FAILED} with {@link errno} set (ENOMEM past `vm.max_map_count`, EINVAL for what
   * the driver refuses or an fd that is no device).
   */
  mmap(fd: number, pgoff: number, size: number): number {
    const fail = (e: Errno) => {
      this.errno = e;
      return MAP_FAILED;
    };
    const dev = this.#device(fd);
    if (typeof dev === "string") return fail(dev);
    if (this.maps.size >= this.#host.platform.kernel.maxMapCount) return fail("ENOMEM");
    const [uuid, sd, q] = dev;
    const id = sdmdevMmap(sd, q, pgoff, size);
    if (typeof id === "string") return fail(id);
    const len = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    this.#top -= len;
    const addr = this.#top;
    this.maps.set(addr, { uuid, id, size: len, backing: q.vmas.find((m) => m.id === id)!.backing });
    return addr;
  }

  /** munmap(2) of a mapping made by {@link mmap}: EINVAL for any other address. */
  async munmap(addr: number): Promise<Errno | undefined> {
    const m = this.maps.get(addr);
    if (!m) return "EINVAL";
    this.maps.delete(addr);
    return await this.#host.sdmdev.munmap(m.uuid, this.pid, m.id);
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
    if (!file) return "EINVAL";
    const mdev = this.#host.mdev.groups.get(file.group);
    if (!mdev) return "ENODEV";
    const r = this.#host.sdmdev.lookup(mdev.uuid);
    if (typeof r === "string") return r;
    return checkFd(r[1], this.pid) ?? [mdev.uuid, ...r];
  }
}
