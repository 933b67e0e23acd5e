/**
 * The IOASID allocator as a {@link Machine}: spec/ioasid.ts against impl/ioasid/ (through
 * model/adapters/ioasid.ts).
 *
 * Arguments sit at and next to every edge most of the time: range bounds among the first ids or
 * around 0, 1, 3 and the last PASID 2^20-1 (and one past it), `max` often `min` or a step
 * either side of it, so ranges of one id, inverted ranges and exhausted small ranges are common
 * and ids collide across sets; the ids frees, gets, puts and lookups target are mostly live ones
 * (placeholders resolved from the spec's state); sets 1 and 2 (and 0, -1 now and then);
 * allocator names that clash, are empty or name the default. Sequential only (`races: false`):
 * the implementation runs each operation under one spinlock, with no scheduling point, so no
 * interleaving exists to explore.
 *
 * @module
 */
import fc from "fast-check";
import {
  checkIoasidInvariants,
  initialIoasidState,
  IOASID_MAX,
  IOASID_MIN,
  type IoasidCommand,
  ioasidCommandSchema,
  ioasidResults,
  type IoasidState,
  stepIoasid,
} from "../../spec/ioasid.ts";
import { IoasidAdapter } from "../adapters/ioasid.ts";
import { aroundEdges } from "../arbitraries.ts";
import { parseWithSchema } from "../commands.ts";
import type { Machine } from "../machine.ts";

/** Ids and range bounds: around the first ids and the last PASID, one either side of the space. */
const idArb = aroundEdges([1, 3, IOASID_MAX], 0, IOASID_MAX + 1);

/**
 * The id an op targets: three times in five a placeholder, `-1 - k` for the k-th allocated id
 * (ascending, modulo how many are allocated; id 1 when none is), filled in by {@link resolve}
 * from the spec's state, so frees, gets, puts and lookups hit live ids; an edge id otherwise.
 */
const targetArb = fc.oneof(
  { weight: 3, arbitrary: fc.nat(7).map((k) => -1 - k) },
  { weight: 2, arbitrary: idArb },
);

const setArb = aroundEdges([1], -1, 2);

const privateArb = fc.constantFrom(7, 8, 9);

const nameArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("vcmd", "vcmd2") },
  { weight: 1, arbitrary: fc.constantFrom("", "default") },
);

/**
 * `min` among the first four ids three times in five (so small ranges fill up), an edge
 * otherwise; `max` as `min` plus -1..3 (rarely -1) three times in four, an edge otherwise.
 */
const allocArb: fc.Arbitrary<IoasidCommand> = fc.record({
  set: setArb,
  min: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }) }, {
    weight: 2,
    arbitrary: idArb,
  }),
  delta: fc.oneof({ weight: 1, arbitrary: fc.constant(-1) }, {
    weight: 6,
    arbitrary: fc.integer({ min: 0, max: 3 }),
  }),
  other: idArb,
  relative: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, {
    weight: 1,
    arbitrary: fc.constant(false),
  }),
  private: fc.option(privateArb, { nil: undefined }),
}).map(({ set, min, delta, other, relative, private: priv }) => ({
  op: "ioasid.alloc" as const,
  set,
  min,
  max: relative ? min + delta : other,
  ...(priv === undefined ? {} : { private: priv }),
}));

function commands(): fc.Arbitrary<IoasidCommand> {
  const rec = (weight: number, arbitrary: fc.Arbitrary<IoasidCommand>) => ({ weight, arbitrary });
  return fc.oneof(
    rec(6, allocArb),
    rec(3, fc.record({ op: fc.constant("ioasid.free" as const), id: targetArb })),
    rec(2, fc.record({ op: fc.constant("ioasid.get" as const), set: setArb, id: targetArb })),
    rec(2, fc.record({ op: fc.constant("ioasid.put" as const), id: targetArb })),
    rec(3, fc.record({ op: fc.constant("ioasid.find" as const), set: setArb, id: targetArb })),
    rec(
      2,
      fc.record({ op: fc.constant("ioasid.setData" as const), id: targetArb, private: privateArb }),
    ),
    rec(1, fc.record({ op: fc.constant("ioasid.registerAllocator" as const), name: nameArb })),
    rec(1, fc.record({ op: fc.constant("ioasid.unregisterAllocator" as const), name: nameArb })),
  );
}

/** Fills an id placeholder (see {@link targetArb}) from the spec's state. */
function resolve(s: IoasidState, cmd: IoasidCommand): IoasidCommand {
  if (!("id" in cmd) || cmd.id >= 0) return cmd;
  const ids = [...s.ids.keys()].sort((a, b) => a - b);
  return { ...cmd, id: ids.length === 0 ? IOASID_MIN : ids[(-1 - cmd.id) % ids.length] };
}

/** The IOASID allocator machine. */
export const ioasidMachine: Machine<IoasidState, IoasidCommand> = {
  name: "ioasid",
  vars: ["ids", "sets", "allocators"],
  prelude: [],
  quirks: ["findIgnoresSet", "rangeMaxOffByOne", "allocatorSwitchOrphans"],
  races: false,
  initial: initialIoasidState,
  step: stepIoasid,
  violations: checkIoasidInvariants,
  parseCommand: (op, args, opPath, argsPath) =>
    parseWithSchema<IoasidCommand>(ioasidCommandSchema, op, args, opPath, argsPath),
  schema: ioasidCommandSchema,
  results: ioasidResults,
  commands,
  resolve,
  implementation: (quirks) => new IoasidAdapter(quirks),
};
