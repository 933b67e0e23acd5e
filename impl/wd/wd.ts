/**
 * The `wd` user library (RFCv2 7/7 `wd.c`), the part a sample needs, over a QM function:
 * a queue requested for a process, its memory shared with the device (`wd_mem_share`: pages
 * pinned and mapped at IOVA = virtual address in the device's domain, as type1 MAP_DMA does
 * for the sdmdev's shared domain), messages sent and received through the user QM driver,
 * and everything released again.
 *
 * @module
 */
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import { AddressSpace } from "../mem/mm.ts";
import { closeUserQueue, openUserQueue } from "../hisi/qm_user.ts";
import type { Platform, QmFunction } from "../platform.ts";
import type { HisiQmQueue } from "./hisi_qm_udrv.ts";

/** A received message: the completion and the written-back SQE. */
export interface WdMessage {
  /** The request's SQE as the device wrote it back. */
  readonly sqe: Uint8Array;
  /** Its status (`dw3 & 0xff`). */
  readonly status: number;
}

/** `struct wd_queue` of one process. */
export class WdQueue {
  /** The process's memory. */
  readonly mm: AddressSpace;
  readonly #platform: Platform;
  readonly #fn: QmFunction;
  readonly #queue: HisiQmQueue;
  readonly #shared = new Map<number, number>();
  #tags = 0;

  private constructor(platform: Platform, fn: QmFunction, queue: HisiQmQueue, mm: AddressSpace) {
    this.#platform = platform;
    this.#fn = fn;
    this.#queue = queue;
    this.mm = mm;
  }

  /** `wd_request_queue` for process `pid`, asking for a queue of `algType`. */
  static async request(
    platform: Platform,
    fn: QmFunction,
    pid: number,
    algType: number,
  ): Promise<WdQueue | Errno> {
    const queue = await openUserQueue(platform.kernel, fn, pid, algType);
    if (typeof queue === "string") return queue;
    return new WdQueue(platform, fn, queue, new AddressSpace(pid, platform.kernel.phys));
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

  /** `wd_mem_share`: pins `[vaddr, vaddr + size)` and maps it for the device at IOVA = vaddr. */
  memShare(vaddr: number, size: number): Errno | undefined {
    const pages = Math.max(1, Math.ceil(size / PAGE_SIZE));
    const frames = Array.from({ length: pages }, (_, i) => this.mm.pin(vaddr + i * PAGE_SIZE));
    const r = this.#platform.iommu.map(this.#domain(), vaddr, frames);
    if (r !== undefined) {
      for (let i = 0; i < pages; i++) this.mm.unpin(vaddr + i * PAGE_SIZE);
      return r;
    }
    this.#shared.set(vaddr, pages);
    return undefined;
  }

  /** `wd_mem_unshare`: unmapped (waiting for the device's in-flight accesses), then unpinned. */
  async memUnshare(vaddr: number): Promise<void> {
    const pages = this.#shared.get(vaddr);
    if (pages === undefined) return;
    this.#shared.delete(vaddr);
    await this.#platform.iommu.unmap(this.#domain(), vaddr, pages * PAGE_SIZE);
    for (let i = 0; i < pages; i++) this.mm.unpin(vaddr + i * PAGE_SIZE);
  }

  /** `wd_send`: one message (an SQE); EBUSY when the queue is full. */
  async send(sqe: Uint8Array): Promise<number | Errno> {
    return await this.#queue.send(this.#tags++, true, sqe);
  }

  /** `wd_recv`: the next completed message, or EAGAIN. */
  async recv(): Promise<WdMessage | Errno> {
    const c = await this.#queue.recv();
    if (typeof c === "string") return c;
    const sqe = this.#queue.rings.sqe(c.seq % this.#fn.qm.config.sqDepth);
    return { sqe, status: c.status };
  }

  /** `wd_release_queue`: every share undone, the queue released. */
  async release(): Promise<void> {
    for (const vaddr of [...this.#shared.keys()]) await this.memUnshare(vaddr);
    await closeUserQueue(this.#fn, this.#queue);
  }

  #domain() {
    return this.#fn.group.defaultDomain!;
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
