/**
 * The `wd` user library (RFCv2 7/7 `wd.c`), contract in spec/wd.ts. A process's requests go
 * through its {@link WdSys}: the library finds the accelerator in sysfs
 * (`/sys/class/sdmdev/<dev>/device/mdev_supported_types/<type>` with a `device_api` some user
 * driver of the adapter table drives and instances available), creates an mdev there (its
 * `create` file) and then follows `wd_request_queue`: open `/dev/vfio/<group>` (the group from
 * `/sys/bus/mdev/devices/<uuid>/iommu_group`), open `/dev/vfio/vfio`, check the API version,
 * read `params/dma_flag` and `params/iommu_type`, CHECK_EXTENSION, read `device_api`,
 * GROUP_GET_STATUS (viable), SET_CONTAINER, SET_IOMMU, GET_DEVICE_FD, and the driver's open
 * (mmap of the ring and the doorbell page). Each failure unwinds what was done, as the seed's
 * `err_with_*` labels do, and the mdev is removed again.
 *
 * `wd_mem_share` is VFIO_IOMMU_MAP_DMA at IOVA = vaddr (type1 pins and accounts the pages),
 * `wd_mem_unshare` VFIO_IOMMU_UNMAP_DMA. `wd_recv_sync` loops over `wd_recv` and the WAIT
 * ioctl with the timeout converted from milliseconds to jiffies ({@link msecsToJiffies}).
 * `wd_release_queue` runs every step whatever the others return: the driver's close
 * (munmaps), the device fd, the container and the group closed (the last group leaving the
 * container takes its mappings and pins), the mdev removed.
 *
 * Quirks: `checkExtensionFailureReturnsZero` (L4984: `ret` is CHECK_EXTENSION's 0 when it
 * jumps to `err_with_container`), `groupNotViableReturnsZero` (L4995: `ret` is GET_STATUS's
 * 0), `recvSyncNeverWaits` (L5096: the loop waits on EBUSY, `wd_recv` says EAGAIN),
 * `unshareIsNoop` (L5153: the non-SVA UNMAP_DMA is inside `#if HAVE_SVA`); in the driver
 * (impl/wd/adapter.ts) `mmapFailureUnchecked`.
 *
 * On a uacce device (the char-device design; found first, under `/sys/class/uacce`, when its
 * `api` is a driver's, its `flags` have `UACCE_DEV_SVA` and an instance is available) the
 * request opens `/dev/<name>-<dev>` (the queue's context), lets the driver mmap the DUS and MMIO
 * regions and ask the queue's number, and starts the queue (START_Q); a share is the library's
 * record only (SVA: the device reaches the process's memory through its PASID); the wait is
 * poll(2) of the fd with the timeout in milliseconds; a release unmaps, stops the queue
 * (PUT_Q) and closes the file. A failure closes what was opened.
 *
 * The seed's sdmdev queues are all `alg_type` 0 (RFCv2 6/7 `hisi_qm_get_queue`, L3892: "fix
 * me here"): a queue of another `alg_type` (the ZIP engine's decompression) cannot come from
 * sdmdev, and {@link WdQueue.direct} takes it from the QM directly (its memory pinned and
 * mapped into the function's default domain, outside VFIO).
 *
 * @module
 */
import { pageAligned } from "../../spec/iommu.ts";
import { SDMDEV_DMA_FLAG } from "../../spec/sdmdev.ts";
import { type Errno, PAGE_SIZE, type Ret } from "../../spec/types.ts";
import { UACCE_DEV_SVA } from "../../spec/uacce.ts";
import { WD_MAX_TIMEOUT_MS } from "../../spec/wd.ts";
import { closeUserQueue, openUserQueue } from "../hisi/qm_user.ts";
import { Mutex } from "../kernel.ts";
import { AddressSpace } from "../mem/mm.ts";
import { loopGuard } from "../runaway.ts";
import { andThen } from "../sched.ts";
import { VfioContainerFile, VfioGroupFile } from "../vfio/files.ts";
import { VFIO_API_VERSION } from "../vfio/vfio.ts";
import { driverFor, type DriverQueue, type WdDriver } from "./adapter.ts";
import type { QpRings } from "../device/qm_device.ts";
import type { HisiQmQueue } from "./hisi_qm_udrv.ts";
import type { WdHost, WdKernel } from "./host.ts";
import type { WdSys } from "./sys.ts";

