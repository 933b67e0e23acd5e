/**
 * The driver's view of one WQ (`struct idxd_wq`): its configured type and mode, its state, the
 * client count, which interface it has while enabled (the dmaengine channel, the char device,
 * the mdev type: one, by its type) and `wq_lock`, the mutex every change of these takes.
 *
 * @module
 */
import type { HandleKind, WqMode, WqUse } from "../../spec/idxd.ts";
import { Mutex } from "../kernel.ts";

/**
 * The interface each WQ driver registers: dmaengine a channel (kernel claims), user the char
 * device (files), mdev the mdev type (a guest's mdev).
 */
export const WQ_DRIVERS: Readonly<Record<Exclude<WqUse, "none">, HandleKind>> = {
  kernel: "kernel",
  user: "file",
  guest: "mdev",
};

/** One WQ's driver state. */
export class IdxdWqDev {
  /** Its id on the device. */
  readonly id: number;
  /** `wq->type`: what it is configured for. */
  use: WqUse = "none";
  /** Dedicated or shared (the sysfs `mode`). */
  mode: WqMode = "dedicated";
  /** `wq->state`. */
  state: "disabled" | "enabled" = "disabled";
  /** `wq->client_count`. */
  clients = 0;
  /** The contexts counted in it: what `disable` cuts off. */
  readonly attached: Set<ClientCtx> = new Set();
  /**
   * The interface its driver registered when it was enabled, removed first when it is disabled:
   * what `open` (the char device), `claim` (the channel) and `mdevCreate` (the mdev type) find.
   */
  serves: HandleKind | null = null;
  /** `wq->wq_lock`. */
  readonly lock: Mutex = new Mutex();

  /** WQ `id`, unconfigured and disabled. */
  constructor(id: number) {
    this.id = id;
  }
}

/** One client's context: an open file's `idxd_user_context`, a channel user, a guest's mdev. */
export interface ClientCtx {
  /** The handle id returned to the caller. */
  readonly id: number;
  /** Which kind of owner. */
  readonly kind: HandleKind;
  /** The WQ. */
  readonly wq: IdxdWqDev;
  /** The process of a file; null otherwise. */
  readonly process: number | null;
  /** The PASID a file's SVA bond gave it; null otherwise. */
  readonly pasid: number | null;
  /** Counted in the WQ's client count (false once the WQ was disabled under it). */
  attached: boolean;
}
