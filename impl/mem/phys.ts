/**
 * Physical memory: page frames with contents, an owner, and a pin count
 * (struct page and its refcount, as far as DMA safety cares).
 *
 * @module
 */
import { PAGE_SIZE } from "../../spec/types.ts";

/** Who a frame belongs to: a page of a process, a page of a kernel DMA buffer, or nobody. */
export type FrameOwner =
  | { readonly kind: "user"; readonly mm: number; readonly vaddr: number }
  | { readonly kind: "kernel"; readonly buffer: number; readonly offset: number };

/** One physical page. */
export interface Frame {
  /** Page frame number. */
  readonly pfn: number;
  /** Current owner; null once freed. */
  owner: FrameOwner | null;
  /** get_user_pages pins held on it. */
  pins: number;
  /**
   * How many page tables map it (the mapcount): 1 for a process page once faulted in, more
   * while address spaces forked from one another share it copy-on-write; 0 for kernel buffers.
   */
  maps: number;
  /** Contents, allocated on first write. */
  bytes: Uint8Array | null;
}

/** The machine's page frames. */
export class PhysMem {
  #frames = new Map<number, Frame>();
  #nextPfn = 1;

  /** Allocates a zeroed frame for `owner`. */
  alloc(owner: FrameOwner): Frame {
    const maps = owner.kind === "user" ? 1 : 0;
    const frame: Frame = { pfn: this.#nextPfn++, owner, pins: 0, maps, bytes: null };
    this.#frames.set(frame.pfn, frame);
    return frame;
  }

  /** Frees a frame; later accesses through stale references see `owner === null`. */
  free(pfn: number): void {
    const frame = this.#frames.get(pfn);
    if (frame) frame.owner = null;
    this.#frames.delete(pfn);
  }

  /** The frame with `pfn`, or undefined once freed. */
  get(pfn: number): Frame | undefined {
    return this.#frames.get(pfn);
  }

  /** A frame's contents for direct access, allocated (zeroed) on first touch. */
  contents(frame: Frame): Uint8Array {
    return frame.bytes ??= new Uint8Array(PAGE_SIZE);
  }

  /** Reads `length` bytes at `offset` of a frame. */
  read(frame: Frame, offset: number, length: number): Uint8Array {
    return frame.bytes ? frame.bytes.slice(offset, offset + length) : new Uint8Array(length);
  }

  /** Copies `out.length` bytes at `offset` of a frame into `out` (no intermediate copy). */
  readInto(frame: Frame, offset: number, out: Uint8Array): void {
    if (frame.bytes) out.set(frame.bytes.subarray(offset, offset + out.length));
    else out.fill(0);
  }

  /** Writes bytes at `offset` of a frame. */
  write(frame: Frame, offset: number, data: Uint8Array): void {
    frame.bytes ??= new Uint8Array(PAGE_SIZE);
    frame.bytes.set(data, offset);
  }
}
