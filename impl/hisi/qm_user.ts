/**
 * A process's own queue pair on a QM, without sdmdev: what `wd_request_queue` gets from the
 * kernel in the QM view (a queue pair allocated for the process and started, its SQ+CQ buffer
 * and its doorbell page handed to the user QM driver) and what `wd_release_queue` gives back.
 *
 * @module
 */
import type { Errno } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import type { QmFunction } from "../platform.ts";
import { HisiQmQueue } from "../wd/hisi_qm_udrv.ts";
import type { HisiQp } from "./qm.ts";

/** The user driver's queue over started queue pair `qp` of process `pid`. */
export function userQueue(kernel: Kernel, fn: QmFunction, qp: HisiQp, pid: number): HisiQmQueue {
  const mmio = fn.device.mmio(pid);
  return new HisiQmQueue(kernel, pid, qp.qn, qp.scqe!.mem, mmio, fn.qm.config);
}

/** A queue pair of `algType` for process `pid`, started; the errno of a failed start. */
export async function openUserQueue(
  kernel: Kernel,
  fn: QmFunction,
  pid: number,
  algType: number,
): Promise<HisiQmQueue | Errno> {
  const qp = fn.qm.createQp(pid, algType);
  if (typeof qp === "string") return qp;
  const err = await fn.qm.startQp(qp);
  if (err !== undefined) {
    await fn.qm.releaseQp(qp);
    return err;
  }
  return userQueue(kernel, fn, qp, pid);
}

/** The process drops `queue` (its outstanding requests: the count returned), then the qp goes. */
export async function closeUserQueue(fn: QmFunction, queue: HisiQmQueue): Promise<number> {
  const dropped = queue.release();
  const qp = fn.qm.qps[queue.qn];
  if (qp) await fn.qm.releaseQp(qp);
  return dropped;
}
