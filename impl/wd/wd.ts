/**
 * The `wd` user library (RFCv2 7/7 `wd.c`), the part a sample needs. `wd_request_queue` goes
 * the seed's way: an mdev created on the accelerator's sdmdev parent (its sysfs `create`
 * file), its VFIO group opened and set into the process's container, the type1 IOMMU set
 * (the mdev shares its parent's domain), the device fd taken (sdmdev opens and starts the
 * queue), the queue's doorbell page and ring mmapped for the user QM driver; `wd_mem_share`
 * is VFIO_IOMMU_MAP_DMA at IOVA = virtual address; `wd_release_queue` undoes all of it and
 * removes the mdev.
 *
 * The seed's sdmdev queues are all `alg_type` 0 (RFCv2 6/7 `hisi_qm_get_queue`, L3892: "fix
 * me here"): a queue of another `alg_type` (the ZIP engine's decompression) cannot come from
 * sdmdev, and is taken from the QM directly instead ({@link openUserQueue}; its memory shared
 * by mapping it into the function's default domain).
 *
 * @module
 */
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import type { QmMemory, QmMmio } from "../device/qm_device.ts";
import { closeUserQueue, openUserQueue } from "../hisi/qm_user.ts";
import { AddressSpace } from "../mem/mm.ts";
import type { Platform, QmFunction } from "../platform.ts";
import { mmap } from "../sdmdev/fops.ts";
import type { SdmdevClass } from "../sdmdev/sdmdev.ts";
import type { VfioContainer } from "../vfio/container.ts";
import type { MdevCore } from "../vfio/mdev.ts";
import type { Vfio } from "../vfio/vfio.ts";
import { HisiQmQueue } from "./hisi_qm_udrv.ts";

/** The kernel a wd process talks to: one QM function, its sdmdev, the mdev core and VFIO. */
export interface WdHost {
  /** The machine. */
  readonly platform: Platform;
  /** The accelerator's PCI function. */
  readonly fn: QmFunction;
  /** The mdev core. */
  readonly mdev: MdevCore;
  /** sdmdev, with `fn` registered. */
  readonly sdmdev: SdmdevClass;
  /** The VFIO core, with a container for the process. */
  readonly vfio: Vfio;
}

/** A received message: the completion and the written-back SQE. */
export interface WdMessage {
  /** The request's SQE as the device wrote it back. */
  readonly sqe: Uint8Array;
  /** Its status (`dw3 & 0xff`). */
  readonly status: number;
}

/** How a queue's memory reaches the device and how the queue goes again. */
interface QueuePath {
  /** Maps `[vaddr, vaddr + size)` of the process for the device at IOVA = vaddr. */
  share(vaddr: number, size: number): Promise<Errno | undefined>;
  /** Undoes a share. */
  unshare(vaddr: number, size: number): Promise<void>;
  /** Gives the queue back. */
  release(): Promise<void>;
}

/** The mdev of process `pid` (one queue per process, as the sample uses it). */
function mdevUuid(pid: number): string {
  return `00000000-0000-4000-8000-${pid.toString(16).padStart(12, "0")}`;
}

/** The undo steps of a partly done set-up, run last first. */
async function unwind(steps: (() => Promise<unknown>)[]): Promise<void> {
  for (const undo of steps.reverse()) await undo();
}

/** `struct wd_queue` of one process. */
export class WdQueue {
  /** The process's memory. */
  readonly mm: AddressSpace;
  readonly #platform: Platform;
  readonly #queue: HisiQmQueue;
  readonly #path: QueuePath;
  readonly #shared = new Map<number, number>();
  #tags = 0;

  private constructor(platform: Platform, mm: AddressSpace, queue: HisiQmQueue, path: QueuePath) {
    this.#platform = platform;
    this.mm = mm;
    this.#queue = queue;
    this.#path = path;
  }

  /** `wd_request_queue` for process `pid`, asking for a queue of `algType`. */
  static request(host: WdHost, pid: number, algType: number): Promise<WdQueue | Errno> {
    return algType === 0 ? WdQueue.#throughSdmdev(host, pid) : WdQueue.#direct(host, pid, algType);
  }