/** Clock ticks per second of the simulated kernel (`CONFIG_HZ`). */
export const HZ = 250;

/** `msecs_to_jiffies`: rounds up, so a nonzero wait is at least one tick. */
export function msecsToJiffies(ms: number): number {
  return Math.ceil(ms * HZ / 1000);
}

/** A received message: the completion and the written-back SQE. */
export interface WdMessage {
  /** The request's number on its queue. */
  readonly seq: number;
  /**
   * The request's SQE as the device wrote it back (a copy read from the ring when asked: ask
   * before the slot is sent again).
   */
  readonly sqe: Uint8Array;
  /** Its status (`dw3 & 0xff`). */
  readonly status: number;
}

/** A {@link WdMessage} whose SQE is read from the ring when asked. */
class Received implements WdMessage {
  constructor(
    readonly seq: number,
    readonly status: number,
    readonly rings: QpRings,
    readonly slot: number,
  ) {}

  get sqe(): Uint8Array {
    return this.rings.sqe(this.slot);
  }
}

/** Where the accelerator was found in sysfs. */
interface Found {
  /** `/sys/class/sdmdev/<dev>/device`. */
  readonly base: string;
  /** Its `mdev_supported_types/<type>` directory. */
  readonly type: string;
}

/** A uacce device found in sysfs. */
interface FoundUacce {
  /** Its class device's name (`<name>-<dev>`, also its node in `/dev`). */
  readonly name: string;
  /** The driver of its `api`. */
  readonly driver: WdDriver;
  /** `region_dus_size`: the ring the driver maps. */
  readonly dusSize: number;
}

/** The files and mappings of a set-up queue, and how its memory is shared. */
interface QueuePath {
  /**
   * Makes `[vaddr, vaddr + size)` reachable by the device at IOVA = vaddr, given the shares
   * made so far (start to size).
   */
  share(
    vaddr: number,
    size: number,
    shared: ReadonlyMap<number, number>,
  ): Promise<Errno | undefined>;
  /** Undoes a share. */
  unshare(vaddr: number, size: number): Promise<void>;
  /**
   * Sleeps until the queue is updated or `timeoutMs` passes (0: forever): ok(0) once timed
   * out (or a forever wait woken), else ok(> 0); EAGAIN for a forever wait nothing woke.
   */
  wait(timeoutMs: number): Promise<Ret>;
  /**
   * Gives everything back: the numbers of the requests still outstanding. `detached` runs once
   * the device, the container and the group are closed (before the mdev goes).
   */
  release(detached: () => void): Promise<number[]>;
}

/** The queue each process holds (the library's per-process state). */
const HELD = new WeakMap<WdSys, WdQueue>();

/** The library's lock of each process, taken by a request and a release. */
const LOCKS = new WeakMap<WdSys, Mutex>();

function processLock(sys: WdSys): Mutex {
  let m = LOCKS.get(sys);
  if (!m) LOCKS.set(sys, m = new Mutex());
  return m;
}

/** The mdev the library creates for process `pid` (one queue per process). */
export function mdevUuid(pid: number): string {
  return `00000000-0000-4000-8000-${pid.toString(16).padStart(12, "0")}`;
}

/**
 * The accelerator: a uacce device if there is one to use, else the first sdmdev type a driver
 * of the table drives with an instance available; ENODEV when there is none.
 */
function discover(sys: WdSys): Found | FoundUacce | Errno {
  return discoverUacce(sys) ?? discoverSdmdev(sys);
}

/**
 * The first uacce device with SVA a driver of the table drives with an instance available
 * (UADK's walk of `/sys/class/uacce`), if any.
 */
