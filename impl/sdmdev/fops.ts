/**
 * What a process does with an open sdmdev fd (RFCv2 3/7 `vfio_sdmdev_mdev_mmap`,
 * `vfio_sdmdev_mdev_ioctl`, uapi `VFIO_SDMDEV_CMD_WAIT` and `VFIO_SDMDEV_CMD_BIND_PASID`),
 * plus the mm's own checks of an mmap before the driver sees the VMA.
 *
 * Quirks: `waitWithoutMaskNotify` shows here as ENODEV (the QM leaves `mask_notify` out),
 * `bindPasidUninitialisedRet` (L1558: `ret` is never set without `start_queue`) and
 * `reopenRestartsQueue` (BIND_PASID does not refuse a running queue).
 *
 * @module
 */
import { type Errno, PAGE_SIZE, type Ret } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import { SDMDEV_EVENT_Q_UPDATE, type SdmdevQueue } from "./queue.ts";
import { checkFd, type SdmdevClass, type VfioSdmdev } from "./sdmdev.ts";
import type { PasidLayer } from "./sva.ts";
import { type DeviceFuture, ERESTARTSYS, waitEventTicks } from "./wait.ts";

function isInt(v: unknown, min: number): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min;
}

/** mmap of the device fd: the new mapping's id. EINVAL for what the vendor or the mm refuse. */
export function mmap(sd: VfioSdmdev, q: SdmdevQueue, pgoff: number, size: number): number | Errno {
  if (!isInt(pgoff, 0) || !isInt(size, 1)) return "EINVAL";
  if (!sd.ops.mmap) return "EINVAL";
  const len = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
  const target = sd.ops.mmap(q, pgoff, len);
  if (typeof target === "string") return target;
  let id = 1;
  while (q.vmas.some((m) => m.id === id)) id++;
  q.vmas.push({ id, region: target.region, size: len, ring: target.ring, backing: target.backing });
  return id;
}

/**
 * dup_mmap's part in fork of process `parent` into `child`: the correct mmap marks the VMAs
 * VM_DONTCOPY | VM_WIPEONFORK (as uacce later does), so the child gets no mapping of the
 * queue. Quirk `forkInheritsQueueMappings`: the seed's mmap sets neither, and the child gets
 * a copy of every mapping `parent` has of the queue (the doorbell page and the ring).
 */
export function dupMmap(kernel: Kernel, q: SdmdevQueue, parent: number, child: number): void {
  if (!kernel.quirks.forkInheritsQueueMappings) return;
  const vmas = q.openedBy === parent ? q.vmas : q.inherited.get(parent);
  if (vmas && vmas.length > 0) q.inherited.set(child, [...vmas]);
}

/**
 * `vfio_sdmdev_wait`: mask the queue's notification, wait until it is updated or `timeout`
 * ticks pass (0: forever), unmask. The ticks left (0 on timeout); EAGAIN for a forever wait
 * nothing wakes; EINVAL for malformed numbers or a queue that is not started.
 */
export function wait(sd: VfioSdmdev, q: SdmdevQueue, timeout: number, device: DeviceFuture): Ret {
  const { ops } = sd;
  if (!isInt(timeout, 0) || !isInt(device.at, -1)) return { err: "EINVAL" };
  if (!ops.maskNotify) return { err: "ENODEV" };
  if (!q.started) return { err: "EINVAL" };
  ops.maskNotify(q, SDMDEV_EVENT_Q_UPDATE);
  const r = waitEventTicks(() => ops.isQUpdated(q), timeout, device);
  ops.maskNotify(q, 0);
  return r === ERESTARTSYS ? { err: "EAGAIN" } : { ok: r };
}

/**
 * `VFIO_SDMDEV_CMD_BIND_PASID` by process `by`: the queue starts with `pasid`. EINVAL
 * without PASID support (the case is compiled out) or for a PASID of another address space;
 * EBUSY when the queue runs already; ENODEV when the vendor cannot start a queue. A file
 * found closed under the queue's mutex is asked again once an open or release is over.
 * Before the hardware starts, the queue takes an SVA bond of its own, which its release
 * drops after the stop: the PASID cannot be freed while the queue context carries it (quirk
 * `freeBeforeUnbind`: no bond, as in the seed, which only checks the PASID with
 * `iommu_sva_find`, L1336, and stores it, L1564).
 */
export async function bindPasid(
  kernel: Kernel,
  sva: PasidLayer,
  sdmdev: SdmdevClass,
  [sd, q]: [VfioSdmdev, SdmdevQueue],
  by: number,
  pasid: number,
): Promise<Ret> {
  if (!sd.sva || sva.find(pasid) !== by) return { err: "EINVAL" };
  const start = () =>
    q.mutex.hold(kernel.sched, "sdmdev.bindPasid:q-mutex", async () => {
      const closed = checkFd(q, by);
      if (closed !== undefined) return closed;
      if (q.started && !kernel.quirks.reopenRestartsQueue) return { err: "EBUSY" } as const;
      q.pasid = pasid;
      if (!sd.ops.startQueue) {
        return kernel.quirks.bindPasidUninitialisedRet
          ? { ok: stackGarbage(q) }
          : { err: "ENODEV" } as const;
      }
      const bond = !kernel.quirks.freeBeforeUnbind && sva.bindQueue !== undefined;
      const refused = bond ? sva.bindQueue?.(sd.parent, by) : undefined;
      if (refused !== undefined) return { err: refused } as const;
      const started = await sd.ops.startQueue(q);
      if (started !== undefined) {
        if (bond) sva.unbindQueue?.(sd.parent, by);
        return { err: started } as const;
      }
      q.started = true;
      q.bound = bond;
      return { ok: 0 } as const;
    });
  const r = await start();
  if (typeof r !== "string") return r;
  // The fd was not there under the mutex: asked again once an open or release is over.
  const settled = await sdmdev.fdSettled(q, by);
  if (settled !== undefined) return { err: settled };
  const again = await start();
  return typeof again === "string" ? { err: again } : again;
}

/**
 * The value an uninitialised `ret` returns: whatever its register last held, here
 * deterministically the PASID just stored in `q->pasid`.
 */
function stackGarbage(q: SdmdevQueue): number {
  return q.pasid;
}
