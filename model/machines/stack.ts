/**
 * The `stack` view: the composed system of `spec/stack.ts` — two processes with their VFIO
 * containers, the mdevs of two QM functions (one with PASID support), the sdmdev queues they open
 * through their device fds, their DMA mappings in the shared domains, their requests, the device
 * executing them, the user driver receiving their completions, and a kernel crypto user of
 * function 1. The prelude registers both QMs with sdmdev and leaves each process with a running
 * queue: process 1 on function 1 (mdev group 10 and PCI group 2 attached to its container, so it
 * has the shared domain and one of its own, the IOMMU set, the device fd open, two pages mapped
 * at {@link USER_IOVA}, the MMIO page and the ring mmapped), process 2 on function 3 (mdev group
 * 11, its container bound to its mm by `sva.bind`, its queue started by BIND_PASID with that
 * PASID, the same mappings), so requests flow from the first generated command. Everything can be
 * undone and redone from there, in any order, by either process, the PCI remove of a QM
 * (`sdmdev.unregister`), its new bind (`sdmdev.register`) and a second BIND_PASID included.
 *
 * Race actors draw the same commands except four, which run in sequences and race set-ups: the
 * crypto transforms (a transform's six kernel DMA allocations interleave with a racing queue
 * start's, and where each lands in the function's IOVA space is not a property of either
 * operation alone), a process's exit and its `exit_mm` half (`do_exit` is its closes one after
 * another, which other processes see one by one; the actors' own munmaps and closes race as
 * themselves), and fork (no scheduling point), with the forked children's sends and receives.
 *
 * @module
 */
import fc from "fast-check";
import { aroundEdges } from "../arbitraries.ts";
import { RING_SIZE } from "../../spec/sdmdev.ts";
import {
  initialStackState,
  STACK_FUNCTIONS,
  STACK_PARENT,
  STACK_QP_NUM,
  STACK_SVA_PARENT,
  type StackCommand,
  stackCommandSchema,
  stackResults,
  type StackState,
  stackViolations,
  stepStack,
} from "../../spec/stack.ts";
import { PAGE_SIZE } from "../../spec/types.ts";
import { StackAdapter } from "../adapters/stack.ts";
import { parseWithSchema } from "../commands.ts";
import type { Machine } from "../machine.ts";

/** The IOVA the processes map their buffers at, far above the kernel's DMA allocations. */
export const USER_IOVA = 0x1000_0000;
/** Where the processes' buffers are in their address spaces. */
const USER_VADDR = 0x10000;

const U1 = "11111111-2222-3333-4444-555555555555";
const U2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const U3 = "33333333-4444-5555-6666-777777777777";
/** The group of U1 (the first mdev created), then U3's. */
const G1 = 10;
const G3 = 11;

/** `sdmdev.register` of each QM function, as its probe does it. */
export const STACK_REGISTERS: readonly StackCommand[] = STACK_FUNCTIONS.map((f) => ({
  op: "sdmdev.register",
  parent: f.parent,
  name: "zip",
  qpNum: STACK_QP_NUM,
  sva: f.sva,
}));

/**
 * Process 1 with a running queue on U1 (function 1), process 2 with one on U3 (function 3,
 * started by BIND_PASID with its PASID), both ready to send (see the module comment).
 */
export const STACK_PRELUDE: readonly StackCommand[] = [
  ...STACK_REGISTERS,
  { op: "sdmdev.create", parent: STACK_PARENT, uuid: U1 },
  { op: "type1.openGroup", container: 1, group: G1 },
  { op: "type1.attach", container: 1, group: G1 },
  { op: "type1.openGroup", container: 1, group: 2 },
  { op: "type1.attach", container: 1, group: 2 },
  { op: "type1.setIommu", container: 1 },
  { op: "type1.getDeviceFd", container: 1, group: G1 },
  { op: "type1.map", container: 1, iova: USER_IOVA, size: 2 * PAGE_SIZE, vaddr: USER_VADDR },
  { op: "sdmdev.mmap", uuid: U1, by: 1, pgoff: 0, size: PAGE_SIZE },
  { op: "sdmdev.mmap", uuid: U1, by: 1, pgoff: 1, size: RING_SIZE },
  { op: "sdmdev.create", parent: STACK_SVA_PARENT, uuid: U3 },
  { op: "type1.openGroup", container: 2, group: G3 },
  { op: "type1.attach", container: 2, group: G3 },
  { op: "type1.setIommu", container: 2 },
  { op: "type1.getDeviceFd", container: 2, group: G3 },
  { op: "sva.bind", container: 2 },
  { op: "sdmdev.bindPasid", uuid: U3, by: 2, pasid: 1 },
  { op: "type1.map", container: 2, iova: USER_IOVA, size: 2 * PAGE_SIZE, vaddr: USER_VADDR },
  { op: "sdmdev.mmap", uuid: U3, by: 2, pgoff: 0, size: PAGE_SIZE },
  { op: "sdmdev.mmap", uuid: U3, by: 2, pgoff: 1, size: RING_SIZE },
];

