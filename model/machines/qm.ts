/**
 * The QM queue manager as a {@link Machine}: spec/qm.ts against the simulated QM (model/adapters/qm.ts).
 *
 * The checked configuration has three queue pairs and tiny rings (SQ 2, CQ 3, EQ 4) so that
 * wraps, full rings and phase flips happen within a few commands; SQ and CQ depths differ so
 * that a driver confusing the two rings' indices shows. A prelude allocates and starts queue 0
 * for the kernel and queues 1 and 2 for processes 1 and 2; generated commands name a queue and,
 * most of the time, act as its prelude owner, so they get past the permission checks.
 *
 * @module
 */
import fc from "fast-check";
import { aroundEdges } from "../arbitraries.ts";
import {
  DEFAULT_QM_CONFIG,
  initialQmState,
  type QmCommand,
  qmCommandSchema,
  type QmConfig,
  qmInvariants,
  type QmOwner,
  qmResults,
  type QmState,
  step,
} from "../../spec/qm.ts";
import { checkInvariants } from "../../spec/types.ts";
import { QmAdapter } from "../adapters/qm.ts";
import type { QuirkName } from "../../impl/quirks.ts";
import { parseWithSchema } from "../commands.ts";
import type { Machine } from "../machine.ts";
import { Platform } from "../../impl/platform.ts";

/** The QM quirks of the catalogue. */
const QM_QUIRKS: readonly QuirkName[] = [
  "kernelSqFullNeverCleared",
  "userSqHeadFromCqHead",
  "userBadStatusNotConsumed",
  "userSqnNeverSet",
  "sharedDoorbellPage",
  "kernelConsumesUserCq",
  "sendIgnoresCompletionTimeout",
  "eqeCqnUnchecked",
];

/** The configuration `check` uses. */
export const QM_CHECK_CONFIG: QmConfig = { qpNum: 3, sqDepth: 2, cqDepth: 3, eqDepth: 4 };

/**
 * Queue pair lifecycle ops run in race setups only: the data path (send, doorbells, device,
 * poll, IRQ thread, mask, mailbox) races; a release racing a send on the same queue is a
 * caller error the drivers do not guard against yet.
 */
const LIFECYCLE: readonly QmCommand["op"][] = ["qm.alloc", "qm.start", "qm.release"];

/** Who the prelude makes the owner of each queue. */
const PRELUDE_OWNERS: readonly QmOwner[] = ["kernel", 1, 2];

/** The queue's prelude owner mostly, anyone sometimes. */
function actorFor(qn: number): fc.Arbitrary<QmOwner> {
  const anyone = fc.constantFrom<QmOwner>("kernel", 1, 2);
  const owner = PRELUDE_OWNERS[qn];
  return owner === undefined
    ? anyone
    : fc.oneof({ weight: 4, arbitrary: fc.constant(owner) }, { weight: 1, arbitrary: anyone });
}

