/**
 * The driver adapter table (RFCv2 7/7 `wd_adapter.c`, `hw_dio_tbl`): each user-space driver
 * names the `device_api` (`hw_type`) it drives, and `drv_open` picks the first whose name the
 * queue's device reports, ENODEV when none does. Both entries are the HiSilicon QM user driver
 * (`hisi_qm_set_queue_dio` / `hisi_qm_unset_queue_dio` around {@link HisiQmQueue}), one per
 * kernel interface: `hisi_qm_v1` over an sdmdev's VFIO device, `hisi_qm_v2` over a uacce char
 * device.
 *
 * `hisi_qm_set_queue_dio` mmaps the SQ+CQ ring (page offset 1: sdmdev's region 1, uacce's DUS)
 * and the doorbell page (page offset 0: uacce's MMIO), then learns the queue's number (on uacce,
 * UADK's SET_QP_CTX ioctl; a failure there unmaps both). Its check of each mmap is `vaddr <= 0`
 * on a pointer, which MAP_FAILED (`(void *)-1`) never satisfies (quirk `mmapFailureUnchecked`): a
 * failed mapping is taken for a ring at address -1, and the first access to it is a segmentation
 * fault.
 *
 * @module
 */
import { SDMDEV_DEVICE_API } from "../../spec/sdmdev.ts";
import type { Errno } from "../../spec/types.ts";
import { PAGE_SIZE } from "../../spec/types.ts";
import { UACCE_API } from "../../spec/uacce.ts";
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
  /**
   * `open`: maps the queue of device fd `fd`, its ring `ringBytes` long (what the device
   * publishes); the errno of a failed mmap or of asking the queue's number.
   */
  open(sys: WdSys, fd: number, ringBytes: number): Promise<DriverQueue | Errno>;
  /** `close`: unmaps it; the tags of the requests still outstanding (they never complete). */
  close(sys: WdSys, q: DriverQueue): Promise<number[]>;
}

/** The ring's page offset (sdmdev's region 1, uacce's `UACCE_QFRT_DUS`). */
const RING_PGOFF = 1;

/** The doorbell page's (sdmdev's region 0, uacce's `UACCE_QFRT_MMIO`). */
const DOORBELL_PGOFF = 0;

/** Whether the driver takes `addr` for a mapping: the seed's `vaddr <= 0` with the quirk. */
function mapped(sys: WdSys, addr: number): boolean {
  const quirk = sys.host.platform.kernel.quirks.mmapFailureUnchecked;
  return quirk ? !(addr <= 0) : addr !== MAP_FAILED;
}

/**
 * The HiSilicon QM user driver (`hisi_qm_udrv.c`) for `hwType`, learning a queue's number with
 * `queueNumber` (sdmdev: the queue behind the fd; uacce: SET_QP_CTX).
 */
function hisiQmDriver(
  hwType: string,
  queueNumber: (sys: WdSys, fd: number) => Promise<number | Errno>,
): WdDriver {
  return {
    hwType,
    async open(sys, fd, ringBytes) {
      const { fn, platform } = sys.host;
      const ring = await sys.mmap(fd, RING_PGOFF, ringBytes);
      if (!mapped(sys, ring)) return sys.errno!;
      const page = await sys.mmap(fd, DOORBELL_PGOFF, PAGE_SIZE);
      const maps = () => [ring, page].filter((a) => sys.maps.has(a));
      if (!mapped(sys, page)) {
        await sys.munmap(ring);
        return sys.errno!;
      }
      const mem = sys.maps.get(ring)?.backing as QmMemory | undefined;
      const mmio = sys.maps.get(page)?.backing as QmMmio | undefined;
      const qn = mem && mmio ? await queueNumber(sys, fd) : undefined;
      if (typeof qn === "string") {
        for (const addr of maps()) await sys.munmap(addr);
        return qn;
      }
      const queue = typeof qn === "number"
        ? new HisiQmQueue(
          platform.kernel,
          sys.pid,
          qn,
          mem!,
          mmio!,
          fn.qm.config,
          () => sys.access(ring) ?? sys.access(page),
        )
        : null;
      return { queue, maps: maps() };
    },
    async close(sys, q) {
      const pending = (await q.queue?.close()) ?? [];
      for (const addr of q.maps) await sys.munmap(addr);
      return pending;
    },
  };
}

/** The QM user driver over sdmdev (the seed's). */
export const HISI_QM_DRIVER: WdDriver = hisiQmDriver(
  SDMDEV_DEVICE_API,
  (sys, fd) => Promise.resolve(sys.queueNumber(fd)),
);

/** The QM user driver over uacce (`qc_type` 0: compression). */
export const HISI_QM_UACCE_DRIVER: WdDriver = hisiQmDriver(UACCE_API, async (sys, fd) => {
  const r = await sys.ioctl(fd, { setQpCtx: 0 });
  return "err" in r ? r.err : r.ok as number;
});

/** `hw_dio_tbl`. */
export const WD_DRIVERS: readonly WdDriver[] = [HISI_QM_DRIVER, HISI_QM_UACCE_DRIVER];

/** `drv_open`'s lookup: the driver of `hwType`, or ENODEV. */
export function driverFor(hwType: string): WdDriver | Errno {
  return WD_DRIVERS.find((d) => d.hwType === hwType) ?? "ENODEV";
}
