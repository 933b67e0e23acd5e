/**
 * Boots one simulated machine: one physical memory, one IOMMU core and one kernel context,
 * and on them the PCI functions with a HiSilicon QM (each in its own IOMMU group, its QM
 * driver and the ZIP crypto driver bound to it). Every view of the system (type1, QM,
 * sdmdev, wd) builds its world here, so the QM an sdmdev queue runs on is the one a kernel
 * crypto user sends through, and every ring the device reaches goes through the same IOMMU.
 *
 * @module
 */
import { initialQmState, type QmConfig } from "../spec/qm.ts";
import { QmDevice, type QmEngine } from "./device/qm_device.ts";
import { HisiQm } from "./hisi/qm.ts";
import { HisiZipCrypto } from "./hisi/zip.ts";
import { IoasidSpace } from "./ioasid/ioasid.ts";
import { IommuCore, type IommuGroup } from "./iommu/core.ts";
import { IommuSva } from "./iommu/sva.ts";
import { Kernel } from "./kernel.ts";
import { PhysMem } from "./mem/phys.ts";
import type { Quirks } from "./quirks.ts";
import { ImmediateSched, type Sched } from "./sched.ts";

/** How to boot a {@link Platform}. */
export interface PlatformOptions {
  /** The scheduler (default: sequential). */
  readonly sched?: Sched;
  /** Seed defects to switch on. */
  readonly quirks?: Quirks;
}

/** A PCI function with a QM, as its drivers' probe left it. */
export interface QmFunction {
  /** The function's id; its IOMMU group has the same number. */
  readonly id: number;
  /** Its IOMMU group (a PCI group). */
  readonly group: IommuGroup;
  /** The hardware. */
  readonly device: QmDevice;
  /** The QM driver. */
  readonly qm: HisiQm;
  /** The ZIP driver's crypto transforms. */
  readonly crypto: HisiZipCrypto;
}

/** An engine that completes every request with status 0 (views whose requests carry no payload). */
export const COMPLETE_ALL: QmEngine = { execute: () => 0 };

/** One machine: kernel, memory, IOMMU and the QM functions probed so far. */
export class Platform {
  /** Scheduler, physical memory, quirks and event log. */
  readonly kernel: Kernel;
  /** The IOMMU subsystem. */
  readonly iommu: IommuCore;
  /** The iommu-sva layer, its PASIDs from the machine's one IOASID space. */
  readonly sva: IommuSva;
  /** QM functions by id, the latest probe of each. */
  readonly functions: Map<number, QmFunction> = new Map();

  /** Boots the machine with no QM function yet. */
  constructor(options: PlatformOptions = {}) {
    this.kernel = new Kernel(
      options.sched ?? new ImmediateSched(),
      new PhysMem(),
      options.quirks ?? {},
    );
    this.iommu = new IommuCore(this.kernel);
    this.sva = new IommuSva(this.kernel, new IoasidSpace(this.kernel.quirks));
  }

  /**
   * The PCI probe of QM function `id` (`hisi_zip_probe`: `hisi_qm_init` + `hisi_qm_start`,
   * then the crypto algorithms). Its group `id` is created on the first probe and kept
   * across removes; missing sizes take the spec's defaults, impossible ones throw a
   * RangeError. `engine` executes the device's requests; `sva`: the function supports PASIDs,
   * which its probe enables (its device gets a PASID table and tags its queues' reads).
   */
  probeQm(id: number, config: Partial<QmConfig>, engine: QmEngine, sva = false): QmFunction {
    const sizes = initialQmState(config).config;
    if (!this.iommu.groups.has(id)) this.iommu.addGroup(id, "pci", null);
    const group = this.iommu.groups.get(id)!;
    group.kernelDriver = "hisi_zip";
    if (sva) this.iommu.enablePasids(group);
    const device = new QmDevice(this.kernel, this.iommu, group, engine);
    const qm = new HisiQm(this.kernel, this.iommu, group, device, sizes);
    const fn = { id, group, device, qm, crypto: new HisiZipCrypto(this.kernel, qm, device) };
    this.functions.set(id, fn);
    return fn;
  }
}
