/**
 * Process address spaces (struct mm_struct): anonymous memory faulted in on first use, and
 * page pinning for DMA (get_user_pages / put_page).
 *
 * @module
 */
import type { Frame, PhysMem } from "./phys.ts";

/** One process's memory. */
export class AddressSpace {
  /** mm id (the process). */
  readonly id: number;
  /** mm->locked_vm: pages accounted as pinned (vfio_lock_acct). */
  lockedVm = 0;
  /** RLIMIT_MEMLOCK in pages; null: unlimited. */
  memlockPages: number | null = null;
  #pages = new Map<number, Frame>();
  #phys: PhysMem;

  /** An empty address space backed by `phys`. */
  constructor(id: number, phys: PhysMem) {
    this.id = id;
    this.#phys = phys;
  }

  /** The frame behind page-aligned `vaddr`, faulting it in (anonymous, zeroed) if absent. */
  page(vaddr: number): Frame {
    let frame = this.#pages.get(vaddr);
    if (!frame) {
      frame = this.#phys.alloc({ kind: "user", mm: this.id, vaddr });
      this.#pages.set(vaddr, frame);
    }
    return frame;
  }

  /** get_user_pages: pins the page at `vaddr` and returns its frame. */
  pin(vaddr: number): Frame {
    const frame = this.page(vaddr);
    frame.pins++;
    return frame;
  }

  /** put_page on a pinned page. */
  unpin(vaddr: number): void {
    this.page(vaddr).pins--;
  }

  /** Pinned pages and their pin counts. */
  pinned(): [number, number][] {
    return [...this.#pages].filter(([, f]) => f.pins !== 0).map(([va, f]) => [va, f.pins]);
  }
}
