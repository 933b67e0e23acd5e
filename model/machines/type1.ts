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

/** IOMMU groups and domains, VFIO containers and type1 mappings. */
export const type1Machine: Machine<SystemState, Command> = {
  name: "type1",
  vars: ["iommu", "type1"],
  // Each process opens its groups' fds: container 1 the unrelated device and one sdmdev,
  // container 2 the accelerator's own function and the other sdmdev.
  prelude: [
    { op: "type1.openGroup", container: 1, group: 2 },
    { op: "type1.openGroup", container: 1, group: 10 },
    { op: "type1.openGroup", container: 2, group: 1 },
    { op: "type1.openGroup", container: 2, group: 11 },
  ],
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
  commands: () => anyCommand(poolsFor(DEFAULT_TOPOLOGY)),
  raceCommands: () => anyCommand(poolsFor(DEFAULT_TOPOLOGY), RACE_WEIGHTS),
  implementation: (quirks, sched) =>
    new Type1Adapter({ topology: DEFAULT_TOPOLOGY, quirks, sched }),
};
