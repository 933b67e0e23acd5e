/**
 * The IOASID allocator (seed 002): one PASID space stored in an {@link IdTree} (occupancy) and a
 * {@link SparseArray} from id to its `ioasid_data` (set, private value, references, owning
 * allocator), each set's ids on an intrusive doubly-linked list (as `list_head`), and pluggable
 * allocators. With a custom allocator (a guest's paravirtual one, asking the host) the id comes
 * from it and the local storage only records it, as seed 002 sketches ioasid_alloc: the custom
 * function picks the id, then the store takes exactly that id (the one-id range from it to the
 * next, the store's end being exclusive).
 *
 * Everything runs under one spinlock in the kernel (no sleeping, no scheduling point), so the
 * operations here are synchronous.
 *
 * @module
 */
import { DEFAULT_ALLOCATOR, IOASID_MAX, IOASID_MIN } from "../../spec/ioasid.ts";
import type { Ret } from "../../spec/types.ts";
import type { Quirks } from "../quirks.ts";
import { IdTree, SparseArray } from "./idtree.ts";

/** A custom allocator the space delegates to: picks an id in `[min, end)` or none. */
export interface IdAllocator {
  /** Its name. */
  readonly name: string;
  /** An id in `[min, end)` it hands out, or undefined when it has none. */
  alloc(min: number, end: number): number | undefined;
  /** Takes back an id it handed out. */
  free(id: number): void;
}

/**
 * The host side of paravirtual allocation: one PASID pool every custom allocator of the guest
 * asks (the virtual command interface of a pvIOMMU), handing out its lowest free id.
 */
export class HostPasidPool {
  readonly #used = new IdTree(IOASID_MAX + 1);

  /** A custom allocator called `name` backed by this pool. */
  allocator(name: string): IdAllocator {
    return {
      name,
      alloc: (min, end) => {
        const id = this.#used.findFree(min, end);
        if (id !== undefined) this.#used.set(id);
        return id;
      },
      free: (id) => this.#used.clear(id),
    };
  }
}

/** One allocated id's record (`struct ioasid_data`). */
export interface IoasidData {
  /** The id. */
  readonly id: number;
  /** The set it belongs to. */
  readonly set: number;
  /** The bounds its allocation asked for (`max` inclusive). */
  readonly min: number;
  /** See {@link IoasidData.min}. */
  readonly max: number;
  /** The owner's private value, null until set. */
  private: number | null;
  /** References held. */
  refs: number;
  /** Whether the allocation's own reference is held. */
  allocRef: boolean;
  /** The custom allocator it came from; null for the default one (the local store's search). */
  readonly allocator: IdAllocator | null;
  /** The previous id of its set's list. */
  prev: IoasidData | null;
  /** The next id of its set's list. */
  next: IoasidData | null;
}

/** The head of one set's list of ids (kept once the set has had ids). */
export interface IoasidSetList {
  /** The first id on the list, null when the set holds none. */
  first: IoasidData | null;
}

/** The IOASID space with its allocators. */
export class IoasidSpace {
  /** Which ids the local storage holds. */
  readonly #used = new IdTree(IOASID_MAX + 1);
  /** Each allocated id's record. */
  readonly data = new SparseArray<IoasidData>(IOASID_MAX + 1);
  /** Each set's list. */
  readonly sets = new Map<number, IoasidSetList>();
  /** Registered custom allocators; the last serves allocations (none: the default one). */
  readonly allocators: IdAllocator[] = [];
  readonly #host: HostPasidPool;
  readonly #quirks: Quirks;

  /** An empty space; custom allocators registered later ask `host`. */
  constructor(quirks: Quirks = {}, host: HostPasidPool = new HostPasidPool()) {
    this.#quirks = quirks;
    this.#host = host;
  }