function commandsFor(qpNum: number): fc.Arbitrary<QmCommand> {
  const qn = fc.oneof( // mostly an allocated queue; qpNum itself is out of range
    { weight: 6, arbitrary: fc.integer({ min: 0, max: qpNum - 1 }) },
    { weight: 1, arbitrary: fc.constant(qpNum) },
  );
  const tag = fc.integer({ min: 0, max: 999 });
  const pid = (by: QmOwner) => (by === "kernel" ? 1 : by);
  const submit = qn.chain((n) =>
    fc.tuple(actorFor(n), tag, fc.nat(4)).map(([by, t, r]): QmCommand =>
      by === "kernel"
        ? { op: "qm.send", qn: n, tag: t }
        : { op: "qm.userSend", qn: n, by, tag: t, ring: r > 0 }
    )
  );
  // Ring indexes mostly within the small rings, now and then at the depths, at bit 15 and at
  // the u16 edge, or anywhere below 2^32.
  const index = fc.oneof(
    { weight: 4, arbitrary: fc.nat(17) },
    { weight: 1, arbitrary: aroundEdges([1023, 1024, 0x8000, 0xffff], 0, 2 ** 32) },
  );
  // The priority mostly 0 (the drivers' value), now and then odd (its bit 0 sits next to the
  // index's bit 15), at the u16 edge, or anything the field holds or not.
  const priority = fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: aroundEdges([1, 0x8000, 0xffff], 0, 2 ** 32) },
  );
  // The cmd mostly one the hardware knows (SQ, CQ, EQ, AEQ) or the first it does not; now and
  // then a known one plus one high bit, 2^8 to 2^31: a decoder keeping fewer than 16 bits
  // takes 2^k + n for command n, an encoder letting 2^16 or more through spills it into the
  // fields around; or anything below 2^32.
  const cmd = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.integer({ min: 8, max: 31 }), fc.integer({ min: 0, max: 3 }))
        .map(([bit, known]) => 2 ** bit + known),
    },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 32 }) },
  );
  // The queue mostly as drawn, one time in nine with bit 16 set (not a u16: refused).
  const doorbell = qn.chain((n) =>
    fc.tuple(actorFor(n), cmd, index, priority, fc.nat(8)).map((
      [by, cmd, index, priority, wide],
    ): QmCommand => ({
      op: "qm.doorbell",
      by,
      qn: wide === 8 ? n + 0x10000 : n,
      cmd,
      index,
      priority,
    }))
  );
  const poll = qn.chain((n) =>
    actorFor(n).map((by): QmCommand => ({ op: "qm.poll", qn: n, by: pid(by) }))
  );
  return fc.oneof(
    {
      weight: 1,
      // Mostly real owners; now and then one that is neither the kernel nor a pid.
      arbitrary: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom<QmOwner>("kernel", 1, 2) },
        { weight: 1, arbitrary: fc.constantFrom(0, -1) as fc.Arbitrary<QmOwner> },
      ).map((owner): QmCommand => ({ op: "qm.alloc", owner })),
    },
    { weight: 1, arbitrary: qn.map((n): QmCommand => ({ op: "qm.start", qn: n })) },
    { weight: 1, arbitrary: qn.map((n): QmCommand => ({ op: "qm.release", qn: n })) },
    { weight: 10, arbitrary: submit },
    { weight: 2, arbitrary: doorbell },
    {
      weight: 8,
      arbitrary: fc.tuple(qn, fc.constantFrom(0, 0, 0, 0x0d, 5)).map((
        [n, status],
      ): QmCommand => ({ op: "qm.deviceStep", qn: n, status })),
    },
    { weight: 6, arbitrary: poll },
    { weight: 4, arbitrary: fc.constant<QmCommand>({ op: "qm.irq" }) },
    {
      weight: 1,
      arbitrary: fc.boolean().map((masked): QmCommand => ({ op: "qm.setIrqMask", masked })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 5 }), qn).map((
        [cmd, queue],
      ): QmCommand => ({ op: "qm.mailbox", cmd, queue })),
    },
    { weight: 1, arbitrary: fc.constant<QmCommand>({ op: "qm.mailboxDone" }) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        { weight: 8, arbitrary: fc.integer({ min: 0, max: qpNum + 2 }) },
        { weight: 1, arbitrary: fc.constantFrom(0xffff, 0x10000, -1) },
      ).map((cqn): QmCommand => ({ op: "qm.deviceBadEqe", cqn })),
    },
  );
}

/**
 * A QM machine called `name` for `config` (the prelude allocates and starts up to three
 * queues), carrying the QM quirks when `withQuirks`.
 */
export function qmMachineWith(
  config: QmConfig,
  name = "qm",
  withQuirks = true,
): Machine<QmState, QmCommand> {
  const prelude: QmCommand[] = PRELUDE_OWNERS.slice(0, config.qpNum).flatMap((owner, qn) => [
    { op: "qm.alloc", owner },
    { op: "qm.start", qn },
  ]);
  return {
    name,
    vars: Object.keys(initialQmState(config)),
    maxCommands: 80,
    prelude,
    quirks: withQuirks ? QM_QUIRKS : [],
    initial: () => initialQmState(config),
    step,
    violations: (state, scope) => checkInvariants(qmInvariants, state, scope),
    parseCommand: (op, args, opPath, argsPath) =>
      parseWithSchema<QmCommand>(qmCommandSchema, op, args, opPath, argsPath),
    schema: qmCommandSchema,
    results: qmResults,
    commands: () => commandsFor(config.qpNum),
    raceCommands: () => commandsFor(config.qpNum).filter((c) => !LIFECYCLE.includes(c.op)),
    implementation: (quirks, sched) => new QmAdapter(new Platform({ sched, quirks }), config),
  };
}

/** The QM machine `check` runs. */
export const qmMachine: Machine<QmState, QmCommand> = qmMachineWith(QM_CHECK_CONFIG);

/**
 * Rings of unequal depths (SQ 4, CQ 2, EQ 3), where the device stalls on a full CQ (three
 * SQEs outstanding, one CQE slot), which `qm` cannot reach (a producer's `sqDepth - 1`
 * outstanding requests always fit a CQ as deep), and on a full EQ within a few runs (`qm`
 * reaches it rarely).
 */
export const qmStallMachine: Machine<QmState, QmCommand> = qmMachineWith(
  { qpNum: 3, sqDepth: 4, cqDepth: 2, eqDepth: 3 },
  "qm-stall",
  false,
);

/** The same at the hardware's default depth of 1024 (index arithmetic on large rings). */
export const qm1024Machine: Machine<QmState, QmCommand> = qmMachineWith(
  { ...DEFAULT_QM_CONFIG, qpNum: 3 },
  "qm1024",
  false,
);
