/**
 * The IOASID allocator (seed 002, "[RFC PATCH 1/5] iommu: Add APIs for IOMMU PASID management"
 * and its review thread; the shape upstream later shipped as drivers/iommu/ioasid.c): one
 * system-wide space of PASIDs that several modules (iommu-sva, IOMMU drivers for auxiliary
 * domains, device drivers, VFIO for guests) allocate from, each in its own `ioasid_set`, with a
 * private value per id that the owner may attach after allocation and look up later (the I/O
 * page-fault path finds the mm of a PASID this way).
 *
 * Intended behaviour, and the decisions where the seed is silent:
 * - Ids are 1 .. {@link IOASID_MAX} (PASIDs are 20 bits; 0 is reserved for DMA without a PASID).
 *   `alloc`'s `max` is INCLUSIVE, as upstream's `ioasid_alloc(set, min, max, private)` documents;
 *   the id handed out is the lowest unused one in `[min, max]`, as the IDR/XArray would.
 * - Reference counts: an allocation holds one reference; `get` takes more, `put` drops one
 *   taken by `get`, `free` drops the allocation's own. At zero the id is unused AT ONCE: the next
 *   `alloc` may hand it out again (no grace period is modelled).
 * - `find` is typed by the set: it answers only for an id allocated in the set asked about (in
 *   seed 002 the page-fault path must search the shared SVA set alone, or the data it gets may
 *   not be an mm), and ENOENT otherwise, saying nothing of another set's ids (upstream later
 *   answered -EACCES for an id of another set). A private value not yet set reads as `null`
 *   (upstream's ioasid_find returns NULL), not an error: the seed's guest-bind case allocates
 *   with empty data and fills it in at bind time.
 * - Custom allocators (the guest's paravirtual allocator): registered by name; the MOST
 *   RECENTLY registered one still registered serves every `alloc` (upstream later kept the
 *   first one active instead); without any, the default allocator does. Each id remembers which
 *   allocator it came from and is freed back to that one. Registering while the default
 *   allocator has ids outstanding is refused with EBUSY (the seed registers at boot; upstream
 *   later refused it, with -EAGAIN). Unregistering an allocator that still owns ids is refused
 *   with EBUSY too: falling back would leave those ids owned by an allocator that is gone
 *   (upstream only warns there).
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import {
  checkInvariants,
  type CommandSchema,
  fail,
  type Invariant,
  type MachineSpec,
  ok,
  type ResultsOf,
  type ResultTable,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

/** The largest PASID: ids are 20 bits wide. */
export const IOASID_MAX = 2 ** 20 - 1;

/** The smallest id handed out (PASID 0 is reserved). */
export const IOASID_MIN = 1;

/** The name under which the default allocator owns ids. */
export const DEFAULT_ALLOCATOR = "default";

/** One allocated id. */
export interface IoasidEntry {
  /** The set it was allocated in. */
  readonly set: number;
  /** The lower bound the allocation asked for. */
  readonly min: number;
  /** The upper bound (inclusive) the allocation asked for. */
  readonly max: number;
  /** The owner's private value, `null` until set. */
  readonly private: number | null;
  /** References held: the allocation's own (while {@link IoasidEntry.allocRef}) plus gets. */
  readonly refs: number;
  /** Whether the allocation's own reference is still held (`free` not yet called). */
  readonly allocRef: boolean;
  /** The allocator that handed it out: {@link DEFAULT_ALLOCATOR} or a custom one's name. */
  readonly allocator: string;
}

/** The IOASID space. */
export interface IoasidState {
  /** Every allocated id. */
  readonly ids: ReadonlyMap<number, IoasidEntry>;
  /** Each set with ids, and its ids in ascending order. */
  readonly sets: ReadonlyMap<number, readonly number[]>;
  /** Registered custom allocators in registration order; the last one serves allocations. */
  readonly allocators: readonly string[];
}

/** The allocator's operations. */
export type IoasidCommand =
  | {
    readonly op: "ioasid.alloc";
    readonly set: number;
    readonly min: number;
    readonly max: number;
    readonly private?: number | null;
  }
  | { readonly op: "ioasid.free"; readonly id: number }
  | { readonly op: "ioasid.get"; readonly set: number; readonly id: number }
  | { readonly op: "ioasid.put"; readonly id: number }
  | { readonly op: "ioasid.find"; readonly set: number; readonly id: number }
  | { readonly op: "ioasid.setData"; readonly id: number; readonly private: number }
  | { readonly op: "ioasid.registerAllocator"; readonly name: string }
  | { readonly op: "ioasid.unregisterAllocator"; readonly name: string };

/** An empty space with only the default allocator. */
export function initialIoasidState(): IoasidState {
  return { ids: new Map(), sets: new Map(), allocators: [] };
}

/** The allocator serving `alloc` now: the last registered custom one, else the default. */
export function activeAllocator(state: IoasidState): string {
  return state.allocators.at(-1) ?? DEFAULT_ALLOCATOR;
}

