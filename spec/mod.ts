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
export * from "./system.ts";
export * from "./mdev.ts";
export * from "./sdmdev.ts";
export * as qm from "./qm.ts";
export * as zip from "./zip.ts";
export * as zipcrypto from "./zipcrypto.ts";
export * as wd from "./wd.ts";
export * as stack from "./stack.ts";
