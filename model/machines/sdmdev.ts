/**
 * The mdev core, vfio_mdev, sdmdev and its QM vendor glue as a {@link Machine}: spec/mdev.ts +
 * spec/sdmdev.ts against impl/sdmdev/machine.ts.
 *
 * A prelude registers a generic mdev parent and two sdmdev parents (without and with PASID
 * support) and opens a device on each, so generated traffic starts at once. Generated commands
 * name devices from a small set of UUIDs (a few malformed), and may say "the process holding
 * the device open" or "the caller's own PASID", which the machine resolves from the state.
 *
 * The quirks `putQueueStraySemicolon` and `bindPasidUninitialisedRet` only show with a vendor
 * that lacks `put_queue` / `start_queue`; switching either on also registers the QM vendor
 * without that callback, which is the situation the seed's defect needs.
 *
 * @module
 */
import fc from "fast-check";
import { aroundEdges } from "../arbitraries.ts";
import { type MdevCommand, mdevCommandSchema, mdevResults, stepMdev } from "../../spec/mdev.ts";
import {
  holderOf,
  initialSdmdevWorld,
  RING_SIZE,
  type SdmdevCommand,
  sdmdevCommandSchema,
  sdmdevInvariants,
  sdmdevResults,
  type SdmdevWorld,
  stepSdmdev,
} from "../../spec/sdmdev.ts";
import {
  checkInvariants,
  type CommandSchema,
  PAGE_SIZE,
  type StepResult,
} from "../../spec/types.ts";
import { Platform } from "../../impl/platform.ts";
import type { Quirks } from "../../impl/quirks.ts";
import type { QmOptionalOp } from "../../impl/hisi/qm_sdmdev.ts";
import { SdmdevAdapter } from "../adapters/sdmdev.ts";
import { parseWithSchema } from "../commands.ts";
import type { Machine } from "../machine.ts";

/** A command of the mdev core or of sdmdev. */
export type Cmd = MdevCommand | SdmdevCommand;

/** Every mdev and sdmdev op and its arguments. */
const SCHEMA: CommandSchema<Cmd["op"]> = { ...mdevCommandSchema, ...sdmdevCommandSchema };

/** The spec's step for either component. */
function specStep(w: SdmdevWorld, cmd: Cmd): StepResult<SdmdevWorld> {
  if (cmd.op.startsWith("sdmdev.")) return stepSdmdev(w, cmd as SdmdevCommand);
  const r = stepMdev(w.mdev, cmd as MdevCommand);
  return { ...r, state: { ...w, mdev: r.state } };
}

/** The QM callbacks a quirk needs missing from the vendor. */
function omitted(quirks: Quirks): QmOptionalOp[] {
  const out: QmOptionalOp[] = [];
  if (quirks.putQueueStraySemicolon) out.push("putQueue");
  if (quirks.bindPasidUninitialisedRet) out.push("startQueue");
  return out;
}

const U1 = "11111111-2222-3333-4444-555555555555";
const U2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const U3 = "01234567-89ab-cdef-0123-456789abcdef";
const U4 = "fedcba98-7654-3210-fedc-ba9876543210";
const UUIDS = [U1, U2, U3, U4, U2.toUpperCase(), `${U3}\n`];
const PROCS = [1, 2, 3];
/** `by: HOLDER` in a generated command: the process holding the device open, if any. */
const HOLDER = -1;
/** `pasid: OWN` in a generated BIND_PASID: the caller's PASID, if it has one. */
const OWN = -1;

/**
 * Generic parent 1 with an open mdev; sdmdev parents 3 (no PASID, 3 qps, its ring mapped)
 * and 4 (PASID, 2 qps), each with an sdmdev open, so traffic starts at once; parent 2 is left
 * for either vendor to register.
 */
export const SDMDEV_PRELUDE: readonly Cmd[] = [
  {
    op: "mdev.register",
    parent: 1,
    name: "gpu",
    deviceApi: "vfio-pci",
    capacity: 2,
    types: 2,
    create: true,
    remove: true,
  },
  { op: "mdev.create", parent: 1, type: "gpu-0", uuid: U3 },
  { op: "mdev.open", uuid: U3 },
  { op: "sdmdev.register", parent: 3, name: "zip", qpNum: 3, sva: false },
  { op: "sdmdev.register", parent: 4, name: "zip4", qpNum: 2, sva: true },
  { op: "sdmdev.create", parent: 3, uuid: U1 },
  { op: "sdmdev.open", uuid: U1, by: 1 },
  { op: "sdmdev.mmap", uuid: U1, by: 1, pgoff: 1, size: RING_SIZE },
  { op: "sdmdev.create", parent: 4, uuid: U2 },
  { op: "sdmdev.open", uuid: U2, by: 2 },
  { op: "sdmdev.svaBind", by: 2 },
];

/** Resolves {@link HOLDER} and {@link OWN} against a world (the spec's or the observed one). */
function resolve(w: SdmdevWorld, cmd: Cmd): Cmd {
  if (!("by" in cmd) || !("uuid" in cmd)) return cmd;
  let c = cmd;
  if (c.by === HOLDER) {
    const q = w.sdmdev.queues.get(c.uuid.slice(0, 36).toLowerCase());
    c = { ...c, by: (q && holderOf(q)) ?? 1 };
  }
  if (c.op === "sdmdev.bindPasid" && c.pasid === OWN) {
    const own = [...w.sdmdev.pasids].find(([, mm]) => mm === c.by);
    c = { ...c, pasid: own ? own[0] : 0 };
  }
  return c;
}