  /** ioasid_alloc: an id in `[min, max]` (max inclusive) of `set`. */
  alloc(set: number, min: number, max: number, priv: number | null): Ret<number> {
    if (set < 0 || min > max || min < IOASID_MIN || max > IOASID_MAX) return { err: "EINVAL" };
    const allocator = this.allocators.at(-1) ?? null;
    let lo = min;
    // The seed passes `max` on as idr_alloc's end, which is exclusive.
    let end = this.#quirks.rangeMaxOffByOne ? max : max + 1;
    if (allocator) {
      const id = allocator.alloc(min, max + 1);
      if (id === undefined) return { err: "ENOSPC" };
      lo = id;
      end = id + 1;
    }
    const id = this.#used.findFree(lo, end);
    if (id === undefined) {
      allocator?.free(lo);
      return { err: "ENOSPC" };
    }
    this.#used.set(id);
    let list = this.sets.get(set);
    if (!list) this.sets.set(set, list = { first: null });
    const d: IoasidData = {
      id,
      set,
      min,
      max,
      private: priv,
      refs: 1,
      allocRef: true,
      allocator,
      prev: null,
      next: list.first,
    };
    if (list.first) list.first.prev = d;
    list.first = d;
    this.data.set(id, d);
    return { ok: id };
  }

  /** ioasid_free: drops the allocation's own reference. */
  free(id: number): Ret<number> {
    return this.#release(id, true);
  }

  /** ioasid_put: drops a reference `get` took. */
  put(id: number): Ret<number> {
    return this.#release(id, false);
  }

  /** ioasid_get: one more reference on an id of `set`. */
  get(set: number, id: number): Ret<number> {
    const d = this.data.get(id);
    if (!d || d.set !== set) return { err: "ENOENT" };
    return { ok: ++d.refs };
  }

  /** ioasid_find: the private value of an id of `set` (null if not yet set). */
  find(set: number, id: number): Ret<number | null> {
    const d = this.data.get(id);
    // Seed 002's proposal to let the set be NULL: the lookup goes by id alone.
    if (!d || (!this.#quirks.findIgnoresSet && d.set !== set)) return { err: "ENOENT" };
    return { ok: d.private };
  }

  /** ioasid_set_data: attaches the private value later (the guest-bind case). */
  setData(id: number, priv: number): Ret<number> {
    const d = this.data.get(id);
    if (!d) return { err: "ENOENT" };
    d.private = priv;
    return { ok: 0 };
  }

  /** Registers a custom allocator; it serves allocations from now on. */
  registerAllocator(name: string): Ret<number> {
    if (name === "" || name === DEFAULT_ALLOCATOR) return { err: "EINVAL" };
    if (this.allocators.some((a) => a.name === name)) return { err: "EEXIST" };
    // The seed swaps one global function pointer, whoever owns the ids outstanding.
    if (!this.#quirks.allocatorSwitchOrphans && this.#owns(null)) {
      return { err: "EBUSY" };
    }
    this.allocators.push(this.#host.allocator(name));
    return { ok: 0 };
  }

  /** Unregisters a custom allocator; the one registered before it serves again. */
  unregisterAllocator(name: string): Ret<number> {
    const i = this.allocators.findIndex((a) => a.name === name);
    if (i < 0) return { err: "ENOENT" };
    if (!this.#quirks.allocatorSwitchOrphans && this.#owns(this.allocators[i])) {
      return { err: "EBUSY" };
    }
    this.allocators.splice(i, 1);
    return { ok: 0 };
  }

  #owns(allocator: IdAllocator | null): boolean {
    for (const [, d] of this.data.entries()) if (d.allocator === allocator) return true;
    return false;
  }

  #release(id: number, own: boolean): Ret<number> {
    const d = this.data.get(id);
    if (!d) return { err: "ENOENT" };
    if (own ? !d.allocRef : d.refs === (d.allocRef ? 1 : 0)) return { err: "EINVAL" };
    if (own) d.allocRef = false;
    if (--d.refs > 0) return { ok: d.refs };
    this.data.delete(id);
    if (d.prev) d.prev.next = d.next;
    else this.sets.get(d.set)!.first = d.next;
    if (d.next) d.next.prev = d.prev;
    this.#used.clear(id);
    // With one global allocator pointer the id goes back to whichever allocator is active.
    (this.#quirks.allocatorSwitchOrphans ? this.allocators.at(-1) : d.allocator)?.free(id);
    return { ok: 0 };
  }
}