function discoverUacce(sys: WdSys): FoundUacce | undefined {
  const devs = sys.list("/sys/class/uacce");
  if (typeof devs === "string") return undefined;
  for (const name of devs) {
    const dir = `/sys/class/uacce/${name}`;
    const driver = driverFor(sys.readAttr(`${dir}/api`));
    const flags = attrInt(sys, `${dir}/flags`) ?? 0;
    const free = attrInt(sys, `${dir}/available_instances`) ?? 0;
    const dusSize = attrInt(sys, `${dir}/region_dus_size`);
    if (typeof driver === "string" || !(flags & UACCE_DEV_SVA) || free < 1 || !dusSize) continue;
    return { name, driver, dusSize };
  }
  return undefined;
}

/** The first sdmdev type a driver drives with an instance available; ENODEV when none. */
function discoverSdmdev(sys: WdSys): Found | Errno {
  const devs = sys.list("/sys/class/sdmdev");
  if (typeof devs === "string") return "ENODEV";
  for (const dev of devs) {
    const base = `/sys/class/sdmdev/${dev}/device`;
    const types = sys.list(`${base}/mdev_supported_types`);
    if (typeof types === "string") continue;
    for (const t of types) {
      const type = `${base}/mdev_supported_types/${t}`;
      const api = sys.readAttr(`${type}/device_api`);
      const free = Number(sys.readAttr(`${type}/available_instances`));
      if (typeof driverFor(api) !== "string" && free > 0) return { base, type };
    }
  }
  return "ENODEV";
}

/** `_get_attr_int`: the attribute as a number, undefined (INT_MIN) when it cannot be read. */
function attrInt(sys: WdSys, path: string): number | undefined {
  const v = sys.readAttr(path);
  const n = Number.parseInt(v, 10);
  return Number.isNaN(n) ? undefined : n;
}

/** The fds of a queue the seed's set-up got up to. */
interface Opened {
  group: number;
  container: number;
  device: number;
}

/** `struct wd_queue` of one process. */
export class WdQueue {
  /** The process's memory. */
  readonly mm: AddressSpace;
  readonly #host: WdKernel;
  /** The user driver's queue; null for a queue the seed's set-up left hollow (a crash on use). */
  readonly #queue: HisiQmQueue | null;
  readonly #path: QueuePath;
  readonly #shared = new Map<number, number>();
  readonly #sys: WdSys | undefined;
  /** A release has begun; `#released` once it is over. */
  #releasing = false;
  #released = false;
  #tags = 0;
  #received = 0;
  readonly #sendLock = new Mutex();
  /** Receipts on the queue take turns: see {@link polling}. */
  readonly #recvLock = new Mutex();
  /**
   * Keeps the share table and the mappings it records one step apart for the process's
   * threads, and a release from overtaking a share under way.
   */
  readonly #shareLock = new Mutex();

  private constructor(
    host: WdKernel,
    mm: AddressSpace,
    queue: HisiQmQueue | null,
    path: QueuePath,
    sys?: WdSys,
  ) {
    this.#host = host;
    this.mm = mm;
    this.#queue = queue;
    this.#path = path;
    this.#sys = sys;
  }

  /**
   * `wd_request_queue` by the process of `sys`: a queue of `alg_type` 0 through sdmdev. One
   * per process (EEXIST while it holds one: its mdev is named after the process); a request
   * and a release of one process run one at a time, under the library's lock of the process.
   */
  static request(sys: WdSys): Promise<WdQueue | Errno> {
    return processLock(sys).hold(sys.host.platform.kernel.sched, "wd.request:lock", async () => {
      if (HELD.has(sys)) return "EEXIST";
      const q = await WdQueue.#request(sys);
      if (typeof q !== "string") HELD.set(sys, q);
      return q;
    });
  }

  /** The queue process `sys` holds, if any. */
  static of(sys: WdSys): WdQueue | undefined {
    return HELD.get(sys);
  }

