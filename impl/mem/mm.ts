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
  /** The address spaces forked from one ancestor, this one among them: who may share frames. */
  #family: AddressSpace[] = [this];

  /** An empty address space backed by `phys`. */
  constructor(id: number, phys: PhysMem) {
    this.id = id;
    this.#phys = phys;
  }

  /**
   * The frame behind page-aligned `vaddr`, faulting it in (anonymous, zeroed) if absent. The
   * lookup is a write's (get_user_pages with FOLL_WRITE, as vfio pins for DMA): a frame shared
   * copy-on-write since a {@link fork} is first replaced by a copy of this process's own.
   */
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

  /** Slot `i` of `chunk`, the page at `vaddr`, faulted in if absent, unshared if shared. */
  #frame(chunk: (Frame | undefined)[], i: number, vaddr: number): Frame {
    const frame = chunk[i] ??= this.#phys.alloc({ kind: "user", mm: this.id, vaddr });
    return frame.maps > 1 ? (chunk[i] = this.#leave(frame, vaddr, true)) : frame;
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

  /**
   * fork's copy of the page table (dup_mmap, copy_page_range): the child `childId` maps the same
   * frames, each one's map count up, so that both sides write-protect them until a write
   * copies ({@link page}). With `copyPinned`, a page pinned for DMA is copied for the child at
   * once instead (page_needs_cow_for_dma, Linux 5.12): the parent keeps its pinned frame,
   * mapped by it alone. The child starts with no page pinned (locked_vm 0) and the parent's
   * RLIMIT_MEMLOCK.
   */
  fork(childId: number, copyPinned: boolean): AddressSpace {
    const child = new AddressSpace(childId, this.#phys);
    child.memlockPages = this.memlockPages;
    child.#family = this.#family;
    this.#family.push(child);
    for (const [n, chunk] of this.#chunks) {
      child.#chunks.set(
        n,
        chunk.map((f, i) => {
          if (!f) return undefined;
          if (copyPinned && f.pins > 0) {
            return this.#copyOf(f, childId, n * CHUNK_BYTES + i * PAGE_SIZE);
          }
          f.maps++;
          return f;
        }),
      );
    }
    return child;
  }

  /**
   * exit_mmap of a forked child's address space: each frame it shares goes back to the others
   * (one of them its owner now, if it was this one), each of its own is freed unless pinned (a
   * pin holds its page, as get_user_pages' reference does: under quirk `forkCowMovesPinnedPage`
   * the child may be left alone with a page the IOMMU still maps); it leaves its family.
   */
  release(): void {
    for (const [n, chunk] of this.#chunks) {
      chunk.forEach((f, i) => {
        if (!f) return;
        if (f.maps > 1) this.#leave(f, n * CHUNK_BYTES + i * PAGE_SIZE, false);
        else if (f.pins === 0) this.#phys.free(f.pfn);
        else f.maps = 0;
      });
    }
    this.#chunks.clear();
    this.#family.splice(this.#family.indexOf(this), 1);
  }

  /** A store of `data` at `offset` of the page at `vaddr` (through {@link page}). */
  write(vaddr: number, offset: number, data: Uint8Array): void {
    this.#phys.write(this.page(vaddr), offset, data);
  }

  /** The frame this page table maps at `vaddr`, without faulting anything in. */
  mapped(vaddr: number): Frame | undefined {
    return this.#chunks.get(Math.floor(vaddr / CHUNK_BYTES))?.[(vaddr % CHUNK_BYTES) / PAGE_SIZE];
  }

  /**
   * A frame this process shares since a fork left to the others (one of them its owner now,
   * if it was this one). With `copy` (do_wp_page), a copy of its own is returned.
   */
  #leave(shared: Frame, vaddr: number, copy: true): Frame;
  #leave(shared: Frame, vaddr: number, copy: false): undefined;
  #leave(shared: Frame, vaddr: number, copy: boolean): Frame | undefined {
    shared.maps--;
    if (shared.owner?.kind === "user" && shared.owner.mm === this.id) {
      const other = this.#family.find((m) => m !== this && m.mapped(vaddr) === shared)!;
      shared.owner = { kind: "user", mm: other.id, vaddr };
    }
    return copy ? this.#copyOf(shared, this.id, vaddr) : undefined;
  }

  /** A new frame of `mm`'s page at `vaddr` with the contents of `frame`. */
  #copyOf(frame: Frame, mm: number, vaddr: number): Frame {
    const copy = this.#phys.alloc({ kind: "user", mm, vaddr });
    if (frame.bytes) this.#phys.write(copy, 0, frame.bytes);
    return copy;
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
