/**
 * The machine a wd process runs on: one QM function (the accelerator) probed, registered with
 * sdmdev without PASID support, the mdev core making IOMMU groups, and VFIO with a container
 * for each process ({@link bootWdHost}); or the same QM function registered with uacce, the
 * char-device design ({@link bootWdUacceHost}). The ZIP sample and the `wd` machines boot them
 * here.
 *
 * @module
 */
import type { QmConfig } from "../../spec/qm.ts";
import { UACCE_SVA_PARENTS } from "../../spec/uacce.ts";
import type { QmEngine } from "../device/qm_device.ts";
import { qmSdmdevOps, RingNames } from "../hisi/qm_sdmdev.ts";
import { qmUacceInterface } from "../hisi/qm_uacce.ts";
import { AddressSpace } from "../mem/mm.ts";
import type { Platform, QmFunction } from "../platform.ts";
import { SvaPasids } from "../sdmdev/sva.ts";
import { UacceCore } from "../uacce/uacce.ts";
import { mdevVfioDevices, SdmdevClass, VfioSdmdev } from "../sdmdev/sdmdev.ts";
import { MdevCore } from "../vfio/mdev.ts";
import { Vfio } from "../vfio/vfio.ts";

/** The kernel a wd process talks to: one QM function, its sdmdev, the mdev core and VFIO. */
export interface WdHost {
  /** Kind tag: the accelerator is an sdmdev. */
  readonly backend: "sdmdev";
  /** The machine. */
  readonly platform: Platform;
  /** The accelerator's PCI function. */
  readonly fn: QmFunction;
  /** The mdev core. */
  readonly mdev: MdevCore;
  /** sdmdev, with `fn` registered. */
  readonly sdmdev: SdmdevClass;
  /** The VFIO core, with a container for each process. */
  readonly vfio: Vfio;
}

/** The kernel a wd process talks to on the char-device design: one QM function, uacce. */
export interface WdUacceHost {
  /** Kind tag: the accelerator is a uacce device. */
  readonly backend: "uacce";
  /** The machine. */
  readonly platform: Platform;
  /** The accelerator's PCI function. */
  readonly fn: QmFunction;
  /** The uacce class, with `fn` registered. */
  readonly uacce: UacceCore;
  /** Each process's memory, by pid. */
  readonly mms: ReadonlyMap<number, AddressSpace>;
}

/** Either machine. */
export type WdKernel = WdHost | WdUacceHost;

/** How to boot a {@link WdHost}. */
export interface WdHostOptions {
  /** QM sizes (missing ones take the spec's defaults). */
  readonly config: Partial<QmConfig>;
  /** What the device's requests do. */
  readonly engine: QmEngine;
  /** The processes (each gets a container). */
  readonly pids: readonly number[];
}

/** Nothing to quiesce: a process detaches its group only after its queue was released. */
const NO_HOOKS = { quiesce: () => Promise.resolve(), resume: () => {} };

/**
 * Boots QM function 1 on `platform` (`hisi_zip_probe`), registers it with sdmdev as
 * `hisi_zip` and brings up VFIO for `pids`. Throws if the registration fails.
 */
export async function bootWdHost(platform: Platform, options: WdHostOptions): Promise<WdHost> {
  const fn = platform.probeQm(1, options.config, options.engine);
  const { kernel, iommu } = platform;
  const mdev = new MdevCore(kernel, iommu);
  const sdmdev = new SdmdevClass(kernel, mdev);
  const rings = new RingNames();
  const ops = qmSdmdevOps(kernel, { qm: fn.qm, device: fn.device, crypto: fn.crypto, rings });
  const registered = await sdmdev.register(new VfioSdmdev(fn.id, "hisi_zip", false, ops));
  if (registered !== undefined) {
    throw new Error(`registering the QM function failed: ${registered}`);
  }
  const processes = options.pids.map((id) => ({ id, mm: id }));
  const vfio = new Vfio(kernel, iommu, NO_HOOKS, processes, mdevVfioDevices(mdev, sdmdev));
  return { backend: "sdmdev", platform, fn, mdev, sdmdev, vfio };
}

/**
 * Boots QM function 1 on `platform` and registers it with uacce asking for SVA, which it keeps
 * when the topology's IOMMU can do it for that function ({@link UACCE_SVA_PARENTS}) or
 * `svaCapable` says so. Throws if the registration fails.
 */
export function bootWdUacceHost(
  platform: Platform,
  options: WdHostOptions & { readonly svaCapable?: boolean },
): WdUacceHost {
  const fn = platform.probeQm(1, options.config, options.engine);
  const { kernel, iommu } = platform;
  const uacce = new UacceCore(kernel, new SvaPasids());
  const svaCapable = options.svaCapable ?? UACCE_SVA_PARENTS.includes(fn.id);
  const u = uacce.register(fn.id, qmUacceInterface(kernel, iommu, fn, true), svaCapable);
  if (typeof u === "string") throw new Error(`registering the QM function failed: ${u}`);
  const mms = new Map(options.pids.map((pid) => [pid, new AddressSpace(pid, kernel.phys)]));
  return { backend: "uacce", platform, fn, uacce, mms };
}
