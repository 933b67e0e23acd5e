/**
 * The IOMMU share/unshare + vfio type1 slice as a {@link Machine}: spec/system.ts against
 * the simulated IOMMU and VFIO (model/adapters/type1.ts) on the default topology.
 *
 * @module
 */
import {
  type Command,
  COMMAND_SCHEMA,
  DEFAULT_TOPOLOGY,
  initialState,
  RESULTS,
  step,
  type SystemState,
  violations,
} from "../../spec/system.ts";
import { Type1Adapter } from "../adapters/type1.ts";
import { anyCommand, parseCommand, poolsFor, RACE_WEIGHTS, WEIGHTS } from "../commands.ts";
import fc from "fast-check";
import type { Machine } from "../machine.ts";
import { PAGE_SIZE } from "../../spec/types.ts";

/** The group fds each container's process opens in the prelude: the pairs commands favour. */
const PAIRS: readonly (readonly [number, number])[] = [
  [1, 2],
  [1, 10],
  [1, 20],
  [2, 1],
  [2, 11],
  [2, 21],
];

/** A page-aligned IOVA or vaddr of the small space the commands use. */
const page = fc.integer({ min: 0, max: 5 }).map((p) => p * PAGE_SIZE);

/** A container's vendor mdev (the pairs it opens in the prelude). */
const VENDOR: ReadonlyMap<number, number> = new Map([[1, 20], [2, 21]]);

/**
 * A vendor mdev at work: its container set up with it (and mapped, so that the pin lands
 * inside a mapping), or a pin of a few pages and the matching unpin.
 */
function vendorMacro(): fc.Arbitrary<readonly Command[]> {
  return fc.tuple(fc.constantFrom(1, 2), page, fc.integer({ min: 1, max: 3 }), page).chain(
    ([container, iova, pages, vaddr]) => {
      const group = VENDOR.get(container)!;
      const pin = { op: "type1.pin" as const, container, group, iova, pages };
      return fc.constantFrom<readonly Command[]>(
        [
          { op: "type1.attach", container, group },
          { op: "type1.setIommu", container },
          { op: "type1.map", container, iova, size: pages * PAGE_SIZE, vaddr },
          pin,
        ],
        [pin, { ...pin, op: "type1.unpin" }],
      );
    },
  );
}

/**
 * The machine's macros: a container set up with one group, a group leaving and joining again,
 * a vendor mdev at work.
 */
function macros(): fc.Arbitrary<readonly Command[]> {
  return fc.oneof(
    fc.constantFrom(...PAIRS).chain(([container, group]) =>
      fc.constantFrom(
        // a process sets its container up with one group
        [
          { op: "type1.attach" as const, container, group },
          { op: "type1.setIommu" as const, container },
        ],
        // a group leaves and joins again: the container's mappings are replayed into it
        [
          { op: "type1.detach" as const, container, group },
          { op: "type1.attach" as const, container, group },
        ],
      )
    ),
    vendorMacro(),
  );
}

/**
 * What a race's set-up draws from: the sequential commands but the process ops, and the
 * macros one step in four. A fork and a store have no scheduling point (the fork race is a
 * sequential one, DOMAIN.md §10), so races start from states of the containers alone.
 */
const SETUP_WEIGHTS = { ...WEIGHTS, "mm.fork": 0, "mm.write": 0 };

/** IOMMU groups and domains, VFIO containers and type1 mappings, processes that fork. */
export const type1Machine: Machine<SystemState, Command> = {
  name: "type1",
  vars: ["iommu", "type1"],
  // The accelerator's kernel driver holds a DMA buffer in its function's default domain (its
  // queue tables, at the kernel allocator's first IOVAs), as the stack's probe does; then each
  // process opens its groups' fds: container 1 the unrelated device and one sdmdev, container
  // 2 the accelerator's own function and the other sdmdev; each also a vendor mdev.
  prelude: [
    { op: "iommu.dmaAlloc", group: 1, pages: 2 },
    ...PAIRS.map(([container, group]) => ({ op: "type1.openGroup" as const, container, group })),
  ],
  quirks: [
    "skipUndoOnDetach",
    "unshareBeforeUndo",
    "attachSdgroupReturnsOneOnShareFailure",
    "unshareUnderflow",
    "doubleSdmdevSameParent",
    "replayPartialFailureLeaks",
    "shareWithoutGroupLock",
    "pinFindDmaSizeZero",
    "pinAccountingAsymmetric",
    "unpinAllSkipsAccounting",
    "replayEmptyDomainList",
    "unmapLeavesStalePins",
    "unpinWithoutLock",
    "forkCowMovesPinnedPage",
  ],
  initial: () => initialState(DEFAULT_TOPOLOGY),
  step,
  violations,
  parseCommand,
  schema: COMMAND_SCHEMA,
  results: RESULTS,
  commands: () => anyCommand(poolsFor(DEFAULT_TOPOLOGY, PAIRS)),
  macros,
  raceSetup: () =>
    fc.oneof(
      {
        weight: 3,
        arbitrary: anyCommand(poolsFor(DEFAULT_TOPOLOGY, PAIRS), SETUP_WEIGHTS).map((c) => [c]),
      },
      { weight: 1, arbitrary: macros() },
    ),
  raceCommands: () => anyCommand(poolsFor(DEFAULT_TOPOLOGY, PAIRS), RACE_WEIGHTS),
  implementation: (quirks, sched) =>
    new Type1Adapter({ topology: DEFAULT_TOPOLOGY, quirks, sched }),
};
