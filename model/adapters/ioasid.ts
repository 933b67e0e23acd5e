/**
 * The ioasid view's adapter (model side): executes the spec's `ioasid.*` commands on an
 * {@link IoasidSpace} and maps its storage back to the spec's shape with
 * {@link IoasidAdapter.observe} (the abstraction function: each id's record with its owning
 * allocator's name, each set's list walked and sorted ascending, sets holding no id left out,
 * the registered custom allocators).
 *
 * @module
 */
import {
  DEFAULT_ALLOCATOR,
  type IoasidCommand,
  type IoasidEntry,
  type IoasidState,
} from "../../spec/ioasid.ts";
import type { Ret } from "../../spec/types.ts";
import { IoasidSpace } from "../../impl/ioasid/ioasid.ts";
import type { Outcome } from "../../impl/kernel.ts";
import type { Quirks } from "../../impl/quirks.ts";
import type { Implementation } from "../machine.ts";

/** An {@link IoasidSpace} executing spec-shaped commands. */
export class IoasidAdapter implements Implementation<IoasidState, IoasidCommand> {
  /** The space under test. */
  readonly space: IoasidSpace;

  /** A fresh space with `quirks`. */
  constructor(quirks: Quirks = {}) {
    this.space = new IoasidSpace(quirks);
  }

  /** Executes one command (the allocator raises no events). */
  exec(cmd: IoasidCommand): Promise<Outcome> {
    return Promise.resolve({ ret: this.#dispatch(cmd), events: [] });
  }

  #dispatch(cmd: IoasidCommand): Ret {
    const s = this.space;
    switch (cmd.op) {
      case "ioasid.alloc":
        return s.alloc(cmd.set, cmd.min, cmd.max, cmd.private ?? null);
      case "ioasid.free":
        return s.free(cmd.id);
      case "ioasid.get":
        return s.get(cmd.set, cmd.id);
      case "ioasid.put":
        return s.put(cmd.id);
      case "ioasid.find":
        return s.find(cmd.set, cmd.id);
      case "ioasid.setData":
        return s.setData(cmd.id, cmd.private);
      case "ioasid.registerAllocator":
        return s.registerAllocator(cmd.name);
      case "ioasid.unregisterAllocator":
        return s.unregisterAllocator(cmd.name);
    }
  }

  /** The space in the spec's shape. */
  observe(): IoasidState {
    return observeIoasid(this.space);
  }
}

/** The abstraction function of an IOASID space: `space` in the spec's shape. */
export function observeIoasid(space: IoasidSpace): IoasidState {
  const ids = new Map<number, IoasidEntry>();
  for (const [id, d] of space.data.entries()) {
    ids.set(id, {
      set: d.set,
      min: d.min,
      max: d.max,
      private: d.private,
      refs: d.refs,
      allocRef: d.allocRef,
      allocator: d.allocator?.name ?? DEFAULT_ALLOCATOR,
    });
  }
  const sets = new Map<number, readonly number[]>();
  for (const [set, list] of space.sets) {
    const members: number[] = [];
    for (let d = list.first; d; d = d.next) members.push(d.id);
    if (members.length > 0) sets.set(set, members.sort((a, b) => a - b));
  }
  return { ids, sets, allocators: space.allocators.map((a) => a.name) };
}
