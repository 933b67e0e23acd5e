/**
 * Lanes of a sequence diagram: who issues an operation (a process, the kernel, the admin through
 * sysfs, the IRQ thread, the device, a race actor) and which component handles it, derived from
 * the op's component prefix and its arguments.
 *
 * @module
 */
import type { Cmd } from "../machine.ts";

/** The component an op's prefix names, as a lane title. */
const COMPONENTS: Record<string, string> = {
  iommu: "IOMMU",
  type1: "VFIO type1",
  mdev: "mdev core",
  sdmdev: "sdmdev",
  qm: "QM",
  zipc: "ZIP driver",
  wd: "wd library",
};

/** Ops the stack view hands to a component other than its prefix's. */
const STACK_TARGETS: Record<string, string> = {
  "stack.send": "QM",
  "stack.deviceStep": "IOMMU",
  "stack.exit": "kernel",
};

/** Callers of ops whose arguments do not name one. */
const CALLERS: Record<string, string> = {
  "iommu.dma": "device",
  "mdev.create": "admin (sysfs)",
  "mdev.remove": "admin (sysfs)",
  "mdev.readTypes": "admin (sysfs)",
  "mdev.open": "vfio user",
  "mdev.release": "vfio user",
  "sdmdev.create": "admin (sysfs)",
  "sdmdev.remove": "admin (sysfs)",
  "sdmdev.readAttrs": "admin (sysfs)",
  "sdmdev.notify": "IRQ thread",
  "qm.irq": "IRQ thread",
  "qm.deviceStep": "device",
  "qm.deviceBadEqe": "device",
  "qm.mailboxDone": "device",
  "stack.deviceStep": "device",
  "wd.compress": "process",
  "wd.decompress": "process",
};

function process(who: unknown): string {
  return who === "kernel" ? "kernel" : `pid ${who}`;
}

/**
 * Who issues `cmd`: a process named by `by` (or by the owner of `qm.alloc`, or by a type1
 * container: one container per process, of the same id, as `spec/stack.ts` states, or by the `mm`
 * of a process's fork or store), else the caller the op implies (the admin for sysfs, the device,
 * the IRQ thread), else the kernel.
 */
export function callerOf(cmd: Cmd): string {
  const args = cmd as unknown as Record<string, unknown>;
  if ("by" in args) return process(args.by);
  if (cmd.op === "qm.alloc") return process(args.owner);
  if (cmd.op.startsWith("type1.")) return process(args.container);
  if (cmd.op.startsWith("mm.")) return process(args.mm);
  return CALLERS[cmd.op] ?? "kernel";
}

/** The component that handles `cmd`. */
export function componentOf(cmd: Cmd): string {
  const prefix = cmd.op.slice(0, cmd.op.indexOf("."));
  return STACK_TARGETS[cmd.op] ?? COMPONENTS[prefix] ?? prefix;
}