/** The lowest id in `[min, max]` (inclusive) that `ids` does not hold, if any. */
export function lowestUnused(
  ids: ReadonlyMap<number, unknown>,
  min: number,
  max: number,
): number | undefined {
  for (let id = min; id <= max; id++) if (!ids.has(id)) return id;
  return undefined;
}

function withEntry(state: IoasidState, id: number, entry: IoasidEntry | undefined): IoasidState {
  const ids = new Map(state.ids);
  const sets = new Map(state.sets);
  const old = state.ids.get(id);
  if (old) {
    const rest = (sets.get(old.set) ?? []).filter((x) => x !== id);
    if (rest.length > 0) sets.set(old.set, rest);
    else sets.delete(old.set);
  }
  if (entry) {
    ids.set(id, entry);
    sets.set(entry.set, [...(sets.get(entry.set) ?? []).filter((x) => x !== id), id].sort(byNum));
  } else {
    ids.delete(id);
  }
  return { ...state, ids, sets };
}

function byNum(a: number, b: number): number {
  return a - b;
}

function ownsIds(state: IoasidState, allocator: string): boolean {
  for (const e of state.ids.values()) if (e.allocator === allocator) return true;
  return false;
}

/** Drops one reference of `id` (`own`: the allocation's); at zero the id is unused. */
function release(state: IoasidState, id: number, own: boolean): StepResult<IoasidState> {
  const e = state.ids.get(id);
  if (!e) return fail(state, "ENOENT");
  const gets = e.refs - (e.allocRef ? 1 : 0);
  if (own ? !e.allocRef : gets === 0) return fail(state, "EINVAL");
  const refs = e.refs - 1;
  const next = refs === 0 ? undefined : { ...e, refs, allocRef: own ? false : e.allocRef };
  return { state: withEntry(state, id, next), ret: ok(refs), events: [] };
}

/**
 * Executes one operation:
 * - `ioasid.alloc {set, min, max, private?}`: ok(the lowest unused id in `[min, max]`, max
 *   inclusive), owned by the {@link activeAllocator}, one reference, `private` (absent or null:
 *   not yet set); EINVAL when `set` is negative, `min > max`, `min < 1` or
 *   `max > IOASID_MAX`; ENOSPC when every id in range is taken.
 * - `ioasid.free {id}`: drops the allocation's own reference, ok(references left); ENOENT for
 *   an id not allocated, EINVAL when it was already freed (only gets hold it).
 * - `ioasid.get {set, id}`: one more reference, ok(references held); ENOENT unless `id` is
 *   allocated in `set`.
 * - `ioasid.put {id}`: drops a reference `get` took, ok(references left); ENOENT for an id not
 *   allocated, EINVAL when no `get` reference is held.
 * - `ioasid.find {set, id}`: ok(the private value, or null if not yet set); ENOENT unless `id`
 *   is allocated in `set`.
 * - `ioasid.setData {id, private}`: sets the private value, ok(0); ENOENT for an id not
 *   allocated.
 * - `ioasid.registerAllocator {name}`: the custom allocator `name` serves allocations from now
 *   on, ok(0); EINVAL for an empty name or {@link DEFAULT_ALLOCATOR}, EEXIST when registered,
 *   EBUSY while the default allocator owns ids.
 * - `ioasid.unregisterAllocator {name}`: ok(0), the previous one serves again; ENOENT when not
 *   registered, EBUSY while it owns ids.
 */
export function stepIoasid<C extends IoasidCommand>(
  state: IoasidState,
  cmd: C,
): TypedStepResult<IoasidState, ResultsOf<typeof ioasidResults>[C["op"]]>;
/** stepIoasid of any command, its success value untyped. */
export function stepIoasid(state: IoasidState, cmd: IoasidCommand): StepResult<IoasidState> {
  return match(cmd)
    .with({ op: "ioasid.alloc" }, (c): StepResult<IoasidState> => {
      if (c.set < 0 || c.min > c.max || c.min < IOASID_MIN || c.max > IOASID_MAX) {
        return fail(state, "EINVAL");
      }
      const id = lowestUnused(state.ids, c.min, c.max);
      if (id === undefined) return fail(state, "ENOSPC");
      const entry: IoasidEntry = {
        set: c.set,
        min: c.min,
        max: c.max,
        private: c.private ?? null,
        refs: 1,
        allocRef: true,
        allocator: activeAllocator(state),
      };
      return { state: withEntry(state, id, entry), ret: ok(id), events: [] };
    })
    .with({ op: "ioasid.free" }, (c) => release(state, c.id, true))
    .with({ op: "ioasid.put" }, (c) => release(state, c.id, false))
    .with({ op: "ioasid.get" }, (c): StepResult<IoasidState> => {
      const e = state.ids.get(c.id);
      if (!e || e.set !== c.set) return fail(state, "ENOENT");
      const refs = e.refs + 1;
      return { state: withEntry(state, c.id, { ...e, refs }), ret: ok(refs), events: [] };
    })
    .with({ op: "ioasid.find" }, (c): StepResult<IoasidState> => {
      const e = state.ids.get(c.id);
      if (!e || e.set !== c.set) return fail(state, "ENOENT");
      return { state, ret: ok(e.private), events: [] };
    })
    .with({ op: "ioasid.setData" }, (c): StepResult<IoasidState> => {
      const e = state.ids.get(c.id);
      if (!e) return fail(state, "ENOENT");
      const next = withEntry(state, c.id, { ...e, private: c.private });
      return { state: next, ret: ok(0), events: [] };
    })
    .with({ op: "ioasid.registerAllocator" }, (c): StepResult<IoasidState> => {
      if (c.name === "" || c.name === DEFAULT_ALLOCATOR) return fail(state, "EINVAL");
      if (state.allocators.includes(c.name)) return fail(state, "EEXIST");
      if (ownsIds(state, DEFAULT_ALLOCATOR)) return fail(state, "EBUSY");
      return {
        state: { ...state, allocators: [...state.allocators, c.name] },
        ret: ok(0),
        events: [],
      };
    })
    .with({ op: "ioasid.unregisterAllocator" }, (c): StepResult<IoasidState> => {
      if (!state.allocators.includes(c.name)) return fail(state, "ENOENT");
      if (ownsIds(state, c.name)) return fail(state, "EBUSY");
      const allocators = state.allocators.filter((a) => a !== c.name);
      return { state: { ...state, allocators }, ret: ok(0), events: [] };
    })
    .otherwise(unknownOp);
}

