/**
 * The machine a wd process runs on: one QM function (the accelerator) probed, registered with
 * sdmdev without PASID support, the mdev core making IOMMU groups, and VFIO with a container
 * for each process. The ZIP sample and the `wd` machine boot it here.
 *
 * @module
 */
import type { QmConfig } from "../../spec/qm.ts";
import type { QmEngine } from "../device/qm_device.ts";
import { qmSdmdevOps, RingNames } from "../hisi/qm_sdmdev.ts";
import type { Platform, QmFunction } from "../platform.ts";
import { mdevVfioDevices, SdmdevClass, VfioSdmdev } from "../sdmdev/sdmdev.ts";
import { MdevCore } from "../vfio/mdev.ts";
import { Vfio } from "../vfio/vfio.ts";

/** The kernel a wd process talks to: one QM function, its sdmdev, the mdev core and VFIO. */
export interface WdHost {
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
  return { platform, fn, mdev, sdmdev, vfio };
}
