/**
 * A vendor driver of mediated devices with no IOMMU of their own (mdev v7's case, a
 * vGPU-like ring device): it pins the pages its user hands it through `vfio_pin_pages`,
 * remembers them per container, and registers an invalidation handler with each container
 * that unpins them when UNMAP_DMA takes their mapping away.
 *
 * @module
 */
import { type Errno, PAGE_SIZE } from "../../spec/types.ts";
import type { IommuGroup } from "../iommu/core.ts";
import type { VfioContainer } from "./container.ts";

/** What the driver pinned in one container: IOVA to pin count, and the device pinning it. */
type Pinned = Map<number, { count: number; group: IommuGroup }>;

/** The vendor driver serving every vendor mdev of the machine. */
export class VendorDriver {
  readonly #pinned = new Map<VfioContainer, Pinned>();

  /** Whether `group` is one of this driver's devices: an mdev with no parent to share. */
  static ours(group: IommuGroup): boolean {
    return group.kind === "mdev" && group.parent === null;
  }

  /**
   * The device of `group` pins `pages` pages from `iova` of `container`'s IOVA space; EINVAL
   * for a group that is not one of this driver's devices.
   */
  async pin(
    container: VfioContainer,
    group: IommuGroup,
    iova: number,
    pages: number,
  ): Promise<number | Errno> {
    if (!VendorDriver.ours(group)) return "EINVAL";
    const r = await container.pinPages(group, iova, pages);
    if (typeof r === "string") return r;
    const pinned = this.#record(container);
    for (let i = 0; i < pages; i++) {
      const x = iova + i * PAGE_SIZE;
      const p = pinned.get(x);
      if (p) p.count++;
      else pinned.set(x, { count: 1, group });
    }
    return r;
  }

  /** The device of `group` unpins `pages` pages from `iova`; EINVAL as for {@link pin}. */
  async unpin(
    container: VfioContainer,
    group: IommuGroup,
    iova: number,
    pages: number,
  ): Promise<number | Errno> {
    if (!VendorDriver.ours(group)) return "EINVAL";
    const r = await container.unpinPages(group, iova, pages);
    if (typeof r === "string") return r;
    const pinned = this.#record(container);
    for (let i = 0; i < pages; i++) {
      const x = iova + i * PAGE_SIZE;
      const p = pinned.get(x);
      if (p && --p.count === 0) pinned.delete(x);
    }
    return r;
  }

  /** This driver's record for `container`, its invalidation handler registered with it. */
  #record(container: VfioContainer): Pinned {
    let pinned = this.#pinned.get(container);
    if (!pinned) {
      const record: Pinned = new Map();
      pinned = record;
      this.#pinned.set(container, record);
      container.notifiers.add(async (iova, size) => {
        for (const [x, p] of [...record]) {
          if (x < iova || x >= iova + size) continue;
          const r = await container.unpinPages(p.group, x, 1);
          // Unpinned, or gone already (the device's group left and took its pins).
          if (typeof r !== "string" && --p.count > 0) continue;
          record.delete(x);
        }
      });
    }
    return pinned;
  }
}
