/**
 * The driver adapter table (RFCv2 7/7 `wd_adapter.c`, `hw_dio_tbl`): each user-space driver
 * names the `device_api` (`hw_type`) it drives, and `drv_open` picks the first whose name the
 * queue's device reports, ENODEV when none does. The one entry is the HiSilicon QM user driver
 * (`hisi_qm_set_queue_dio` / `hisi_qm_unset_queue_dio` around {@link HisiQmQueue}).
 *
 * `hisi_qm_set_queue_dio` mmaps the SQ+CQ ring (page offset 1, region 1) and the doorbell page
 * (page offset 0). Its check of each mmap is `vaddr <= 0` on a pointer, which MAP_FAILED
 * (`(void *)-1`) never satisfies (quirk `mmapFailureUnchecked`): a failed mapping is taken for
 * a ring at address -1, and the first access to it is a segmentation fault.
 *
 * @module
 */
import { SDMDEV_DEVICE_API } from "../../spec/sdmdev.ts";
import type { Errno } from "../../spec/types.ts";
import { PAGE_SIZE } from "../../spec/types.ts";
import type { QmMemory, QmMmio } from "../device/qm_device.ts";
import { HisiQmQueue } from "./hisi_qm_udrv.ts";
import { MAP_FAILED, type WdSys } from "./sys.ts";

/** A queue as a user driver holds it: the mapped rings behind `wd_send` / `wd_recv`. */
export interface DriverQueue {
  /** The user QM driver over the mappings; null when a mapping is bogus (a crash on use). */
  readonly queue: HisiQmQueue | null;
  /** Addresses of its mappings (for the close). */
  readonly maps: readonly number[];
}

/** One entry of the table (`struct wd_drv_dio_if`). */
export interface WdDriver {
  /** The `device_api` it drives. */
  readonly hwType: string;
  /** `open`: maps the queue of device fd `fd`; the errno of a failed mmap. */
  open(sys: WdSys, fd: number): Promise<DriverQueue | Errno>;
  /** `close`: unmaps it; the tags of the requests still outstanding (they never complete). */
  close(sys: WdSys, q: DriverQueue): Promise<number[]>;
}

/** Whether the driver takes `addr` for a mapping: the seed's `vaddr <= 0` with the quirk. */
function mapped(sys: WdSys, addr: number): boolean {
  const quirk = sys.host.platform.kernel.quirks.mmapFailureUnchecked;
  return quirk ? !(addr <= 0) : addr !== MAP_FAILED;
}

/** The HiSilicon QM user driver (`hisi_qm_udrv.c`). */
export const HISI_QM_DRIVER: WdDriver = {
  hwType: SDMDEV_DEVICE_API,
  async open(sys, fd) {
    const { fn, platform } = sys.host;
    const ring = sys.mmap(fd, 1, fn.qm.ringBytes);
    if (!mapped(sys, ring)) return sys.errno!;
    const page = sys.mmap(fd, 0, PAGE_SIZE);
    if (!mapped(sys, page)) {
      await sys.munmap(ring);
      return sys.errno!;
    }
    const mem = sys.maps.get(ring)?.backing as QmMemory | undefined;
    const mmio = sys.maps.get(page)?.backing as QmMmio | undefined;
    const qn = sys.queueNumber(fd);
    const queue = mem && mmio && typeof qn === "number"
      ? new HisiQmQueue(platform.kernel, sys.pid, qn, mem, mmio, fn.qm.config)
      : null;
    return { queue, maps: [ring, page].filter((a) => sys.maps.has(a)) };
  },
  async close(sys, q) {
    const pending = (await q.queue?.close()) ?? [];
    for (const addr of q.maps) await sys.munmap(addr);
    return pending;
  },
};

/** `hw_dio_tbl`. */
export const WD_DRIVERS: readonly WdDriver[] = [HISI_QM_DRIVER];

/** `drv_open`'s lookup: the driver of `hwType`, or ENODEV. */
export function driverFor(hwType: string): WdDriver | Errno {
  return WD_DRIVERS.find((d) => d.hwType === hwType) ?? "ENODEV";
}