/**
 * What must hold of the IOASID space. Typed lookups are not among them: they are a property of
 * what `find` and `get` return, which the checker compares with the implementation's at every
 * step.
 */
export const ioasidInvariants: readonly Invariant<IoasidState>[] = [
  {
    name: "ioasid.inRange",
    scope: "always",
    check: (s) => {
      for (const [id, e] of s.ids) {
        if (id < IOASID_MIN || id > IOASID_MAX || id < e.min || id > e.max) {
          return `id ${id} outside its range [${e.min}, ${e.max}] or the PASID space`;
        }
      }
      return undefined;
    },
  },
  {
    name: "ioasid.referenced",
    scope: "always",
    check: (s) => {
      for (const [id, e] of s.ids) {
        if (e.refs < 1) return `id ${id} is allocated with ${e.refs} references`;
      }
      return undefined;
    },
  },
  {
    name: "ioasid.ownerRegistered",
    scope: "always",
    check: (s) => {
      for (const [id, e] of s.ids) {
        if (e.allocator !== DEFAULT_ALLOCATOR && !s.allocators.includes(e.allocator)) {
          return `id ${id} is owned by allocator "${e.allocator}", which is not registered`;
        }
      }
      return undefined;
    },
  },
  {
    name: "ioasid.allocatedOnce",
    scope: "between-ops",
    check: (s) => {
      const seen = new Map<number, number>();
      for (const [set, ids] of s.sets) {
        for (const id of ids) {
          const other = seen.get(id);
          if (other !== undefined) return `id ${id} is listed in set ${other} and set ${set}`;
          seen.set(id, set);
          if (s.ids.get(id)?.set !== set) return `set ${set} lists id ${id}, not allocated in it`;
        }
      }
      for (const id of s.ids.keys()) {
        if (!seen.has(id)) return `id ${id} is allocated but in no set's list`;
      }
      return undefined;
    },
  },
];

/** Every violated invariant of `state`, as `name: message`. */
export function checkIoasidInvariants(
  state: IoasidState,
  scope?: Invariant<IoasidState>["scope"],
): string[] {
  return checkInvariants(ioasidInvariants, state, scope);
}

/** Every op and its argument fields (public API: validates traces, generates commands). */
export const ioasidCommandSchema: CommandSchema<IoasidCommand["op"]> = {
  "ioasid.alloc": { set: "int", min: "int", max: "int", private: "int?" },
  "ioasid.free": { id: "int" },
  "ioasid.get": { set: "int", id: "int" },
  "ioasid.put": { id: "int" },
  "ioasid.find": { set: "int", id: "int" },
  "ioasid.setData": { id: "int", private: "int" },
  "ioasid.registerAllocator": { name: "string" },
  "ioasid.unregisterAllocator": { name: "string" },
};

/** The shape of every IOASID op's success value. */
export const ioasidResults = {
  "ioasid.alloc": "int",
  "ioasid.free": "int",
  "ioasid.get": "int",
  "ioasid.put": "int",
  "ioasid.find": { oneOf: ["int", "null"] },
  "ioasid.setData": "zero",
  "ioasid.registerAllocator": "zero",
  "ioasid.unregisterAllocator": "zero",
} as const satisfies ResultTable<IoasidCommand["op"]>;

/** The IOASID allocator as one record. */
export const ioasidSpec: MachineSpec<IoasidState, IoasidCommand> = {
  component: "ioasid",
  initial: initialIoasidState,
  step: stepIoasid,
  invariants: ioasidInvariants,
  schema: ioasidCommandSchema,
  results: ioasidResults,
};