const rec = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

/**
 * The IOVA of U1's ring after the prelude: once the queue is released, the next ring on
 * function 1 goes there, so a user mapping made there in between fails that queue's start.
 */
export const U1_RING_IOVA: number = (() => {
  let s = initialStackState();
  for (const cmd of STACK_PRELUDE) s = stepStack(s, cmd).state;
  const life = s.sdmdev.queues.get(U1)?.life;
  if (life?.state !== "started") throw new Error("the prelude leaves U1's queue stopped");
  return s.iommu.buffers.get(s.rings.get(life.ring)!)!.iova;
})();

/**
 * Teardowns drawn as one unit: a process's full release of its device, both mappings (whose
 * ids the prelude's mmaps got) and then its fd, so that the file really goes.
 */
function stackMacros(): fc.Arbitrary<readonly StackCommand[]> {
  return fc.constantFrom(
    ...([[U1, 1, 1, G1], [U3, 2, 2, G3]] as const).map(([uuid, by, container, group]) => [
      { op: "sdmdev.munmap" as const, uuid, by, map: 1 },
      { op: "sdmdev.munmap" as const, uuid, by, map: 2 },
      { op: "type1.closeDeviceFd" as const, container, group },
    ]),
  );
}

/**
 * The generated commands; `whole` adds those that are not one atomic step against concurrent
 * callers: a process's exit and the kernel crypto user's set-up and tear-down.
 */
