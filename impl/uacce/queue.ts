/**
 * What the uacce core and a parent driver share (upstream `include/linux/uacce.h`): the
 * driver's callbacks (`struct uacce_ops`), the device (`struct uacce_device`), the queue of one
 * open file (`struct uacce_queue`), and the file with its mappings.
 *
 * @module
 */
import type { Errno } from "../../spec/types.ts";
import type { QmMmio } from "../device/qm_device.ts";
import { Mutex } from "../kernel.ts";
import type { Frame } from "../mem/phys.ts";

/** `enum uacce_q_state`. */
export type UacceQState = "INIT" | "STARTED" | "ZOMBIE";

/**
 * What a mapping's page-table entries reach: the pages of the queue's DMA memory (DUS), or a
 * register page (MMIO: the queue's doorbell page, whose writes ring its doorbells).
 */
export type UacceBacking =
  | { readonly kind: "pages"; readonly frames: readonly Frame[] }
  | { readonly kind: "mmio"; readonly regs: QmMmio };

/** One VMA of a file (`vm_private_data` = the queue, `vm_pgoff` = the region). */
export interface UacceVma {
  /** Mapping id within the file, the lowest free from 1. */
  readonly id: number;
  /** 0 MMIO, 1 DUS. */
  readonly region: 0 | 1;
  /** Length in bytes. */
  readonly size: number;
  /** `unmap_mapping_range` removed its pages: an access faults (SIGBUS). */
  zapped: boolean;
  /** What its pages reach. */
  readonly backing: UacceBacking;
}

/**
 * `struct uacce_ops`, as the QM fills it. `hw` is observation only (the ghost view the
 * abstraction function reads).
 */
export interface UacceOps {
  /** `get_queue`: a hardware queue (and its DMA memory) for `q`, which sets `q.priv`. */
  getQueue(q: UacceQueue): Promise<Errno | undefined>;
  /** `put_queue`: the hardware queue and its DMA memory back to the driver. */
  putQueue(q: UacceQueue): Promise<void>;
  /** `start_queue`: the hardware runs the queue with `q.pasid`. */
  startQueue(q: UacceQueue): Promise<Errno | undefined>;
  /** `stop_queue`: the hardware stops the queue (what it executes completes first). */
  stopQueue(q: UacceQueue): Promise<void>;
  /** `is_q_updated`: an event arrived for `q` since it was last asked (and is consumed). */
  isQUpdated(q: UacceQueue): boolean;
  /**
   * The driver's own ioctl (`ops->ioctl`; the QM's UACCE_CMD_QM_SET_QP_CTX): sets the queue's
   * `qc_type` and returns its queue pair's number; EINVAL for a type the driver does not run.
   */
  setQpCtx(q: UacceQueue, qcType: number): number | Errno;
  /** `mmap` of region `region`, `size` bytes: what the mapping reaches, or EINVAL. */
  mmap(q: UacceQueue, region: 0 | 1, size: number): UacceBacking | Errno;
  /** `get_available_instances`: free hardware queues. */
  getAvailableInstances(): number;
  /** Ghost: the queue pair behind `q`, whether the hardware runs it and its DMA memory lives. */
  hw(q: UacceQueue): { readonly qn: number; readonly running: boolean; readonly dus: boolean };
}

/** What a parent driver registers (`struct uacce_interface` plus the attributes it sets). */
export interface UacceInterface {
  /** `name`: the char device is `/dev/<name>-<dev>`, the class device `<name>-<dev>`. */
  readonly name: string;
  /** `flags` asked for ({@link UacceDevice.flags} holds what was granted). */
  readonly flags: number;
  /** `api_ver`. */
  readonly api: string;
  /** `algs`. */
  readonly algorithms: string;
  /** `qf_pg_num[UACCE_QFRT_MMIO] << PAGE_SHIFT`. */
  readonly mmioSize: number;
  /** `qf_pg_num[UACCE_QFRT_DUS] << PAGE_SHIFT`. */
  readonly dusSize: number;
  /** The callbacks. */
  readonly ops: UacceOps;
}

/** `struct uacce_device`: one registered accelerator. */
export class UacceDevice {
  /** `dev_id`, the minor. */
  readonly dev: number;
  /** `parent`; null once removed (`uacce_remove` clears it). */
  parent: number | null;
  /** Negotiated flags. */
  readonly flags: number;
  /** `ops`; null once removed. */
  ops: UacceOps | null;
  /** What the driver registered. */
  readonly iface: UacceInterface;
  /** `uacce->mutex`: open, release, ioctl and remove. */
  readonly mutex: Mutex = new Mutex();
  /** `uacce->queues`: the queues of open files. */
  readonly queues: UacceQueue[] = [];

  /** A device registered for `parent` with the `flags` it was granted. */
  constructor(dev: number, parent: number, flags: number, iface: UacceInterface) {
    this.dev = dev;
    this.parent = parent;
    this.flags = flags;
    this.iface = iface;
    this.ops = iface.ops;
  }
}

/** `struct uacce_queue`: the queue of one open file. */
export class UacceQueue {
  /** `q->uacce`. */
  readonly uacce: UacceDevice;
  /** The parent it was opened on (the device forgets it at removal). */
  readonly parent: number;
  /** The opening process. */
  readonly by: number;
  /** `q->pasid`. */
  readonly pasid: number;
  /** `q->state`. */
  state: UacceQState = "INIT";
  /** `put_queue` has not run yet: the queue still holds its hardware queue and DMA memory. */
  held = true;
  /** `q->priv`: the driver's hardware queue. */
  priv: unknown = undefined;
  /** `q->mutex`: mmap and the removal's put of this queue. */
  readonly mutex: Mutex = new Mutex();

  /** The queue of a file `by` is opening on `uacce`. */
  constructor(uacce: UacceDevice, parent: number, by: number, pasid: number) {
    this.uacce = uacce;
    this.parent = parent;
    this.by = by;
    this.pasid = pasid;
  }
}

/** An open file: its queue, its fd and its VMAs (each holds the file). */
export class UacceFile {
  /** File id. */
  readonly id: number;
  /** `filep->private_data`. */
  readonly q: UacceQueue;
  /** The fd is open. */
  fd = true;
  /** Its VMAs in id order; `q->qfrs[region]` is the one of that region. */
  readonly vmas: UacceVma[] = [];

  /** A file just opened. */
  constructor(id: number, q: UacceQueue) {
    this.id = id;
    this.q = q;
  }

  /** Nothing holds the file any more: it is released. */
  get unheld(): boolean {
    return !this.fd && this.vmas.length === 0;
  }
}
