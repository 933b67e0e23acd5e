/**
 * A stand-in for the IOMMU SVA layer sdmdev's BIND_PASID relies on (`iommu_sva_bind_device`,
 * `iommu_sva_find`, not in the 2018 kernel): a process gets one PASID, the lowest free from
 * 1, the same on every bind; PASIDs are never freed in this model.
 *
 * @module
 */
import { lowestFreeId } from "../../spec/iommu.ts";
import type { Errno } from "../../spec/types.ts";

/** PASIDs and the processes (mm ids) they belong to. */
export class SvaPasids {
  /** PASID to process. */
  readonly mms: Map<number, number> = new Map();

  /** `iommu_sva_bind_device` for process `mm`: its PASID; EINVAL for a malformed process id. */
  bind(mm: number): number | Errno {
    if (!Number.isSafeInteger(mm) || mm < 1) return "EINVAL";
    for (const [pasid, owner] of this.mms) if (owner === mm) return pasid;
    const pasid = lowestFreeId(this.mms, 1);
    this.mms.set(pasid, mm);
    return pasid;
  }

  /** `iommu_sva_find`: the process `pasid` belongs to, if any. */
  find(pasid: number): number | undefined {
    return this.mms.get(pasid);
  }
}
