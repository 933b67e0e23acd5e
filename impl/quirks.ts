/**
 * The catalogue of reproducible seed defects. The implementation is correct by default; each
 * quirk switches one historical defect back on, e.g.
 * `new Platform({ quirks: { skipUndoOnDetach: true } })`. Every quirk has a saved
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
  replayPartialFailureLeaks: {
    seed: "RFCv2 3/7 vfio_iommu_type1_attach_group: `replay_check:` runs vfio_iommu_replay " +
      "(L1846), which returns at the first failing iommu_map without unmapping what it mapped; " +
      "`out_domain:` then only unshares the parent's domain",
    summary: "an sdmdev attach whose replay fails part-way (an IOVA the kernel's DMA allocator " +
      "holds in the shared domain) leaves the mappings replayed before it in the parent's " +
      "default domain: user memory the device reaches through the kernel driver's domain",
    suite: "sequential",
  },
  pinFindDmaSizeZero: {
    seed: "mdev v7 3/4 vfio_iommu_type1_pin_pages: vfio_find_dma(iommu, iova, 0) (seed 004 L4522)",
    summary: "a vendor's pin of the first page of any mapping is EINVAL: the size-0 lookup " +
      "takes `iova + 0 <= dma->iova` as left of the mapping",
    suite: "sequential",
  },
  pinAccountingAsymmetric: {
    seed: "mdev v7 3/4: do_accounting = !IS_IOMMU_CAPABLE_DOMAIN_IN_CONTAINER at pin (L4514), " +
      "vfio_unpin_pfn(domain, p, true) at unpin (L4602)",
    summary: "with an IOMMU-backed domain a vendor's pin is not accounted but its unpin is: " +
      "locked_vm drops below the pages pinned (and without one every pin call counts)",
    suite: "sequential",
  },
  unpinAllSkipsAccounting: {
    seed: "mdev v7 3/4 vfio_local_unpin_all: vfio_unpin_pfn(domain, ..., false) (L4764)",
    summary: "the last detach of a vendor mdev unpins its pages without unaccounting them: " +
      "locked_vm keeps pages nothing pins",
    suite: "sequential",
  },
  replayEmptyDomainList: {
    seed: "vfio_iommu_replay: list_first_entry(&iommu->domain_list) of an empty list, which " +
      "mdev v7 makes possible (MAP_DMA only records with no IOMMU-backed domain, L4643)",
    summary: "the first IOMMU-backed domain joining a container whose mappings were only " +
      "recorded looks their pages up through a bogus domain: mapped unpinned, unaccounted",
    suite: "sequential",
  },
  unmapLeavesStalePins: {
    seed: "mdev v7 3/4 vfio_dma_do_unmap: no notification of the vendor driver (upstream " +
      "added VFIO_IOMMU_NOTIFY_DMA_UNMAP later)",
    summary: "unmapping a range a vendor pinned leaves its pins: pages stay pinned and " +
      "accounted for an IOVA no mapping covers, and the device can still DMA to them",
    suite: "sequential",
  },
  unpinWithoutLock: {
    seed: "mdev v7 3/4 vfio_iommu_type1_unpin_pages: no iommu->lock, `domain = " +
      "iommu->local_domain` used unchecked (L4592)",
    summary: "an unpin racing the last detach of the vendor mdev uses the local domain the " +
      "detach freed",
    suite: "race",
  },
  shareWithoutGroupLock: {
    seed: "RFCv2 2/7 iommu_group_share_domain: checks then increments without group->mutex",
    summary: "share races __iommu_attach_group: both succeed and a shared group ends up " +
      "attached to a non-default domain",
    suite: "race",
  },
  kernelSqFullNeverCleared: {
    seed:
      "RFCv2 4/7 hisi_qp_send: is_sq_full set when the tail meets the head (L2778), never cleared",
    summary: "the kernel send path fills all `depth` slots, then one full ring wedges the queue " +
      "with ENOSPC forever",
    suite: "sequential",
  },
  userSqHeadFromCqHead: {
    seed: "RFCv2 7/7 hisi_qm_get_from_dio_q: sq_head_index = cq_head index (L4543), " +
      "req_cache indexed by the CQ head",
    summary: "the user driver retires SQ slots and looks up requests by CQ position: wrong " +
      "request returned and a wrong full check when SQ and CQ positions differ",
    suite: "sequential",
  },
  userBadStatusNotConsumed: {
    seed: "RFCv2 7/7 hisi_qm_get_from_dio_q: hisi_qm_recv_sqe returns -EIO before the head moves",
    summary: "a CQE whose SQE has a bad status returns EIO without advancing: the queue is " +
      "stuck on it forever",
    suite: "sequential",
  },
  userSqnNeverSet: {
    seed: "RFCv2 7/7 hisi_qm_set_queue_dio: info->sqn never assigned, hacc_db uses it (L4378)",
    summary: "every user doorbell names queue 0, so a user queue other than 0 is never rung",
    suite: "sequential",
  },
  sharedDoorbellPage: {
    seed: "RFCv2 6/7 hisi_qm_mmap region 0: the whole register page for every queue (L3944)",
    summary: "v1 hardware: any queue owner can ring any queue's doorbell and the device " +
      "accepts it",
    suite: "sequential",
  },
  kernelConsumesUserCq: {
    seed: "RFCv2 4/7 qm_poll_qp: the event_cb branch advances cq_head and rings the CQ doorbell",
    summary: "the IRQ thread releases a user queue's CQEs the user driver has not read",
    suite: "sequential",
  },
  sendIgnoresCompletionTimeout: {
    seed: "RFCv2 4/7 hisi_qp_send: wait_for_completion_timeout result ignored, the completion " +
      "never reinitialised (L2781)",
    summary: "completions go to whichever send waits next; one arriving after its sender timed " +
      "out satisfies the next request and is never reported for its own",
    suite: "sequential",
  },
  eqeCqnUnchecked: {
    seed: "RFCv2 4/7 to_hisi_qp: qp_array[eqe cqn] without a bound check against qp_num",
    summary: "an EQE naming a CQ at or above qp_num (a faulty device, `qm.deviceBadEqe`) " +
      "reads past qp_array: an oops instead of a logged, skipped entry",
    suite: "sequential",
  },
  putQueueStraySemicolon: {
    seed: "RFCv2 3/7 vfio_sdmdev_mdev_remove: `if (sdmdev->ops->put_queue);` (L1497)",
    summary: "put_queue is called unconditionally: removing an sdmdev of a vendor without " +
      "put_queue calls a NULL pointer (an oops)",
    suite: "sequential",
  },
  errPtrTreatedAsNull: {
    seed: "RFCv2 3/7 iommu_type_show and the other show functions test !sdmdev, " +
      "vfio_sdmdev_pdev_sdmdev returns ERR_PTR (smatch, L6500)",
    summary: "reading the sdmdev attributes of a device that is not a live sdmdev " +
      "dereferences ERR_PTR(-ENODEV) (an oops) instead of failing ENODEV",
    suite: "sequential",
  },
  availableInstancesAlwaysZero: {
    seed: "RFCv2 6/7 qm_ops: no get_available_instances; 3/7 available_instances_show " +
      "falls back to 0",
    summary: "available_instances reads 0 however many qps are free",
    suite: "sequential",
  },
  waitWithoutMaskNotify: {
    seed: "RFCv2 6/7 qm_ops: no mask_notify; 3/7 vfio_sdmdev_wait returns -ENODEV without it",
    summary: "the WAIT ioctl always fails ENODEV on a QM queue",
    suite: "sequential",
  },
  bindPasidUninitialisedRet: {
    seed: "RFCv2 3/7 vfio_sdmdev_mdev_ioctl BIND_PASID: ret set only by start_queue (L1558)",
    summary: "with a vendor lacking start_queue, BIND_PASID returns an uninitialised value " +
      "and the queue never starts",
    suite: "sequential",
  },
  openIgnoresStartFailure: {
    seed: "RFCv2 3/7 vfio_sdmdev_mdev_open: `sdmdev->ops->start_queue(q);` with its return " +
      "value dropped, then `return 0` (L1602)",
    summary: "an open whose start_queue fails (its ring allocation collides with a user " +
      "mapping) succeeds: the process holds a device fd whose queue never started",
    suite: "sequential",
  },
  stopQueueNoop: {
    seed: 'RFCv2 6/7 hisi_qm_stop_queue: empty, "can not support in v1" (L3976)',
    summary: "release does not stop the hardware: the queue keeps running on its ring with " +
      "nobody holding the device, and still reports updates",
    suite: "sequential",
  },
  reopenRestartsQueue: {
    seed: "RFCv2 3/7 vfio_sdmdev_mdev_ioctl BIND_PASID: start_queue without checking the " +
      "queue runs; 6/7 hisi_qm_start_qp allocates a new scqe",
    summary: "a second BIND_PASID starts the running queue again on a new ring, leaking the " +
      "old one under the process's mappings",
    suite: "sequential",
  },
  removeWhileOpenFreesRing: {
    seed: "RFCv2 3/7 vfio_sdmdev_mdev_remove: put_queue with no in-use check, reached before " +
      "the mdev core notices the open fd",
    summary: "removing an open sdmdev refuses EBUSY only after put_queue freed its qp and the " +
      "ring the process still maps",
    suite: "sequential",
  },
  unregisterLoopDoubleDestroy: {
    seed: "mdev v7 mdev_unregister_device: destroy the first mdev and put it until the list " +
      "is empty (seed 004)",
    summary: "an open mdev survives the first put, so the vendor destroys it again and the " +
      "loop puts it off the list under its user; unregister does not wait",
    suite: "sequential",
  },
  removeWhileOpenDestroys: {
    seed: "mdev v7 mdev_device_destroy: vendor destroy with no check of an open fd (seed 004)",
    summary: "remove of an open mdev succeeds: the vendor destroys it under its user",
    suite: "sequential",
  },
  positiveStatusAsError: {
    seed: "RFCv2 5/7 hisi_zip_copy_data_from_buffer: `if (status != 0) return status;` (L3464)",
    summary: "a nonzero hardware status, including a successful decompression's 0x13, is " +
      "returned as a positive value instead of data or an errno",
    suite: "sequential",
  },
  producedNotCheckedAgainstDlen: {
    seed: "RFCv2 5/7 hisi_zip_copy_data_from_buffer: memcpy(dst, ..., produced) (L3470)",
    summary: "the output is copied into the caller's buffer without checking it against dlen",
    suite: "sequential",
  },
  releaseQpBeforeBuffers: {
    seed: "RFCv2 5/7 hisi_zip_release_qp: hisi_qm_release_qp, then the buffers freed " +
      "through qp->qm (L3382)",
    summary: "freeing a transform's buffers reads the queue pair it has just released",
    suite: "sequential",
  },
  sampleZlibHeaderOnly: {
    seed: "RFCv2 7/7 test_hisi_zip.c hizip_deflate: writes zip_head {0x78, 0x9c} and the " +
      "output, no Adler-32 (L4801)",
    summary: "the sample's zlib file has a header but no trailer: no zlib reader accepts it",
    suite: "sequential",
  },
  findIgnoresSet: {
    seed: "seed 002 (ioasid review, J. Pan, 2019-02-19), point 3, a NULL ioasid_set allowed: " +
      "ioasid_find looks the id up without comparing its set",
    summary: "ioasid_find answers for an id of another set: the I/O page-fault path gets " +
      "another module's private data instead of an mm",
    suite: "sequential",
  },
  rangeMaxOffByOne: {
    seed: "seed 002 ioasid_alloc sketch: the inclusive max passed as `idr_alloc`'s exclusive " +
      "end (its PV path passes the custom id plus one as that end)",
    summary: "the default allocator never hands out `max`: an alloc whose only free id is " +
      "`max` (min == max, or the last PASID 2^20-1) fails ENOSPC",
    suite: "sequential",
  },
  allocatorSwitchOrphans: {
    seed: "seed 002 ioasid_alloc sketch: one global allocator function pointer, set by " +
      "ioasid_set_allocator; a single allocator supported",
    summary: "registering or unregistering a custom allocator with ids outstanding succeeds: " +
      "the ids stay owned by an allocator that is gone",
    suite: "sequential",
  },
  dwqOpenOffByOne: {
    seed: 'upstream idxd_cdev_open as merged in 42d279f9137a ("dmaengine: idxd: add char ' +
      'driver to expose submission portal to userland"): `idxd_wq_refcount(wq) > 1 && ' +
      'wq_dedicated(wq)`; fixed by "dmaengine: idxd: fix off by one on cdev dwq refcount" ' +
      "(D. Jiang, dmaengine list, 2020-03-12)",
    summary: "a dedicated WQ's char device opens twice: two processes submit to a WQ that " +
      "serves one, whose PASID the second open overwrote",
    suite: "sequential",
  },
  cdevOpenWithoutWqLock: {
    seed: 'upstream idxd_cdev_open / idxd_cdev_release before "dmaengine: idxd: fix cdev ' +
      'locking for open and release" (N. Rao, dmaengine list, 2020-06-22; Fixes 42d279f9137a): ' +
      "the dedicated check, the kzalloc that may sleep, and idxd_wq_get run without wq_lock",
    summary: "two opens of a dedicated WQ both pass the check before either counts its " +
      "client, and an open that slept past a disable counts a client on the disabled WQ",
    suite: "race",
  },
  removeVsOpenNoLock: {
    seed: "uacce (drivers/misc/uacce/uacce.c) before its remove-vs-open fix: uacce_fops_open " +
      "checks the device and calls get_queue without uacce->mutex, which uacce_remove holds",
    summary: "an open racing the parent's removal passes the check, then calls the ops remove " +
      "has cleared (a NULL dereference) or adds a live queue to a removed device",
    suite: "race",
  },
  releaseVsRemoveRace: {
    seed: "uacce before release took uacce->mutex: uacce_fops_release decides under q->mutex " +
      "alone, uacce_remove puts the queue and clears uacce->ops under uacce->mutex (a forced " +
      "power-off runs both at once)",
    summary: "release puts a queue remove has already put: a second put_queue of a freed " +
      "queue pair, or a call through the NULL ops",
    suite: "race",
  },
  putQueueFreesMapped: {
    seed: "uacce uacce_put_queue (UACCE_CMD_PUT_Q): put_queue right after stop_queue, with " +
      "no look at the queue's mappings",
    summary: "PUT_Q gives the queue pair and its DMA memory back while the DUS region still " +
      "maps them: the process reaches freed pages",
    suite: "sequential",
  },
  checkExtensionFailureReturnsZero: {
    seed: "RFCv2 7/7 wd_request_queue: `ret = ioctl(VFIO_CHECK_EXTENSION); if (!ret) goto " +
      "err_with_container;` returns that 0 (L4984)",
    summary: "with no IOMMU backend for the type (vfio_iommu_type1 unloaded) the request " +
      "closes its fds and reports success: the caller holds a queue with nothing behind it",
    suite: "sequential",
  },
  groupNotViableReturnsZero: {
    seed: "RFCv2 7/7 wd_request_queue: `if (!(group_status.flags & VFIO_GROUP_FLAGS_VIABLE)) " +
      "goto err_with_container;` with `ret` still GET_STATUS's 0 (L4995)",
    summary: "a group that is not viable (a device of it bound to a host driver) makes the " +
      "request close its fds and report success",
    suite: "sequential",
  },
  recvSyncNeverWaits: {
    seed: "RFCv2 7/7 wd_recv_sync: waits only `if (ret == -EBUSY)`, hisi_qm_get_from_dio_q " +
      "returns -EAGAIN (L5096)",
    summary: "wd_recv_sync returns EAGAIN at once instead of waiting for the completion or " +
      "the timeout",
    suite: "sequential",
  },
  unshareIsNoop: {
    seed: "RFCv2 7/7 _wd_mem_unshare_type1: the UNMAP_DMA is inside `#if HAVE_SVA` (L5153)",
    summary: "without SVA wd_mem_unshare does nothing: the buffer stays mapped at its IOVA and " +
      "pinned until the queue goes",
    suite: "sequential",
  },
  mmapFailureUnchecked: {
    seed: "RFCv2 7/7 hisi_qm_set_queue_dio: `if (vaddr <= 0)` on mmap's pointer, which " +
      "MAP_FAILED ((void *)-1) never satisfies",
    summary: "a failed mmap of the ring or the doorbell page (ENOMEM past vm.max_map_count) is " +
      "taken for a mapping: the request succeeds with a ring at address -1",
    suite: "sequential",
  },
  // SVA per PASID (issue 10).
  freeBeforeUnbind: {
    seed: "RFCv2 3/7 VFIO_SDMDEV_CMD_BIND_PASID checks the PASID with iommu_sva_find (L1336) " +
      "and stores it (L1564), taking no bond; RFCv2 7/7 wd_release_queue unbinds the process " +
      "(_wd_unbind_process, L5062) before it closes the mdev (L5069)",
    summary: "the container's unbind frees the PASID while the queue still runs with it: the " +
      "id is free (and can be handed out again) while a queue context carries it",
    suite: "sequential",
  },
  pasidFreedAtMmExitWhileBound: {
    seed: "the iommu-sva series seed 000's cover letter builds on ([1]) and seed 002's thread: " +
      "the mm release notifier (iommu_notifier_release) tears the io_mm down at exit_mm, " +
      "its PASID with it, while devices are still bound",
    summary: "a process's exit frees its PASID before its queue stops and its bonds go: the " +
      "id is free while the device's PASID table and a queue context still carry it",
    suite: "sequential",
  },
  // fork (issue 11).
  forkCowMovesPinnedPage: {
    seed: "DOMAIN.md §10, the fork race: the 2018 kernel's copy_one_pte write-protects every " +
      "private page for copy-on-write at fork, pinned or not, and do_wp_page copies for the " +
      "first writer; vfio's get_user_pages pin holds the old page, not the mapping (fixed by " +
      "Linux 5.12's early copy for DMA-pinned pages, page_needs_cow_for_dma)",
    summary: "after a fork, the parent's first store to a page it mapped for DMA moves it to a " +
      "new page: the IOMMU keeps the old one, now the child's alone, so the device reads and " +
      "writes the child's memory and the parent's buffer stops receiving device output",
    suite: "sequential",
  },
  forkInheritsQueueMappings: {
    seed: "RFCv2 3/7 vfio_sdmdev_mdev_mmap hands the VMA to the vendor without VM_DONTCOPY " +
      "(or VM_WIPEONFORK), and RFCv2 6/7 hisi_qm_mmap maps the doorbell page and the ring " +
      "(remap_pfn_range, dma_mmap_coherent) setting neither, so dup_mmap copies both VMAs " +
      "into a forked child (the later uacce mmap sets VM_DONTCOPY | VM_WIPEONFORK)",
    summary: "a forked child inherits its parent's mappings of the queue's doorbell page and " +
      "ring and can submit SQEs into the parent's queue: the device runs the child's requests " +
      "with the parent's IOVAs, in the parent's container",
    suite: "sequential",
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
