/**
 * What sdmdev and a vendor driver share (RFCv2 3/7, `include/linux/vfio_sdmdev.h`): the queue
 * behind one sdmdev (`struct vfio_sdmdev_queue`), its mmaps, and the vendor callbacks
 * (`struct vfio_sdmdev_ops`).
 *
 * @module
 */
import type { QpOwner } from "../../spec/sdmdev.ts";
import type { Errno } from "../../spec/types.ts";
import { Mutex } from "../kernel.ts";
import type { MdevDevice } from "../vfio/mdev.ts";

/** One mmap of an sdmdev (a VMA whose `vm_ops` the vendor's mmap set up). */
export interface SdmdevVma {
  /** Mapping id within its queue, the lowest free from 1. */
  readonly id: number;
  /** 0: the MMIO page; 1: the SQ+CQ ring. */
  readonly region: 0 | 1;
  /** Length in bytes, whole pages. */
  readonly size: number;
  /** The ring buffer mapped by a region-1 mapping; null for the MMIO page. */
  readonly ring: number | null;
  /** What the process reaches through the mapping (the vendor's: pages or a register page). */
  readonly backing: unknown;
}

/** `struct vfio_sdmdev_queue` (RFCv2 3/7): one sdmdev's queue and the process using it. */
export class SdmdevQueue {
  /** The mdev it belongs to. */
  readonly mdev: MdevDevice;
  /** `q->priv`: the vendor's hardware queue, set by `get_queue`. */
  priv: unknown = undefined;
  /** `q->pasid`: the PASID the vendor starts the queue with. */
  pasid = 0;
  /** The process whose fd or mappings hold the device file, or null when it is released. */
  openedBy: number | null = null;
  /** That process still holds its fd (a VMA holds the file too, so this may be false). */
  fd = false;
  /** sdmdev started the queue (`start_queue` succeeded) and has not stopped it since. */
  started = false;
  /** The queue holds an SVA bond of its own (its parent, its process's mm) while it runs. */
  bound = false;
  /** The live mmaps of the device file, in creation order; each holds the file. */
  readonly vmas: SdmdevVma[] = [];
  /**
   * The copies of the opener's mmaps that fork gave its children, by child process: none on
   * the correct implementation (the mmaps are VM_DONTCOPY | VM_WIPEONFORK); quirk
   * `forkInheritsQueueMappings` makes them (see `dupMmap`).
   */
  readonly inherited: Map<number, readonly SdmdevVma[]> = new Map();
  /** `q->mutex`: serializes BIND_PASID. */
  readonly mutex: Mutex = new Mutex();

  /** The queue of a device being created. */
  constructor(mdev: MdevDevice) {
    this.mdev = mdev;
  }
}

/** The hardware side of a queue as the spec sees it (observation only). */
export interface QueueHwView {
  /** The qp number. */
  readonly qn: number;
  /** The ring buffer the hardware runs, or null when stopped. */
  readonly ring: number | null;
  /** The PASID it runs with, or null when stopped. */
  readonly pasid: number | null;
  /** An update was reported and not yet consumed. */
  readonly updated: boolean;
}

/** A vendor's qp pool as the spec sees it (observation only). */
export interface QpPoolView {
  /** Number of qps. */
  readonly qpNum: number;
  /** Taken qps and their owners. */
  readonly owners: ReadonlyMap<number, QpOwner>;
}

/**
 * What an mmap maps: the ring buffer id for region 1, null for the MMIO page, and what the
 * process then reaches through the mapping.
 */
export type MmapTarget = {
  readonly region: 0 | 1;
  readonly ring: number | null;
  readonly backing: unknown;
};

/** `VFIO_SDMDEV_EVENT_Q_UPDATE` (RFCv2 3/7 uapi): the event `mask_notify` masks. */
export const SDMDEV_EVENT_Q_UPDATE = 1;

/**
 * `struct vfio_sdmdev_ops` (RFCv2 3/7). The callbacks are optional as in the seed and sdmdev
 * checks each before use, except `is_q_updated`, which the seed calls unchecked. `hw` and
 * `pool` are observation-only.
 */
export interface SdmdevVendorOps {
  /** `get_queue`: take a hardware queue for `q` (sets `q.priv`). */
  getQueue?(q: SdmdevQueue): Errno | undefined;
  /** `put_queue`: give it back. */
  putQueue?(q: SdmdevQueue): Promise<void>;
  /** `start_queue`: allocate the ring and start the hardware with `q.pasid`. */
  startQueue?(q: SdmdevQueue): Promise<Errno | undefined>;
  /** `stop_queue`: quiesce the hardware, then free the ring. */
  stopQueue?(q: SdmdevQueue): Promise<void>;
  /** `is_q_updated`: an update was reported (consumed by the call); WAIT calls it unchecked. */
  isQUpdated(q: SdmdevQueue): boolean;
  /** `mask_notify`: mask (`SDMDEV_EVENT_Q_UPDATE`) or unmask (0) the queue's notification. */
  maskNotify?(q: SdmdevQueue, mask: number): void;
  /** `mmap`: check a mapping of `len` bytes at `pgoff` and say what it maps. */
  mmap?(q: SdmdevQueue, pgoff: number, len: number): MmapTarget | Errno;
  /** `get_available_instances`: free hardware queues. */
  getAvailableInstances?(): number;
  /** Ghost: the hardware state of `q`. */
  hw(q: SdmdevQueue): QueueHwView;
  /** Ghost: the qp pool. */
  pool(): QpPoolView;
}
