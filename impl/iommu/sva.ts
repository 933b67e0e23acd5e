/**
 * The iommu-sva layer (seed 002's thread: `iommu_sva_bind_device`, `iommu_sva_unbind_device`,
 * `iommu_sva_find`, the io_mm of Jean-Philippe Brucker's SVA series): one PASID per mm from the
 * IOASID space (set {@link SVA_SET}, the mm as private data, so that the fault path finds a
 * PASID's mm), bonds refcounted per (device, mm), the device's PASID table entry present while
 * it has a bond. A bond holds the mm structure, not its users: at exit the page table goes and
 * tagged DMA faults, while the PASID stays until the last bond is gone.
 *
 * Quirk `pasidFreedAtMmExitWhileBound`: the mm's exit frees its PASID while bonds still hold
 * it (the io_mm torn down by the mm's release notifier), so a queue that still runs carries an
 * id the allocator may hand to another address space.
 *
 * @module
 */
import { IOASID_MAX, IOASID_MIN } from "../../spec/ioasid.ts";
import { SVA_SET } from "../../spec/sva.ts";
import type { Errno } from "../../spec/types.ts";
import type { IoasidSpace } from "../ioasid/ioasid.ts";
import type { Kernel } from "../kernel.ts";
import type { AddressSpace } from "../mem/mm.ts";
import type { IommuGroup } from "./core.ts";

/** An mm bound to devices (`struct io_mm`). */
export interface SvaMm {
  /** Its PASID. */
  readonly pasid: number;
  /** The address space (held as a structure: `mmgrab`). */
  readonly mm: AddressSpace;
  /** Bonds per device group (no zero entries). */
  readonly bonds: Map<IommuGroup, number>;
  /** The PASID went back to the IOASID space at exit already (quirk only). */
  freedAtExit: boolean;
}

/** The SVA layer over one IOASID space. */
export class IommuSva {
  /** The PASID space. */
  readonly space: IoasidSpace;
  /** Bound mms by mm id. */
  readonly mms: Map<number, SvaMm> = new Map();
  readonly #k: Kernel;

  /** An SVA layer allocating PASIDs from `space`. */
  constructor(kernel: Kernel, space: IoasidSpace) {
    this.#k = kernel;
    this.space = space;
  }

  /**
   * `iommu_sva_bind_device(group's device, mm)`: one more bond; the mm's PASID (allocated at its
   * first bond). EINVAL for a device without PASIDs or an mm without users; ENOSPC when full.
   */
  bind(group: IommuGroup, mm: AddressSpace): number | Errno {
    const table = group.pasidTable;
    if (table === null || !mm.users) return "EINVAL";
    let io = this.mms.get(mm.id);
    if (!io) {
      const r = this.space.alloc(SVA_SET, IOASID_MIN, IOASID_MAX, mm.id);
      if ("err" in r) return r.err;
      io = { pasid: r.ok, mm, bonds: new Map(), freedAtExit: false };
      this.mms.set(mm.id, io);
    }
    const held = io.bonds.get(group) ?? 0;
    io.bonds.set(group, held + 1);
    table.set(io.pasid, mm);
    return io.pasid;
  }

  /**
   * `iommu_sva_unbind_device`: drops one bond; the device's last clears its PASID table entry,
   * the mm's last frees the PASID. EINVAL without a bond. The caller stopped the device's use
   * of the PASID and drained it first.
   */
  unbind(group: IommuGroup, mm: AddressSpace): Errno | undefined {
    const io = this.mms.get(mm.id);
    const held = io?.bonds.get(group) ?? 0;
    if (!io || held === 0) return "EINVAL";
    if (held > 1) {
      io.bonds.set(group, held - 1);
      return undefined;
    }
    io.bonds.delete(group);
    if (group.pasidTable?.get(io.pasid) === mm) group.pasidTable.delete(io.pasid);
    if (io.bonds.size > 0) return undefined;
    this.mms.delete(mm.id);
    if (!io.freedAtExit) this.space.free(io.pasid);
    return undefined;
  }

  /** `exit_mm` of `mm`: no users, so no page table for tagged DMA; bonds and PASID stay. */
  exitMm(mm: AddressSpace): void {
    mm.users = false;
    const io = this.mms.get(mm.id);
    if (!io || io.freedAtExit || !this.#k.quirks.pasidFreedAtMmExitWhileBound) return;
    io.freedAtExit = true;
    this.space.free(io.pasid);
  }

  /** `iommu_sva_find`: the mm id PASID `pasid` belongs to, if it is one of this layer's. */
  find(pasid: number): number | undefined {
    const r = this.space.find(SVA_SET, pasid);
    return "ok" in r && r.ok !== null ? r.ok : undefined;
  }
}
