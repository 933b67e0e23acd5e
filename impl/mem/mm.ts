/**
 * Process address spaces (struct mm_struct): anonymous memory faulted in on first use, and
 * page pinning for DMA (get_user_pages / put_page).
 *
 * @module
 */
import { PAGE_SIZE } from "../../spec/types.ts";
import type { Frame, PhysMem } from "./phys.ts";

/** Pages per chunk of the page table (a two-level table: chunks found by a Map). */
const CHUNK_PAGES = 512;
const CHUNK_BYTES = CHUNK_PAGES * PAGE_SIZE;

/** One process's memory. */
export class AddressSpace {
  /** mm id (the process). */
  readonly id: number;
  /** mm->locked_vm: pages accounted as pinned (vfio_lock_acct). */
  lockedVm = 0;
  /** RLIMIT_MEMLOCK in pages; null: unlimited. */
  memlockPages: number | null = null;
  /**
   * Whether the mm has users (`mm_users > 0`): false once its process exited (`exit_mm`), when
   * its page table is gone; the structure lives on while something holds it (an SVA bond).
   */
  users = true;
  /** The page table: chunk number to the frames of its 512 pages. */
  #chunks = new Map<number, (Frame | undefined)[]>();
  #phys: PhysMem;

  /** An empty address space backed by `phys`. */
  constructor(id: number, phys: PhysMem) {
    this.id = id;
    this.#phys = phys;
  }

  /** The frame behind page-aligned `vaddr`, faulting it in (anonymous, zeroed) if absent. */
  page(vaddr: number): Frame {
    const n = Math.floor(vaddr / CHUNK_BYTES);
    return this.#frame(this.#chunk(n), (vaddr - n * CHUNK_BYTES) / PAGE_SIZE, vaddr);
  }

  /** The frames of the `count` pages from page-aligned `vaddr`, as {@link page} gives each. */
  pages(vaddr: number, count: number): Frame[] {
    const out: Frame[] = new Array(count);
    let n = Math.floor(vaddr / CHUNK_BYTES);
    let i = (vaddr - n * CHUNK_BYTES) / PAGE_SIZE;
    let chunk = this.#chunk(n);
    for (let p = 0; p < count; p++) {
      out[p] = this.#frame(chunk, i, vaddr + p * PAGE_SIZE);
      if (++i === CHUNK_PAGES && p + 1 < count) {
        i = 0;
        chunk = this.#chunk(++n);
      }
    }
    return out;
  }

  #chunk(n: number): (Frame | undefined)[] {
    let chunk = this.#chunks.get(n);
    if (!chunk) {
      chunk = new Array(CHUNK_PAGES).fill(undefined);
      this.#chunks.set(n, chunk);
    }
    return chunk;
  }

  /** Slot `i` of `chunk`, the page at `vaddr`, faulted in if absent. */
  #frame(chunk: (Frame | undefined)[], i: number, vaddr: number): Frame {
    return chunk[i] ??= this.#phys.alloc({ kind: "user", mm: this.id, vaddr });
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
    const out: [number, number][] = [];
    for (const [n, chunk] of this.#chunks) {
      chunk.forEach((f, i) => {
        if (f && f.pins !== 0) out.push([n * CHUNK_BYTES + i * PAGE_SIZE, f.pins]);
      });
    }
    return out;
  }
}