function commands(): fc.Arbitrary<Cmd> {
  const sdParent = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(3, 4) },
    { weight: 1, arbitrary: fc.constantFrom(1, 2) },
  );
  const mParent = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(1, 2) },
    { weight: 1, arbitrary: fc.constant(3) },
  );
  const uuid = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...UUIDS) },
    { weight: 1, arbitrary: fc.constant("bad-uuid") },
  );
  const by = fc.oneof(
    { weight: 3, arbitrary: fc.constant(HOLDER) },
    { weight: 2, arbitrary: fc.constantFrom(...PROCS) },
  );
  const rec = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
  const op = <K extends string>(k: K) => fc.constant(k);
  return fc.oneof(
    rec(
      1,
      fc.record({
        op: op("mdev.register"),
        parent: mParent,
        name: fc.constantFrom("gpu", "bad name"),
        deviceApi: fc.constant("vfio-pci"),
        capacity: fc.integer({ min: 0, max: 4 }),
        types: fc.integer({ min: 0, max: 3 }),
        create: fc.boolean(),
        remove: fc.oneof(rec(4, fc.constant(true)), rec(1, fc.constant(false))),
      }),
    ),
    rec(1, fc.record({ op: op("mdev.unregister"), parent: mParent })),
    rec(
      4,
      fc.record({ parent: mParent, i: fc.integer({ min: 0, max: 2 }), uuid }).map((
        c,
      ): Cmd => ({ op: "mdev.create", parent: c.parent, type: `gpu-${c.i}`, uuid: c.uuid })),
    ),
    rec(2, fc.record({ op: op("mdev.remove"), uuid })),
    rec(2, fc.record({ op: op("mdev.open"), uuid })),
    rec(2, fc.record({ op: op("mdev.release"), uuid })),
    rec(1, fc.record({ op: op("mdev.readTypes"), parent: mParent })),
    rec(
      1,
      fc.record({
        op: op("sdmdev.register"),
        parent: sdParent,
        name: fc.constantFrom("zip", "zip4"),
        qpNum: fc.integer({ min: 0, max: 3 }),
        sva: fc.boolean(),
      }),
    ),
    rec(1, fc.record({ op: op("sdmdev.unregister"), parent: sdParent })),
    rec(5, fc.record({ op: op("sdmdev.create"), parent: sdParent, uuid })),
    rec(2, fc.record({ op: op("sdmdev.remove"), uuid })),
    rec(5, fc.record({ op: op("sdmdev.open"), uuid, by })),
    rec(3, fc.record({ op: op("sdmdev.release"), uuid, by })),
    rec(
      5,
      fc.record({
        op: op("sdmdev.mmap"),
        uuid,
        by,
        pgoff: aroundEdges([0, 1, 2, 16, 0x22, 2 ** 32], 0, 2 ** 40),
        size: aroundEdges([0, PAGE_SIZE, 2 * PAGE_SIZE, RING_SIZE, 2 ** 31], 0, 2 ** 40),
      }),
    ),
    rec(2, fc.record({ op: op("sdmdev.munmap"), uuid, by, map: fc.integer({ min: 1, max: 3 }) })),
    rec(
      4,
      fc.record({
        op: op("sdmdev.wait"),
        uuid,
        by,
        timeout: fc.oneof(rec(1, fc.constant(0)), rec(3, fc.integer({ min: 1, max: 20 }))),
        updateAt: fc.oneof(rec(1, fc.constant(-1)), rec(3, fc.integer({ min: 0, max: 25 }))),
      }),
    ),
    rec(3, fc.record({ op: op("sdmdev.notify"), parent: sdParent, qn: fc.nat(3) })),
    rec(2, fc.record({ op: op("sdmdev.svaBind"), by: fc.constantFrom(...PROCS) })),
    rec(
      4,
      fc.record({
        op: op("sdmdev.bindPasid"),
        uuid,
        by,
        pasid: fc.oneof(rec(3, fc.constant(OWN)), rec(1, fc.nat(3))),
      }),
    ),
    rec(1, fc.record({ op: op("sdmdev.readAttrs"), parent: sdParent })),
    rec(1, fc.record({ op: op("sdmdev.tfmInit"), parent: sdParent, tfm: fc.nat(2) })),
    rec(1, fc.record({ op: op("sdmdev.tfmExit"), parent: sdParent, tfm: fc.nat(2) })),
  ) as fc.Arbitrary<Cmd>;
}

/** The mdev/sdmdev machine. */
export const sdmdevMachine: Machine<SdmdevWorld, Cmd> = {
  name: "sdmdev",
  vars: ["mdev", "sdmdev"],
  prelude: SDMDEV_PRELUDE,
  quirks: [
    "putQueueStraySemicolon",
    "errPtrTreatedAsNull",
    "availableInstancesAlwaysZero",
    "waitWithoutMaskNotify",
    "bindPasidUninitialisedRet",
    "stopQueueNoop",
    "reopenRestartsQueue",
    "removeWhileOpenFreesRing",
    "unregisterLoopDoubleDestroy",
    "removeWhileOpenDestroys",
  ],
  initial: initialSdmdevWorld,
  step: specStep,
  violations: (w, scope) => checkInvariants(sdmdevInvariants, w, scope),
  parseCommand: (op, args, opPath, argsPath) =>
    parseWithSchema<Cmd>(SCHEMA, op, args, opPath, argsPath),
  schema: SCHEMA,
  results: { ...mdevResults, ...sdmdevResults },
  commands,
  resolve,
  implementation: (quirks, sched) =>
    new SdmdevAdapter(new Platform({ sched, quirks }), { qmOmits: omitted(quirks) }),
};
