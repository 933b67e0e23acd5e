/**
 * A vendor driver of mediated devices with no IOMMU of their own (mdev v7's case, a
 * vGPU-like ring device): it pins the pages its user hands it through `vfio_pin_pages`,
 * remembers them per container, and registers an invalidation handler with each container
 * that unpins them when UNMAP_DMA takes their mapping away.
 *
 * @module
 */
import type { Errno } from "../../spec/types.ts";
import type { IommuGroup } from "../iommu/core.ts";
import { PageCounts } from "../mem/page_counts.ts";
import type { VfioContainer } from "./container.ts";

/** What the driver pinned in one container, and through which of its devices. */
interface Pinned {
  /** Pin counts by IOVA. */
  readonly counts: PageCounts;
  /** The devices that pinned there (an unpin may go through any that is still attached). */
  readonly groups: Set<IommuGroup>;
}

/** The vendor driver serving every vendor mdev of the machine. */
export class VendorDriver {
  readonly #pinned = new Map<VfioContainer, Pinned>();

  /** Whether `group` is one of this driver's devices: an mdev with no parent to share. */
  static ours(group: IommuGroup): boolean {
    return group.kind === "mdev" && group.parent === null;
  }

  /**
   * The device of `group` pins (`delta` 1: vfio_pin_pages) or unpins (-1: vfio_unpin_pages)
   * `pages` pages from `iova` of `container`'s IOVA space; EINVAL for a group that is not one of
   * this driver's devices.
   */
  async adjust(
    container: VfioContainer,
    group: IommuGroup,
    iova: number,
    pages: number,
    delta: 1 | -1,
  ): Promise<number | Errno> {
    if (!VendorDriver.ours(group)) return "EINVAL";
    const r = delta === 1
      ? await container.pinPages(group, iova, pages)
      : await container.unpinPages(group, iova, pages);
    if (typeof r === "string") return r;
    const { counts, groups } = this.#record(container);
    if (delta === 1) groups.add(group);
    // An unpin type1 took is in the record: a record only loses pins that type1 dropped.
    counts.addRun(iova, pages, delta);
    return r;
  }

  /** This driver's record for `container`, its invalidation handler registered with it. */
  #record(container: VfioContainer): Pinned {
    let pinned = this.#pinned.get(container);
    if (!pinned) {
      const record: Pinned = { counts: new PageCounts(), groups: new Set() };
      pinned = record;
      this.#pinned.set(container, record);
      container.notifiers.add(async (iova, size) => {
        for (const [x] of [...record.counts.entries()]) {
          if (x < iova || x >= iova + size) continue;
          let unpinned = false;
          for (const g of record.groups) {
            if (typeof await container.unpinPages(g, x, 1) !== "string") {
              unpinned = true;
              break;
            }
          }
          // Unpinned once, or gone already (its device's group left and took the pins).
          if (unpinned) record.counts.addRun(x, 1, -1);
          else record.counts.reset(x);
        }
      });
    }
    return pinned;
  }
}
