/**
 * What sdmdev's BIND_PASID asks of the SVA layer ({@link PasidLayer}), and two providers: the
 * system's iommu-sva layer ({@link sdmdevSvaLayer}, `impl/iommu/sva.ts`; the stack) and, for
 * the sdmdev and uacce views, which have no devices bound to address spaces, that layer
 * reduced to its binds ({@link SvaPasids}).
 *
 * @module
 */
import { IOASID_MAX, IOASID_MIN } from "../../spec/ioasid.ts";
import { SVA_SET } from "../../spec/sva.ts";
import type { Errno } from "../../spec/types.ts";
import { IoasidSpace } from "../ioasid/ioasid.ts";
import type { IommuCore } from "../iommu/core.ts";
import type { IommuSva } from "../iommu/sva.ts";
import type { AddressSpace } from "../mem/mm.ts";

/** The SVA layer as sdmdev sees it. */
export interface PasidLayer {
  /** `iommu_sva_find`: the process (mm id) `pasid` belongs to, if any. */
  find(pasid: number): number | undefined;
  /**
   * `iommu_sva_bind_device(parent, mm of by)` for a queue about to run with a PASID: the
   * queue's own bond; absent where the layer has no devices to bind.
   */
  bindQueue?(parent: number, by: number): Errno | undefined;
  /** `iommu_sva_unbind_device` of that bond, once the queue stopped. */
  unbindQueue?(parent: number, by: number): void;
}

/** The iommu-sva layer `sva` for sdmdev: parents are IOMMU groups, processes are `mms`. */
export function sdmdevSvaLayer(
  sva: IommuSva,
  iommu: IommuCore,
  mms: (by: number) => AddressSpace | undefined,
): PasidLayer {
  return {
    find: (pasid) => sva.find(pasid),
    bindQueue: (parent, by) => {
      const group = iommu.groups.get(parent);
      const mm = mms(by);
      if (!group || !mm) return "EINVAL";
      const r = sva.bind(group, mm);
      return typeof r === "string" ? r : undefined;
    },
    unbindQueue: (parent, by) => {
      const group = iommu.groups.get(parent);
      const mm = mms(by);
      if (group && mm) sva.unbind(group, mm);
    },
  };
}

/**
 * The SVA layer reduced to its binds, for views without devices bound to address spaces: a
 * process gets one PASID from the IOASID allocator (set {@link SVA_SET}, the process as its
 * data), the same on every bind; nothing is ever unbound, so the allocator's rule (the lowest
 * unused id from 1) gives the lowest id not yet handed out.
 */
export class SvaPasids implements PasidLayer {
  /** PASID to process. */
  readonly mms: Map<number, number> = new Map();
  readonly #space: IoasidSpace;

  /** Binds allocating from `space` (default: a space of this layer's own). */
  constructor(space: IoasidSpace = new IoasidSpace()) {
    this.#space = space;
  }

  /**
   * `iommu_sva_bind_device` for process `mm`: its PASID; EINVAL for a malformed process id,
   * ENOSPC when the PASID space is full.
   */
  bind(mm: number): number | Errno {
    if (!Number.isSafeInteger(mm) || mm < 1) return "EINVAL";
    for (const [pasid, owner] of this.mms) if (owner === mm) return pasid;
    const r = this.#space.alloc(SVA_SET, IOASID_MIN, IOASID_MAX, mm);
    if ("err" in r) return r.err;
    this.mms.set(r.ok, mm);
    return r.ok;
  }

  /** `iommu_sva_find`: the process `pasid` belongs to, if any. */
  find(pasid: number): number | undefined {
    return this.mms.get(pasid);
  }
}