  static async #throughSdmdev(host: WdHost, pid: number): Promise<WdQueue | Errno> {
    const { platform, fn, sdmdev, vfio } = host;
    const container = vfio.containers.get(pid);
    if (!container) return "EINVAL";
    const uuid = mdevUuid(pid);
    const undo: (() => Promise<unknown>)[] = [];
    const step = async (r: Promise<Errno | number | undefined> | Errno | number | undefined) => {
      const v = await r;
      if (typeof v === "string") throw v;
      return v;
    };
    try {
      const group = platform.iommu.groups.get(await step(sdmdev.create(fn.id, uuid)) as number)!;
      undo.push(() => host.mdev.remove(uuid, "sdmdev"));
      await step(vfio.openGroup(container, group));
      undo.push(() => vfio.closeGroup(container, group));
      await step(vfio.attach(container, group));
      if (!container.iommu) await step(container.setIommu());
      await step(vfio.getDeviceFd(container, group));
      undo.push(() => vfio.closeDeviceFd(container, group));
      const found = await sdmdev.fd(uuid, pid);
      if (typeof found === "string") throw found;
      const [sd, q] = found;
      const page = await step(mmap(sd, q, 0, PAGE_SIZE)) as number;
      const ring = await step(mmap(sd, q, 1, fn.qm.ringBytes)) as number;
      undo.push(() => sdmdev.munmap(uuid, pid, page), () => sdmdev.munmap(uuid, pid, ring));
      const backing = (id: number) => q.vmas.find((m) => m.id === id)!.backing;
      const qn = sd.ops.hw(q).qn;
      const mem = backing(ring) as QmMemory;
      const queue = new HisiQmQueue(
        platform.kernel,
        pid,
        qn,
        mem,
        backing(page) as QmMmio,
        fn.qm.config,
      );
      return new WdQueue(platform, container.mm, queue, sdmdevPath(container, undo));
    } catch (e) {
      if (typeof e !== "string") throw e;
      await unwind(undo);
      return e as Errno;
    }
  }

  static async #direct(host: WdHost, pid: number, algType: number): Promise<WdQueue | Errno> {
    const { platform, fn } = host;
    const queue = await openUserQueue(platform.kernel, fn, pid, algType);
    if (typeof queue === "string") return queue;
    const mm = new AddressSpace(pid, platform.kernel.phys);
    return new WdQueue(platform, mm, queue, directPath(host, mm, queue));
  }

  /** The queue number (what the device's doorbells name). */
  get qn(): number {
    return this.#queue.qn;
  }

  /** Copies `data` into process memory at `vaddr`. */
  write(vaddr: number, data: Uint8Array): void {
    this.#pages(vaddr, data.length, (frame, offset, at, n) => {
      this.#platform.kernel.phys.write(frame, offset, data.subarray(at, at + n));
    });
  }

  /** Reads `length` bytes of process memory at `vaddr`. */
  read(vaddr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.#pages(vaddr, length, (frame, offset, at, n) => {
      this.#platform.kernel.phys.readInto(frame, offset, out.subarray(at, at + n));
    });
    return out;
  }

  /** `wd_mem_share`: `[vaddr, vaddr + size)` reachable by the device at IOVA = vaddr. */
  async memShare(vaddr: number, size: number): Promise<Errno | undefined> {
    const bytes = Math.max(1, Math.ceil(size / PAGE_SIZE)) * PAGE_SIZE;
    const r = await this.#path.share(vaddr, bytes);
    if (r === undefined) this.#shared.set(vaddr, bytes);
    return r;
  }

  /** `wd_mem_unshare`: unmapped (waiting for the device's in-flight accesses), then unpinned. */
  async memUnshare(vaddr: number): Promise<void> {
    const bytes = this.#shared.get(vaddr);
    if (bytes === undefined) return;
    this.#shared.delete(vaddr);
    await this.#path.unshare(vaddr, bytes);
  }

  /** `wd_send`: one message (an SQE); EBUSY when the queue is full. */
  async send(sqe: Uint8Array): Promise<number | Errno> {
    return await this.#queue.send(this.#tags++, true, sqe);
  }

  /** `wd_recv`: the next completed message, or EAGAIN. */
  async recv(): Promise<WdMessage | Errno> {
    const c = await this.#queue.recv();
    if (typeof c === "string") return c;
    const sqe = this.#queue.rings.sqe(c.seq % this.#queue.rings.sqTail.depth);
    return { sqe, status: c.status };
  }

  /** `wd_release_queue`: every share undone, the queue released. */
  async release(): Promise<void> {
    for (const vaddr of [...this.#shared.keys()]) await this.memUnshare(vaddr);
    await this.#path.release();
  }

  #pages(
    vaddr: number,
    length: number,
    f: (frame: ReturnType<AddressSpace["page"]>, offset: number, at: number, n: number) => void,
  ): void {
    for (let at = 0; at < length;) {
      const va = vaddr + at;
      const offset = va % PAGE_SIZE;
      const n = Math.min(length - at, PAGE_SIZE - offset);
      f(this.mm.page(va - offset), offset, at, n);
      at += n;
    }
  }
}

/** Shares are MAP_DMA into the container; release undoes the set-up, last step first. */
function sdmdevPath(container: VfioContainer, undo: (() => Promise<unknown>)[]): QueuePath {
  return {
    share: (vaddr, size) => container.mapDma(vaddr, size, vaddr),
    unshare: async (vaddr, size) => void await container.unmapDma(vaddr, size),
    release: () => unwind(undo),
  };
}

/** Shares pin the pages and map them into the function's default domain directly. */
function directPath(host: WdHost, mm: AddressSpace, queue: HisiQmQueue): QueuePath {
  const { platform, fn } = host;
  const domain = fn.group.defaultDomain!;
  return {
    share(vaddr, size) {
      const pages = size / PAGE_SIZE;
      const frames = Array.from({ length: pages }, (_, i) => mm.pin(vaddr + i * PAGE_SIZE));
      const r = platform.iommu.map(domain, vaddr, frames);
      if (r !== undefined) { for (let i = 0; i < pages; i++) mm.unpin(vaddr + i * PAGE_SIZE); }
      return Promise.resolve(r);
    },
    async unshare(vaddr, size) {
      await platform.iommu.unmap(domain, vaddr, size);
      for (let i = 0; i < size / PAGE_SIZE; i++) mm.unpin(vaddr + i * PAGE_SIZE);
    },
    release: async () => void await closeUserQueue(fn, queue),
  };
}
