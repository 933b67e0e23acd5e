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
import { anyCommand, parseCommand, poolsFor, RACE_WEIGHTS } from "../commands.ts";
import type { Machine } from "../machine.ts";

/** The group fds each container's process opens in the prelude: the pairs commands favour. */
const PAIRS: readonly (readonly [number, number])[] = [[1, 2], [1, 10], [2, 1], [2, 11]];

/** IOMMU groups and domains, VFIO containers and type1 mappings. */
export const type1Machine: Machine<SystemState, Command> = {
  name: "type1",
  vars: ["iommu", "type1"],
  // Each process opens its groups' fds: container 1 the unrelated device and one sdmdev,
  // container 2 the accelerator's own function and the other sdmdev.
  prelude: PAIRS.map(([container, group]) => ({ op: "type1.openGroup", container, group })),
  quirks: [
    "skipUndoOnDetach",
    "unshareBeforeUndo",
    "attachSdgroupReturnsOneOnShareFailure",
    "unshareUnderflow",
    "doubleSdmdevSameParent",
    "shareWithoutGroupLock",
  ],
  initial: () => initialState(DEFAULT_TOPOLOGY),
  step,
  violations,
  parseCommand,
  schema: COMMAND_SCHEMA,
  results: RESULTS,
  commands: () => anyCommand(poolsFor(DEFAULT_TOPOLOGY, PAIRS)),
  raceCommands: () => anyCommand(poolsFor(DEFAULT_TOPOLOGY, PAIRS), RACE_WEIGHTS),
  implementation: (quirks, sched) =>
    new Type1Adapter({ topology: DEFAULT_TOPOLOGY, quirks, sched }),
};
