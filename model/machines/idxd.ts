/**
 * idxd work-queue ownership as a {@link Machine}: spec/idxd.ts against impl/idxd/ (through
 * model/adapters/idxd.ts) on the default device (two WQs, processes 1-3).
 *
 * The prelude makes WQ 0 a dedicated and WQ 1 a shared user WQ, both enabled, so opens start at
 * once. Generated commands name WQs 0 and 1 (now and then 2, which does not exist), every use
 * and mode (now and then a bogus one), processes 1-3 (now and then 4, which has no PASID), and
 * mostly live handles: a close, release or mdev remove carries a placeholder `-1 - k`, the
 * k-th open handle of its kind (ascending, modulo their number; handle 0, never given out, when
 * there is none), resolved from the state. Races weigh open, close, enable, disable and
 * configure up: the races that matter are enable/disable and configure against open.
 *
 * @module
 */
import fc from "fast-check";
import {
  checkIdxdInvariants,
  type HandleKind,
  type IdxdCommand,
  idxdCommandSchema,
  idxdResults,
  type IdxdState,
  initialIdxdState,
  stepIdxd,
  WQ_MODES,
  WQ_USES,
} from "../../spec/idxd.ts";
import { IdxdAdapter } from "../adapters/idxd.ts";
import { parseWithSchema } from "../commands.ts";
import type { Machine } from "../machine.ts";

type Weighted = { weight: number; arbitrary: fc.Arbitrary<IdxdCommand> };

const rec = (weight: number, arbitrary: fc.Arbitrary<IdxdCommand>): Weighted => ({
  weight,
  arbitrary,
});

const wqArb = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1) }, {
  weight: 1,
  arbitrary: fc.constant(2),
});

const processArb = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(1, 2, 3) }, {
  weight: 1,
  arbitrary: fc.constant(4),
});

const useArb = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...WQ_USES) }, {
  weight: 1,
  arbitrary: fc.constant("bogus"),
});

const modeArb = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...WQ_MODES) }, {
  weight: 1,
  arbitrary: fc.constant("bogus"),
});

/** A handle argument: a placeholder for a live one four times in five, else a small id. */
const handleArb = fc.oneof({ weight: 4, arbitrary: fc.nat(3).map((k) => -1 - k) }, {
  weight: 1,
  arbitrary: fc.nat(6),
});

const configureArb = fc.record({ wq: wqArb, use: useArb, mode: modeArb }).map((c) => ({
  op: "idxd.configure" as const,
  ...c,
}));
const enableArb = wqArb.map((wq) => ({ op: "idxd.enable" as const, wq }));
const disableArb = wqArb.map((wq) => ({ op: "idxd.disable" as const, wq }));
const openArb = fc.record({ wq: wqArb, process: processArb }).map((c) => ({
  op: "idxd.open" as const,
  ...c,
}));
const closeArb = handleArb.map((file) => ({ op: "idxd.close" as const, file }));
const claimArb = wqArb.map((wq) => ({ op: "idxd.claim" as const, wq }));
const releaseArb = handleArb.map((claim) => ({ op: "idxd.release" as const, claim }));
const mdevCreateArb = wqArb.map((wq) => ({ op: "idxd.mdevCreate" as const, wq }));
const mdevRemoveArb = handleArb.map((mdev) => ({ op: "idxd.mdevRemove" as const, mdev }));

/** Every op, with weights `w` in schema order. */
function weighted(w: readonly number[]): fc.Arbitrary<IdxdCommand> {
  const arbs = [
    configureArb,
    enableArb,
    disableArb,
    openArb,
    closeArb,
    claimArb,
    releaseArb,
    mdevCreateArb,
    mdevRemoveArb,
  ];
  return fc.oneof(...arbs.map((a, i) => rec(w[i], a)));
}

/** A WQ switched to another use and mode: disable, configure, enable. */
function reconfigureMacro(): fc.Arbitrary<readonly IdxdCommand[]> {
  return fc.record({
    wq: fc.constantFrom(0, 1),
    use: fc.constantFrom(...WQ_USES),
    mode: fc.constantFrom(...WQ_MODES),
  })
    .map(({ wq, use, mode }) => [
      { op: "idxd.disable", wq },
      { op: "idxd.configure", wq, use, mode },
      { op: "idxd.enable", wq },
    ]);
}

/** The ops that drop a handle: the kind each drops and the argument naming it. */
const PUTS: Readonly<Record<string, readonly [HandleKind, string]>> = {
  "idxd.close": ["file", "file"],
  "idxd.release": ["kernel", "claim"],
  "idxd.mdevRemove": ["mdev", "mdev"],
};

/** Fills a handle placeholder (see {@link handleArb}) from the state. */
function resolve(s: IdxdState, cmd: IdxdCommand): IdxdCommand {
  const put = PUTS[cmd.op];
  if (!put) return cmd;
  const [kind, field] = put;
  const k = (cmd as unknown as Record<string, number>)[field];
  if (k >= 0) return cmd;
  const ids = [...s.handles].filter(([, h]) => h.kind === kind).map(([id]) => id);
  ids.sort((a, b) => a - b);
  return { ...cmd, [field]: ids.length === 0 ? 0 : ids[(-1 - k) % ids.length] };
}

/** The idxd work-queue machine. */
export const idxdMachine: Machine<IdxdState, IdxdCommand> = {
  name: "idxd",
  vars: ["wqs", "handles", "pasids", "nextHandle"],
  prelude: [
    { op: "idxd.configure", wq: 0, use: "user", mode: "dedicated" },
    { op: "idxd.enable", wq: 0 },
    { op: "idxd.configure", wq: 1, use: "user", mode: "shared" },
    { op: "idxd.enable", wq: 1 },
  ],
  quirks: ["dwqOpenOffByOne", "cdevOpenWithoutWqLock"],
  initial: () => initialIdxdState(),
  step: stepIdxd,
  violations: checkIdxdInvariants,
  parseCommand: (op, args, opPath, argsPath) =>
    parseWithSchema<IdxdCommand>(idxdCommandSchema, op, args, opPath, argsPath),
  schema: idxdCommandSchema,
  results: idxdResults,
  commands: () => weighted([3, 3, 3, 6, 4, 3, 2, 3, 2]),
  macros: reconfigureMacro,
  raceCommands: () => weighted([2, 3, 3, 6, 3, 1, 1, 1, 1]),
  resolve,
  implementation: (quirks, sched) => new IdxdAdapter(quirks, sched),
};
