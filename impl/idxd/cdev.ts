/**
 * A user WQ's char device (upstream cdev.c): `open` makes a client bound to the caller's PASID,
 * `close` (the file's release) drops it.
 *
 * `idxd_cdev_open`: the char device lookup (`chrdev_open`) happens before the driver's open
 * runs; the context allocation (`kzalloc`, which may sleep) comes first, so `disable` may remove
 * the char device meanwhile. Under the WQ's lock the open then looks again (ENXIO if the device
 * went), refuses a second client of a dedicated WQ (EBUSY), binds the process
 * (`iommu_sva_bind_device`, which may sleep too), writes its PASID into a dedicated WQ's
 * configuration and counts the client. Upstream does not look at the char device again under
 * the lock; this model does, so that a WQ disabled while an open slept gets no client.
 *
 * Quirks: `dwqOpenOffByOne` (the dedicated check is `client count > 1`);
 * `cdevOpenWithoutWqLock` (the code before the fix: the dedicated check, then the allocation,
 * then the count, and the release's uncount, all without the WQ's lock).
 *
 * @module
 */
import { err, ok, type Ret } from "../../spec/types.ts";
import type { IdxdDriver } from "./driver.ts";
import type { IdxdWqDev } from "./wq.ts";

/** Opens WQ `id`'s char device as `process`: ok(the file's handle id). */
export async function openCdev(drv: IdxdDriver, id: number, process: number): Promise<Ret> {
  const wq = drv.wq(id);
  if (!wq || !drv.pasids.has(process)) return err("EINVAL");
  if (wq.serves !== "file") return err("ENXIO");
  if (drv.quirks.cdevOpenWithoutWqLock) {
    if (dedicatedTaken(drv, wq)) return err("EBUSY");
    await drv.sched.point("idxd.open:alloc-ctx");
    return await bindAndCount(drv, wq, process);
  }
  await drv.sched.point("idxd.open:alloc-ctx");
  return await wq.lock.hold(drv.sched, "idxd.open:wq-lock", () => {
    if (wq.serves !== "file") return err("ENXIO");
    if (dedicatedTaken(drv, wq)) return err("EBUSY");
    return bindAndCount(drv, wq, process);
  });
}

/** Whether a dedicated WQ already has its one client (two with `dwqOpenOffByOne`). */
function dedicatedTaken(drv: IdxdDriver, wq: IdxdWqDev): boolean {
  const limit = drv.quirks.dwqOpenOffByOne ? 2 : 1;
  return wq.mode === "dedicated" && wq.clients >= limit;
}

/** Binds `process` (its mm's PASID), programs a dedicated WQ with it, counts the client. */
async function bindAndCount(drv: IdxdDriver, wq: IdxdWqDev, process: number): Promise<Ret> {
  await drv.sched.point("idxd.open:sva-bind");
  const pasid = drv.pasids.get(process)!;
  if (wq.mode === "dedicated") await drv.device.setPasid(wq.id, pasid);
  return ok(drv.addClient(wq, "file", process, pasid));
}

/** Closes file `file` (the last fput: the char device's release). */
export function closeCdev(drv: IdxdDriver, file: number): Promise<Ret> {
  return drv.put(file, "file", "idxd.close", !drv.quirks.cdevOpenWithoutWqLock);
}
