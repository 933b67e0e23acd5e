/**
 * The char-device design as a {@link Machine}: spec/uacce.ts against impl/uacce/ and the QM
 * driver plugged into it (through model/adapters/uacce.ts).
 *
 * The prelude registers two QM functions (parent 1, whose IOMMU does SVA, and parent 2, which
 * refuses the SVA flag), opens a file on each, maps both regions of the first and starts its
 * queue, so traffic starts at once. Generated commands name files mostly by placeholder (the
 * k-th open file, or the newest one), resolved from the state; regions and sizes sit on and
 * next to the real ones. Macros set a queue up (open, both mmaps, START_Q) and tear a file
 * down (both munmaps, close). Race actors lean on what races: remove against open, close,
 * munmap, PUT_Q and mmap.
 *
 * @module
 */
import fc from "fast-check";
import {
  checkUacceInvariants,
  initialUacceState,
  stepUacce,
  UACCE_DUS_SIZE,
  UACCE_MMIO_SIZE,
  type UacceCommand,
  uacceCommandSchema,
  uacceResults,
  type UacceState,
} from "../../spec/uacce.ts";
import { PAGE_SIZE } from "../../spec/types.ts";
import { Platform } from "../../impl/platform.ts";
import { UacceAdapter } from "../adapters/uacce.ts";
import { aroundEdges } from "../arbitraries.ts";
import { parseWithSchema } from "../commands.ts";
import type { Machine } from "../machine.ts";

/** `file: NEWEST` in a generated command: the highest file id in the state. */
const NEWEST = -100;

/** A file: the k-th held file (`-1 - k`, ascending ids) or the newest mostly, else a bad id. */
const fileArb = fc.oneof(
  { weight: 4, arbitrary: fc.nat(3).map((k) => -1 - k) },
  { weight: 2, arbitrary: fc.constant(NEWEST) },
  { weight: 1, arbitrary: fc.constantFrom(0, 99) },
);

const parentArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 2) },
  { weight: 1, arbitrary: fc.constantFrom(0, 3) },
);

const byArb = fc.constantFrom(1, 2, 3);

/** Fills a file placeholder from the state (file 1 when none is held). */
function resolve(s: UacceState, cmd: UacceCommand): UacceCommand {
  if (!("file" in cmd) || cmd.file >= 0) return cmd;
  const ids = [...s.files.keys()].sort((a, b) => a - b);
  if (ids.length === 0) return { ...cmd, file: 1 };
  const file = cmd.file === NEWEST ? ids.at(-1)! : ids[(-1 - cmd.file) % ids.length];
  return { ...cmd, file };
}

const rec = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

const mmapArb: fc.Arbitrary<UacceCommand> = fc.record({
  file: fileArb,
  pgoff: fc.oneof(rec(8, fc.constantFrom(0, 1)), rec(1, aroundEdges([2], 0, 2 ** 20))),
  exact: fc.oneof(rec(6, fc.constant(true)), rec(1, fc.constant(false))),
  size: aroundEdges([0, PAGE_SIZE, UACCE_DUS_SIZE], 0, 2 ** 24),
}).map(({ file, pgoff, exact, size }) => ({
  op: "uacce.mmap" as const,
  file,
  pgoff,
  size: exact ? (pgoff === 0 ? UACCE_MMIO_SIZE : UACCE_DUS_SIZE) : size,
}));

const registerArb: fc.Arbitrary<UacceCommand> = fc.record({
  op: fc.constant("uacce.register" as const),
  parent: parentArb,
  qpNum: fc.oneof(rec(6, fc.integer({ min: 1, max: 3 })), rec(1, fc.constantFrom(0, 9))),
  sva: fc.boolean(),
});

const fileOp = (op: "uacce.startQ" | "uacce.putQ" | "uacce.close") =>
  fc.record({ op: fc.constant(op), file: fileArb });

const mapOp = (op: "uacce.munmap" | "uacce.access") =>
  fc.record({ op: fc.constant(op), file: fileArb, map: fc.integer({ min: 1, max: 3 }) });