function stackCommands(whole: boolean): fc.Arbitrary<StackCommand> {
  const container = fc.oneof(rec(3, fc.constant(1)), rec(1, fc.constant(2)));
  const group = fc.oneof(
    rec(6, fc.constantFrom(G1, G3, G3 + 1)),
    rec(1, fc.constantFrom(STACK_PARENT, 2, STACK_SVA_PARENT)),
  );
  const uuid = fc.oneof(rec(3, fc.constant(U1)), rec(1, fc.constantFrom(U2, U3)));
  const parent = fc.oneof(rec(3, fc.constant(STACK_PARENT)), rec(1, fc.constant(STACK_SVA_PARENT)));
  const by = fc.oneof(rec(3, fc.constant(1)), rec(1, fc.constant(2)));
  const page = (n: number) => fc.integer({ min: 0, max: n }).map((k) => k * PAGE_SIZE);
  const iova = page(3).map((o) => USER_IOVA + o);
  const type1 = <K extends string>(op: K, w: number) =>
    rec(w, fc.record({ op: fc.constant(op), container, group }));
  const arbitraries: { weight: number; arbitrary: fc.Arbitrary<StackCommand> }[] = [
    type1("type1.openGroup", 2),
    type1("type1.closeGroup", 1),
    type1("type1.attach", 2),
    type1("type1.detach", 1),
    type1("type1.getDeviceFd", 2),
    type1("type1.closeDeviceFd", 1),
    rec(1, fc.record({ op: fc.constant("type1.setIommu"), container })),
    rec(
      2,
      fc.record({
        op: fc.constant("type1.map"),
        container,
        // Now and then an IOVA among the kernel's DMA buffers (boot buffers, rings), where a
        // ring allocation can collide with it and a queue's start fail; sometimes U1's ring's.
        iova: fc.oneof(
          rec(10, iova),
          rec(2, fc.integer({ min: 1, max: 120 }).map((p) => p * PAGE_SIZE)),
          rec(1, fc.constant(U1_RING_IOVA)),
        ),
        size: page(2).filter((s) => s > 0),
        vaddr: page(3).map((o) => USER_VADDR + o),
      }),
    ),
    rec(
      1,
      fc.record({
        op: fc.constant("type1.unmap"),
        container,
        iova,
        size: page(3).filter((s) => s > 0),
      }),
    ),
    rec(
      2,
      fc.record({ op: fc.constant("sdmdev.create"), parent, uuid }),
    ),
    rec(1, fc.record({ op: fc.constant("sdmdev.remove"), uuid })),
    rec(1, fc.record({ op: fc.constant("sdmdev.unregister"), parent })),
    rec(1, fc.constantFrom(...STACK_REGISTERS)),
    rec(1, fc.record({ op: fc.constant("sva.bind"), container })),
    rec(1, fc.record({ op: fc.constant("sva.unbind"), container })),
    rec(
      2,
      fc.record({
        op: fc.constant("sdmdev.bindPasid"),
        uuid,
        by,
        pasid: fc.oneof(rec(4, fc.constant(1)), rec(1, fc.constant(2))),
      }),
    ),
    rec(
      2,
      fc.record({
        op: fc.constant("sdmdev.mmap"),
        uuid,
        by,
        pgoff: fc.oneof(
          rec(6, fc.constantFrom(0, 1)),
          rec(1, aroundEdges([2, 16, 17], 0, 2 ** 40)),
        ),
        size: fc.oneof(
          rec(6, fc.constantFrom(PAGE_SIZE, RING_SIZE)),
          rec(1, aroundEdges([0, PAGE_SIZE, RING_SIZE], 0, 2 ** 40)),
        ),
      }),
    ),
    rec(
      1,
      fc.record({
        op: fc.constant("sdmdev.munmap"),
        uuid,
        by,
        map: fc.integer({ min: 1, max: 3 }),
      }),
    ),
    rec(6, fc.record({ op: fc.constant("stack.send"), uuid, by, iova })),
    rec(5, fc.record({ op: fc.constant("stack.recv"), uuid, by })),
    rec(
      6,
      fc.record({
        op: fc.constant("stack.deviceStep"),
        parent,
        qn: fc.oneof(rec(4, fc.constant(0)), rec(1, fc.nat(STACK_QP_NUM - 1))),
      }),
    ),
  ];
  if (whole) {
    // A forked child (3 or 4) of either process, sending, receiving and exiting as processes do.
    const child = fc.constantFrom(3, 4);
    const anyone = fc.oneof(rec(6, by), rec(1, child));
    arbitraries.push(
      rec(1, fc.record({ op: fc.constant("stack.exit"), by: anyone })),
      rec(1, fc.record({ op: fc.constant("stack.exitMm"), by: anyone })),
      rec(1, fc.record({ op: fc.constant("stack.fork"), by: anyone, child })),
      rec(2, fc.record({ op: fc.constant("stack.send"), uuid, by: child, iova })),
      rec(1, fc.record({ op: fc.constant("stack.recv"), uuid, by: child })),
    );
  }
  if (whole) {
    const tfm = fc.integer({ min: 1, max: 2 });
    const parent = fc.constant(STACK_PARENT);
    arbitraries.push(
      rec(1, fc.record({ op: fc.constant("sdmdev.tfmInit"), parent, tfm })),
      rec(1, fc.record({ op: fc.constant("sdmdev.tfmExit"), parent, tfm })),
    );
  }
  return fc.oneof(...arbitraries);
}

/** The composed stack. */
export const stackMachine: Machine<StackState, StackCommand> = {
  name: "stack",
  vars: [
    "iommu",
    "type1",
    "mdev",
    "sdmdev",
    "rings",
    "tfmBuffers",
    "requests",
    "completions",
    "sva",
    "svaBinds",
  ],
  prelude: STACK_PRELUDE,
  quirks: [
    "stopQueueNoop",
    "skipUndoOnDetach",
    "unshareBeforeUndo",
    "removeWhileOpenFreesRing",
    "kernelConsumesUserCq",
    "reopenRestartsQueue",
    "openIgnoresStartFailure",
    "freeBeforeUnbind",
    "pasidFreedAtMmExitWhileBound",
    "forkInheritsQueueMappings",
  ],
  initial: initialStackState,
  macros: stackMacros,
  step: stepStack,
  violations: stackViolations,
  parseCommand: (op, args, opPath, argsPath) =>
    parseWithSchema<StackCommand>(stackCommandSchema, op, args, opPath, argsPath),
  schema: stackCommandSchema,
  results: stackResults,
  commands: () => stackCommands(true),
  raceCommands: () => stackCommands(false),
  implementation: (quirks, sched) => new StackAdapter(quirks, sched),
};
