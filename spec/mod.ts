/**
 * warpspec: an executable specification of the WarpDrive accelerator stack (sdmdev, IOMMU
 * domain sharing, VFIO type1) as pure state machines. Import it as an oracle: start from
 * {@link initialState}, feed commands to {@link step}, and compare each `ret`, the `events`
 * and the resulting state with your implementation; {@link invariants} name what must always
 * hold.
 *
 * @example
 * ```ts
 * import { initialState, step } from "@warpspec/spec";
 * const s0 = initialState();
 * const { state, ret } = step(s0, { op: "type1.attach", container: 1, group: 10 });
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./iommu.ts";
export * from "./type1.ts";
export * from "./mm.ts";
export * from "./system.ts";
export * from "./mdev.ts";
export * from "./sdmdev.ts";
export * as qm from "./qm.ts";
export * as zip from "./zip.ts";
export * as zipcrypto from "./zipcrypto.ts";
export * as wdzip from "./wdzip.ts";
export * as wd from "./wd.ts";
export * as stack from "./stack.ts";
export * as ioasid from "./ioasid.ts";
export * as idxd from "./idxd.ts";
export * as uacce from "./uacce.ts";

import type { AnyMachineSpec } from "./types.ts";
import { ioasidSpec } from "./ioasid.ts";
import { idxdSpec } from "./idxd.ts";
import { mdevSpec } from "./mdev.ts";
import { qmSpec } from "./qm.ts";
import { sdmdevSpec } from "./sdmdev.ts";
import { stackSpec } from "./stack.ts";
import { type1Spec } from "./system.ts";
import { uacceSpec } from "./uacce.ts";
import { wdSpec } from "./wd.ts";
import { wdzipSpec } from "./wdzip.ts";
import { zipCryptoSpec } from "./zipcrypto.ts";

/**
 * Every component's specification record ({@link MachineSpec}: initial state, step,
 * invariants, op table), by component name, with state and command types erased for generic
 * use (each module's own record, e.g. `qm.qmSpec`, keeps them); `stack` is the whole composed
 * system.
 */
export const SPECS: Readonly<Record<string, AnyMachineSpec>> = {
  type1: type1Spec,
  mdev: mdevSpec,
  sdmdev: sdmdevSpec,
  qm: qmSpec,
  zipc: zipCryptoSpec,
  wdzip: wdzipSpec,
  stack: stackSpec,
  ioasid: ioasidSpec,
  idxd: idxdSpec,
  uacce: uacceSpec,
  wd: wdSpec,
};