/**
 * Each op's generator and how often it is drawn in sequential runs and by race actors (the
 * tear-downs, remove and close, that race more often; readAttrs, which races nothing, never).
 */
const OPS: readonly (readonly [number, number, fc.Arbitrary<UacceCommand>])[] = [
  [1, 1, registerArb],
  [1, 4, fc.record({ op: fc.constant("uacce.remove" as const), parent: parentArb })],
  [4, 4, fc.record({ op: fc.constant("uacce.open" as const), parent: parentArb, by: byArb })],
  [3, 2, fileOp("uacce.startQ")],
  [2, 2, fileOp("uacce.putQ")],
  [5, 3, mmapArb],
  [2, 2, mapOp("uacce.munmap")],
  [3, 2, mapOp("uacce.access")],
  [2, 4, fileOp("uacce.close")],
  [1, 0, fc.record({ op: fc.constant("uacce.readAttrs" as const), parent: parentArb })],
];

/** The generated commands, weighted for sequential runs or for race actors. */
function commands(race = false): fc.Arbitrary<UacceCommand> {
  return fc.oneof(
    ...OPS.filter(([seq, racing]) => (race ? racing : seq) > 0)
      .map(([seq, racing, arbitrary]) => rec(race ? racing : seq, arbitrary)),
  );
}

/** A queue set up in one go on a new file, and a file torn down. */
function macros(): fc.Arbitrary<readonly UacceCommand[]> {
  const setUp = fc.record({ parent: fc.constantFrom(1, 2), by: byArb }).map((
    { parent, by },
  ): UacceCommand[] => [
    { op: "uacce.open", parent, by },
    { op: "uacce.mmap", file: NEWEST, pgoff: 0, size: UACCE_MMIO_SIZE },
    { op: "uacce.mmap", file: NEWEST, pgoff: 1, size: UACCE_DUS_SIZE },
    { op: "uacce.startQ", file: NEWEST },
  ]);
  const tearDown = fileArb.map((file): UacceCommand[] => [
    { op: "uacce.munmap", file, map: 1 },
    { op: "uacce.munmap", file, map: 2 },
    { op: "uacce.close", file },
  ]);
  return fc.oneof(setUp, tearDown);
}

/** Parents 1 (SVA) and 2 (SVA refused), a started and mapped queue on 1, an idle one on 2. */
export const UACCE_PRELUDE: readonly UacceCommand[] = [
  { op: "uacce.register", parent: 1, qpNum: 3, sva: true },
  { op: "uacce.register", parent: 2, qpNum: 2, sva: true },
  { op: "uacce.open", parent: 1, by: 1 },
  { op: "uacce.mmap", file: 1, pgoff: 0, size: UACCE_MMIO_SIZE },
  { op: "uacce.mmap", file: 1, pgoff: 1, size: UACCE_DUS_SIZE },
  { op: "uacce.startQ", file: 1 },
  { op: "uacce.open", parent: 2, by: 2 },
];

/** The char-device (uacce) machine. */
export const uacceMachine: Machine<UacceState, UacceCommand> = {
  name: "uacce",
  vars: ["svaParents", "devices", "files", "pasids", "leaks", "nextDev", "nextFile"],
  prelude: UACCE_PRELUDE,
  quirks: ["removeVsOpenNoLock", "releaseVsRemoveRace", "putQueueFreesMapped"],
  initial: () => initialUacceState(),
  step: stepUacce,
  violations: (s, scope) => checkUacceInvariants(s, scope),
  parseCommand: (op, args, opPath, argsPath) =>
    parseWithSchema<UacceCommand>(uacceCommandSchema, op, args, opPath, argsPath),
  schema: uacceCommandSchema,
  results: uacceResults,
  commands,
  macros,
  raceCommands: () => commands(true),
  resolve,
  implementation: (quirks, sched) => new UacceAdapter(new Platform({ sched, quirks })),
};