  static async #request(sys: WdSys): Promise<WdQueue | Errno> {
    const found = discover(sys);
    if (typeof found === "string") return found;
    if ("driver" in found) return await WdQueue.#requestUacce(sys, found);
    const uuid = mdevUuid(sys.pid);
    const created = await sys.writeAttr(`${found.type}/create`, uuid);
    if (created !== undefined) return created;
    const remove = async () =>
      void await sys.writeAttr(`/sys/bus/mdev/devices/${uuid}/remove`, "1");
    const r = await WdQueue.#setUp(sys, found, uuid);
    if (typeof r === "string") {
      await remove();
      return r;
    }
    const [opened, drv, dq, dmaFlag] = r;
    const path = sdmdevPath(sys, opened, dmaFlag, async (detached) => {
      const pending = drv && dq ? await drv.close(sys, dq) : [];
      for (const fd of [opened.device, opened.container, opened.group]) await sys.close(fd);
      detached();
      await remove();
      return pending;
    });
    return new WdQueue(sys.host, sys.mm, dq?.queue ?? null, path, sys);
  }

  /**
   * The request on a uacce device: open its node, the driver's open (its mmaps and SET_QP_CTX),
   * START_Q; a failure undoes what was done, the file closed last.
   */
  static async #requestUacce(sys: WdSys, found: FoundUacce): Promise<WdQueue | Errno> {
    const fd = await sys.open(`/dev/${found.name}`);
    if (typeof fd === "string") return fd;
    const drv = found.driver;
    const dq = await drv.open(sys, fd, found.dusSize);
    if (typeof dq === "string") {
      await sys.close(fd);
      return dq;
    }
    const started = await sys.ioctl(fd, "startQ");
    if ("err" in started) {
      await drv.close(sys, dq);
      await sys.close(fd);
      return started.err;
    }
    const path = uaccePath(sys, fd, async (detached) => {
      const pending = await drv.close(sys, dq);
      await sys.ioctl(fd, "putQ");
      await sys.close(fd);
      detached();
      return pending;
    });
    return new WdQueue(sys.host, sys.mm, dq.queue, path, sys);
  }

  /**
   * The seed's set-up from the group's open to the driver's open: the fds, the driver and its
   * queue, the `dma_flag`; or the errno, everything opened closed again. With the quirks whose
   * `ret` is 0 on a failure, the closes run and the caller is told it has a queue: the fds are
   * -1 and there is no driver.
   */
  static async #setUp(
    sys: WdSys,
    found: Found,
    uuid: string,
  ): Promise<[Opened, WdDriver | null, DriverQueue | null, number] | Errno> {
    const { quirks } = sys.host.platform.kernel;
    const hollow = (): [Opened, null, null, number] => [
      { group: -1, container: -1, device: -1 },
      null,
      null,
      0,
    ];
    const groupId = sys.readAttr(`/sys/bus/mdev/devices/${uuid}/iommu_group`);
    const group = await sys.open(`/dev/vfio/${groupId}`);
    if (typeof group === "string") return group;
    const container = await sys.open("/dev/vfio/vfio");
    if (typeof container === "string") {
      await sys.close(group);
      return "ENODEV";
    }
    const errWithContainer = async (ret: Errno | 0) => {
      await sys.close(container);
      await sys.close(group);
      return ret === 0 ? hollow() : ret;
    };
    const cf = sys.file(container, VfioContainerFile)!;
    const gf = sys.file(group, VfioGroupFile)!;
    if (cf.apiVersion() !== VFIO_API_VERSION) return await errWithContainer("EINVAL");
    const dmaFlag = attrInt(sys, `${found.base}/params/dma_flag`);
    const iommuExt = attrInt(sys, `${found.base}/params/iommu_type`);
    if (dmaFlag === undefined || iommuExt === undefined) return await errWithContainer("EINVAL");
    if (cf.checkExtension(iommuExt) === 0) {
      return await errWithContainer(quirks.checkExtensionFailureReturnsZero ? 0 : "ENODEV");
    }
    const hwType = sys.readAttr(`${found.type}/device_api`);
    const status = gf.getStatus();
    if (typeof status === "string") return await errWithContainer(status);
    if (!status.viable) {
      return await errWithContainer(quirks.groupNotViableReturnsZero ? 0 : "EPERM");
    }
    const set = (await gf.setContainer(cf)) ?? (await cf.setIommu(iommuExt));
    if (set !== undefined) return await errWithContainer(set);
    const devFile = await gf.getDeviceFd();
    if (typeof devFile === "string") return await errWithContainer(devFile);
    const device = sys.fds.install(devFile);
    const drv = driverFor(hwType);
    const ringBytes = sys.host.fn.qm.ringBytes;
    const dq = typeof drv === "string" ? drv : await drv.open(sys, device, ringBytes);
    if (typeof dq === "string") {
      await sys.close(device);
      return await errWithContainer(dq);
    }
    return [{ group, container, device }, drv as WdDriver, dq, dmaFlag];
  }

  /**
   * A queue of `algType` for process `pid` taken from the QM directly (the decompression the
   * seed's sdmdev cannot give; see the module doc).
   */
  static async direct(host: WdHost, pid: number, algType: number): Promise<WdQueue | Errno> {
    const { platform, fn } = host;
    const queue = await openUserQueue(platform.kernel, fn, pid, algType);
    if (typeof queue === "string") return queue;
    const mm = new AddressSpace(pid, platform.kernel.phys);
    return new WdQueue(host, mm, queue, directPath(host, mm, queue));
  }

  /** The queue number (what the device's doorbells name); -1 for a hollow queue. */
  get qn(): number {
    return this.#queue?.qn ?? -1;
  }

  /** The user driver's queue (its rings), for the device's side and observers. */
  get driver(): HisiQmQueue | null {
    return this.#queue;
  }

  /** The number the next request sent gets. */
  get nextSeq(): number {
    return this.#tags;
  }

  /** The shares made and not undone, by start address. */
  get shares(): { readonly vaddr: number; readonly size: number }[] {
    return [...this.#shared].map(([vaddr, size]) => ({ vaddr, size })).sort((a, b) =>
      a.vaddr - b.vaddr
    );
  }

  /** Completions handed to the caller so far. */
  get received(): number {
    return this.#received;
  }

  /** Copies `data` into process memory at `vaddr`. */
  write(vaddr: number, data: Uint8Array): void {
    this.#pages(vaddr, data.length, (frame, offset, at, n) => {
      this.#host.platform.kernel.phys.write(frame, offset, data.subarray(at, at + n));
    });
  }

  /** Reads `length` bytes of process memory at `vaddr`. */
  read(vaddr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.#pages(vaddr, length, (frame, offset, at, n) => {
      this.#host.platform.kernel.phys.readInto(frame, offset, out.subarray(at, at + n));
    });
    return out;
  }

  /**
   * `wd_mem_share`: `[vaddr, vaddr + size)` reachable by the device at IOVA = vaddr. Shares
   * and unshares of the process's threads go one at a time (the library's share lock): the
   * table of shares never disagrees with the mappings it records.
   */
  async memShare(vaddr: number, size: number): Promise<Errno | undefined> {
    if (this.#releasing) return await this.settle("EINVAL");
    const sched = this.#host.platform.kernel.sched;
    const r = await this.#shareLock.hold(sched, "wd.share:lock", async () => {
      if (this.#releasing) return "EINVAL";
      const r = await this.#path.share(vaddr, size, this.#shared);
      if (r === undefined) this.#shared.set(vaddr, size);
      return r;
    });
    return await this.settle(r);
  }

  /** `wd_mem_unshare` of the share at `vaddr`: EINVAL when there is none. */
  async memUnshare(vaddr: number): Promise<Errno | undefined> {
    if (this.#releasing) return await this.settle("EINVAL");
    const sched = this.#host.platform.kernel.sched;
    const r = await this.#shareLock.hold(sched, "wd.share:lock", async () => {
      const size = this.#shared.get(vaddr);
      if (this.#releasing || size === undefined) return "EINVAL";
      await this.#path.unshare(vaddr, size);
      this.#shared.delete(vaddr);
      return undefined;
    });
    return await this.settle(r);
  }

  /**
   * `wd_send`: one message (an SQE): its number; EBUSY when the queue is full. Sends are
   * numbered one at a time (the library's send lock); `numbered` learns the number before
   * the SQE is written.
   */
  send(sqe?: Uint8Array, numbered?: (seq: number) => void): Promise<number | Errno> {
    if (this.#releasing) return Promise.resolve(this.settle("EINVAL"));
    const sched = this.#host.platform.kernel.sched;
    const r = this.#sendLock.holdNow(sched, "wd.send:lock", () => {
      const seq = this.#tags;
      numbered?.(seq);
      return andThen(this.#driver().send(seq, true, sqe), (sent) => {
        if (typeof sent === "number") this.#tags++;
        return sent;
      });
    });
    return Promise.resolve(andThen(r, (sent) => this.settle(sent)));
  }

  /** `wd_recv`: the next completed message, or EAGAIN. */
  recv(): Promise<WdMessage | Errno> {
    if (this.#releasing) return Promise.resolve(this.settle("EINVAL"));
    const q = this.#driver();
    const sched = this.#host.platform.kernel.sched;
    const r = this.#recvLock.holdNow(
      sched,
      "wd.recv:lock",
      () =>
        andThen(q.recv(), (c): WdMessage | Errno => {
          if (typeof c === "string") return c;
          this.#received++;
          return new Received(c.tag, c.status, q.rings, c.seq % q.rings.sqTail.depth);
        }),
    );
    return Promise.resolve(andThen(r, (got) => this.settle(got)));
  }

  /**
   * Runs `body` holding the queue's send and receive locks, which every {@link send} and
   * {@link recv} take: a caller that receives several completions in `body` (the async API's
   * `poll`) gets consecutive ones, with no other thread's send or receipt in between, so that
   * they all take effect at one point.
   */
  polling<T>(body: () => Promise<T>): Promise<T> {
    const sched = this.#host.platform.kernel.sched;
    return this.#sendLock.hold(
      sched,
      "wd.poll:send-lock",
      () => this.#recvLock.hold(sched, "wd.poll:recv-lock", body),
    );
  }

  /** `wd_flush`: the QM user driver has none (every send rings the doorbell). */
  flush(): void {}

  /**
   * `wd_recv_sync`: {@link recv}, and while it says nothing completed, the WAIT ioctl for
   * `timeoutMs` milliseconds (0: forever; on sdmdev converted to jiffies); ETIMEDOUT when a
   * bounded wait times out, the ioctl's errno when it fails; EINVAL for a timeout outside
   * `__u16`.
   */
  async recvSync(timeoutMs: number): Promise<WdMessage | Errno> {
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > WD_MAX_TIMEOUT_MS) {
      return "EINVAL";
    }
    const retryOn = this.#host.platform.kernel.quirks.recvSyncNeverWaits ? "EBUSY" : "EAGAIN";
    const spin = loopGuard("wd_recv_sync");
    for (;;) {
      spin();
      const r = await this.recv();
      if (r !== retryOn) return r;
      this.flush();
      const w = await this.#path.wait(timeoutMs);
      if ("err" in w) return await this.settle(w.err);
      if (w.ok === 0 && timeoutMs !== 0) return await this.settle("ETIMEDOUT");
    }
  }

  /**
   * `wd_release_queue`: everything given back; the numbers of the requests still outstanding,
   * which never complete, in slot order; EINVAL once a release has begun. The process
   * holds the queue until its files are closed; a call on the queue that a release overlaps
   * returns once the release is over ({@link settle}), so that a call seeing the queue gone
   * never answers before the release does.
   */
  async release(): Promise<number[] | Errno> {
    if (this.#releasing) return await this.settle("EINVAL");
    const sys = this.#sys;
    this.#releasing = true;
    const detached = () => {
      if (sys && HELD.get(sys) === this) HELD.delete(sys);
    };
    const sched = this.#host.platform.kernel.sched;
    // A share under way finishes first (its MAP_DMA then goes with the container).
    const undo = () =>
      this.#shareLock.hold(sched, "wd.release:share-lock", () => this.#path.release(detached));
    try {
      if (!sys) return await undo();
      return await processLock(sys).hold(sched, "wd.release:lock", undo);
    } finally {
      this.#released = true;
    }
  }

  /** `r`, once a release overlapping the call that produced it is over. */
  settle<T>(r: T): T | Promise<T> {
    if (!this.#releasing || this.#released) return r;
    const sched = this.#host.platform.kernel.sched;
    return sched.waitUntil("wd.released", () => this.#released).then(() => r);
  }

  /** The driver's queue; a hollow queue's access is the seed's NULL `q->priv` (a crash). */
  #driver(): HisiQmQueue {
    if (!this.#queue) throw new Error("SIGSEGV: wd queue without a driver queue (q->priv)");
    return this.#queue;
  }

  #pages(
    vaddr: number,
    length: number,
    f: (frame: ReturnType<AddressSpace["page"]>, offset: number, at: number, n: number) => void,
  ): void {
    for (let at = 0; at < length;) {
      const va = vaddr + at;
      const offset = va % PAGE_SIZE;
      const n = Math.min(length - at, PAGE_SIZE - offset);
      f(this.mm.page(va - offset), offset, at, n);
      at += n;
    }
  }
}

/**
 * Shares are MAP_DMA through the container fd (`_wd_mem_share_type1`, SINGLE_PROC_MAP only;
 * EINVAL for the PASID modes, which this library does not do); `release` is the given undo.
 */
function sdmdevPath(
  sys: WdSys,
  fds: Opened,
  dmaFlag: number,
  release: (detached: () => void) => Promise<number[]>,
): QueuePath {
  const container = () => sys.file(fds.container, VfioContainerFile);
  return {
    share(vaddr, size) {
      const c = container();
      if (!c || !(dmaFlag & SDMDEV_DMA_FLAG.SINGLE_PROC_MAP)) return Promise.resolve("EINVAL");
      return c.mapDma(vaddr, vaddr, size);
    },
    async unshare(vaddr, size) {
      if (sys.host.platform.kernel.quirks.unshareIsNoop) return;
      await container()?.unmapDma(vaddr, size);
    },
    wait: (timeoutMs) => sys.wait(fds.device, msecsToJiffies(timeoutMs)),
    release,
  };
}

/**
 * A uacce queue's: with SVA a share is the library's record of the range (the same checks as
 * type1's MAP_DMA: EINVAL unaligned or empty, EEXIST overlapping), nothing mapped or pinned;
 * the wait is poll(2) of fd `fd` (a POLLERR wakes it).
 */
function uaccePath(
  sys: WdSys,
  fd: number,
  release: (detached: () => void) => Promise<number[]>,
): QueuePath {
  return {
    share(vaddr, size, shared) {
      if (!pageAligned(vaddr) || !pageAligned(size) || size === 0 || !pageAligned(vaddr + size)) {
        return Promise.resolve("EINVAL");
      }
      const overlaps = [...shared].some(([at, n]) => vaddr < at + n && at < vaddr + size);
      return Promise.resolve(overlaps ? "EEXIST" : undefined);
    },
    unshare: () => Promise.resolve(),
    // A ZOMBIE queue's POLLERR ends poll(2) with the fd ready: the library's next receive
    // finds out (through the zapped mapping, once the device was removed).
    wait: async (timeoutMs) => {
      const r = await sys.poll(fd, timeoutMs);
      return "err" in r && r.err === "ENXIO" ? { ok: 1 } : r;
    },
    release,
  };
}

/** Shares pin the pages and map them into the function's default domain directly. */
function directPath(host: WdHost, mm: AddressSpace, queue: HisiQmQueue): QueuePath {
  const { platform, fn } = host;
  const domain = fn.group.defaultDomain!;
  return {
    share(vaddr, size) {
      const pages = Math.max(1, Math.ceil(size / PAGE_SIZE));
      const frames = Array.from({ length: pages }, (_, i) => mm.pin(vaddr + i * PAGE_SIZE));
      const r = platform.iommu.map(domain, vaddr, frames);
      if (r !== undefined) { for (let i = 0; i < pages; i++) mm.unpin(vaddr + i * PAGE_SIZE); }
      return Promise.resolve(r);
    },
    async unshare(vaddr, size) {
      const pages = Math.max(1, Math.ceil(size / PAGE_SIZE));
      await platform.iommu.unmap(domain, vaddr, pages * PAGE_SIZE);
      for (let i = 0; i < pages; i++) mm.unpin(vaddr + i * PAGE_SIZE);
    },
    wait: () => Promise.resolve({ err: "ENODEV" }),
    release: async (detached) => {
      const pending = await queue.close();
      await closeUserQueue(fn, queue);
      detached();
      return pending;
    },
  };
}
