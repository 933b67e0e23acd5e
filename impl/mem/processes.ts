/**
 * The processes of the system as far as memory goes: each one's address space and the
 * process it was forked from; fork (kernel/fork.c dup_mm) and a process's store to a page.
 *
 * @module
 */
import { pageAligned } from "../../spec/iommu.ts";
import type { Errno } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import type { AddressSpace } from "./mm.ts";

/** One process: its address space and its parent (null: started at boot). */
export interface Process {
  /** The address space (struct mm_struct). */
  readonly mm: AddressSpace;
  /** The id of the process it was forked from; null for one started at boot. */
  readonly parent: number | null;
}

/** The task list, by process (mm) id. */
export class Processes {
  /** Every process, by id. */
  readonly all = new Map<number, Process>();
  readonly #k: Kernel;

  /** The processes started at boot, with the address spaces given. */
  constructor(kernel: Kernel, boot: Iterable<AddressSpace>) {
    this.#k = kernel;
    for (const mm of boot) this.all.set(mm.id, { mm, parent: null });
  }

  /**
   * fork: process `child` gets a copy-on-write image of `parent`'s address space (ENODEV
   * when `parent` is unknown or has exited). Pages
   * pinned for DMA are copied for the child at once (Linux 5.12's page_needs_cow_for_dma);
   * quirk `forkCowMovesPinnedPage`: they are shared copy-on-write like any other, as the 2018
   * kernel's copy_one_pte did.
   */
  fork(parent: number, child: number): number | Errno {
    const p = this.all.get(parent);
    if (!p || !p.mm.users) return "ENODEV";
    if (!Number.isSafeInteger(child) || child < 1) return "EINVAL";
    if (this.all.has(child)) return "EEXIST";
    const copyPinned = !this.#k.quirks.forkCowMovesPinnedPage;
    this.all.set(child, { mm: p.mm.fork(child, copyPinned), parent });
    return child;
  }

  /**
   * The process that opened the files `id` holds: `id` itself when started at boot, else the
   * boot process it was forked from (fork copies the file table, so every copy is of its).
   */
  openerOf(id: number): number {
    let p = id;
    for (let up = this.all.get(p)?.parent; up != null; up = this.all.get(p)?.parent) p = up;
    return p;
  }

  /** The forked processes alive whose files are copies of `opener`'s. */
  childrenOf(opener: number): number[] {
    return [...this.all.keys()].filter((p) => p !== opener && this.openerOf(p) === opener);
  }

  /**
   * The exit of forked process `child`: its address space goes (exit_mmap), its own children
   * are handed to its parent, it leaves the task list. Nothing for a process not forked.
   */
  exitChild(child: number): void {
    const p = this.all.get(child);
    if (p?.parent == null) return;
    p.mm.release();
    this.all.delete(child);
    for (const [id, q] of this.all) {
      if (q.parent === child) this.all.set(id, { mm: q.mm, parent: p.parent });
    }
  }

  /** Process `mm` stores a byte at the start of its page at `vaddr`. */
  write(mm: number, vaddr: number): Errno | undefined {
    const p = this.all.get(mm);
    if (!p) return "ENODEV";
    if (!pageAligned(vaddr)) return "EINVAL";
    p.mm.write(vaddr, 0, new Uint8Array([mm & 0xff]));
    return undefined;
  }
}
