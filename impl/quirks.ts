/**
 * The catalogue of reproducible seed defects. The implementation is correct by default; each
 * quirk switches one historical defect back on, e.g.
 * `new System({ quirks: { skipUndoOnDetach: true } })`. Every quirk has a saved
 * counterexample in `fixtures/counterexamples/<name>.itf.json` and a test that the checker
 * finds it from scratch (properties/quirks_test.ts).
 *
 * @module
 */

/** What the catalogue says about one quirk. */
export interface QuirkInfo {
  /** Where the defect is in the seed: patch, function, line of seeds/000 (or another seed). */
  readonly seed: string;
  /** What the defect does. */
  readonly summary: string;
  /** The checking suite that finds it: sequential conformance or the race suite. */
  readonly suite: "sequential" | "race";
}

/** Every quirk, by name. */
export const QUIRKS = {
  skipUndoOnDetach: {
    seed: "RFCv1 vfio_iommu_type1_detach_group (fixed in v2, change log L66)",
    summary: "detaching an sdmdev group leaves the container's IOVAs mapped in the parent's " +
      "default domain when the container keeps another domain",
    suite: "sequential",
  },
  unshareBeforeUndo: {
    seed: "RFCv2 3/7 vfio_iommu_type1_detach_group: unshare (L1899) before vfio_iommu_undo (L1915)",
    summary: "the share count reaches 0 while user IOVAs are still mapped in the shared domain",
    suite: "race",
  },
  attachSdgroupReturnsOneOnShareFailure: {
    seed: "RFCv2 3/7 vfio_iommu_type1_attach_sdgroup: `goto out` with ret == 1 (L1786)",
    summary: "a failed iommu_group_share_domain is reported as success; the caller keeps an " +
      "ERR_PTR as the vfio_domain's iommu_domain",
    suite: "sequential",
  },
  unshareUnderflow: {
    seed: "RFCv2 2/7 iommu_group_unshare_domain: decrement, then WARN (L1153)",
    summary: "unshare without a matching share decrements the count below zero and only warns",
    suite: "sequential",
  },
  doubleSdmdevSameParent: {
    seed: "RFCv2 3/7 vfio_iommu_type1_attach_group: no check for a second sharer of the parent",
    summary: "a second sdmdev of the same parent gets its own vfio_domain on the same " +
      "iommu_domain: double maps fail and one detach's undo removes the other's mappings",
    suite: "sequential",
  },
  shareWithoutGroupLock: {
    seed: "RFCv2 2/7 iommu_group_share_domain: checks then increments without group->mutex",
    summary: "share races __iommu_attach_group: both succeed and a shared group ends up " +
      "attached to a non-default domain",
    suite: "race",
  },
} as const satisfies Record<string, QuirkInfo>;

/** The name of a quirk. */
export type QuirkName = keyof typeof QUIRKS;

/** Every quirk name, in catalogue order. */
export const QUIRK_NAMES: readonly QuirkName[] = Object.keys(QUIRKS) as QuirkName[];

/** Which quirks are switched on (absent = off). */
export type Quirks = Readonly<Partial<Record<QuirkName, boolean>>>;

/** Whether `name` is a known quirk. */
export function isQuirkName(name: string): name is QuirkName {
  return Object.hasOwn(QUIRKS, name);
}
