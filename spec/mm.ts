/**
 * Processes of the type1 world and the two things they do to their memory here: fork and
 * store (DOMAIN.md §10, the fork race).
 *
 * Intended behaviour, as Linux has done since 5.12 (mm/memory.c copy_present_page, with
 * page_needs_cow_for_dma):
 * - `mm.fork` makes a child process whose address space is a copy-on-write image of its
 *   parent's; a page the parent has pinned for DMA is copied for the child at once, so the
 *   parent keeps the pinned page, mapped by it alone: its stores and the device's DMA stay on
 *   one page. Nothing else of the type1 state changes: the child inherits the parent's open
 *   files (the container fd, its group and device fds: fork copies the file table), but every
 *   `type1.*` op here is the container's ioctl as issued by the process that opened it, and
 *   the container's DMA mappings, their pins and locked_vm stay the parent's (vfio_dma keeps
 *   the task that mapped it); the child pins nothing;
 * - `mm.write` is a store of a process to one of its pages: copy-on-write gives the writer a
 *   page of its own when another process shares it, which changes no state this module
 *   observes. What the spec states is what must not change: every IOVA a container maps
 *   still reaches the page of its opener at the mapped address (the system invariant
 *   `dma-lands-in-mapping-process`).
 *
 * Errors: a process that does not exist is ENODEV (as an unknown container is); a child id
 * in use is EEXIST, one that is not a positive integer EINVAL; a store's address must be
 * page-aligned (EINVAL).
 *
 * @module
 */
import { pageAligned, setIn } from "./iommu.ts";
import type { Type1World } from "./type1.ts";
import {
  type CommandSchema,
  fail,
  ok,
  type ResultTable,
  type StepResult,
  unknownOp,
} from "./types.ts";

/** Commands of processes: fork, and a store to a page. */
export type MmCommand =
  | { readonly op: "mm.fork"; readonly mm: number; readonly child: number }
  | { readonly op: "mm.write"; readonly mm: number; readonly vaddr: number };

/** Executes one process command; `mm.fork` returns the child's id. */
export function stepMm(world: Type1World, cmd: MmCommand): StepResult<Type1World> {
  if (!Object.hasOwn(mmCommandSchema, cmd.op)) unknownOp(cmd);
  const { processes } = world.type1;
  if (!processes.has(cmd.mm)) return fail(world, "ENODEV");
  if (cmd.op === "mm.write") {
    return pageAligned(cmd.vaddr)
      ? { state: world, ret: ok(0), events: [] }
      : fail(world, "EINVAL");
  }
  if (!Number.isSafeInteger(cmd.child) || cmd.child < 1) return fail(world, "EINVAL");
  if (processes.has(cmd.child)) return fail(world, "EEXIST");
  const type1 = { ...world.type1, processes: setIn(processes, cmd.child, cmd.mm) };
  return { state: { ...world, type1 }, ret: ok(cmd.child), events: [] };
}

/** Every process op and its argument fields. */
export const mmCommandSchema: CommandSchema<MmCommand["op"]> = {
  "mm.fork": { mm: "int", child: "int" },
  "mm.write": { mm: "int", vaddr: "int" },
};

/** The shape of every process op's success value: the child's id, and 0. */
export const mmResults = {
  "mm.fork": "int",
  "mm.write": "zero",
} as const satisfies ResultTable<MmCommand["op"]>;
