/**
 * The idxd driver's WQ control (upstream device.c and sysfs.c, and the three WQ drivers that
 * bind a WQ to its use: dmaengine, user, mdev): configuring a WQ, enabling and disabling it, and
 * the clients every use shares (a client is counted in `client_count` and holds a handle). The
 * char device's open and release are in cdev.ts.
 *
 * Locking, as upstream: each WQ's `wq_lock` serialises its configuration, enable, disable and
 * client changes; the device lock is taken inside it, by the device's commands. Unlike
 * upstream's sysfs stores, `configure` takes the WQ's lock too, so a configuration cannot land
 * between an enable's check and its effect.
 *
 * @module
 */
import { type HandleKind, WQ_MODES, WQ_USES } from "../../spec/idxd.ts";
import { err, ok, type Ret } from "../../spec/types.ts";
import type { Quirks } from "../quirks.ts";
import type { Sched } from "../sched.ts";
import { IdxdDevice } from "./device.ts";
import { type ClientCtx, IdxdWqDev, WQ_DRIVERS } from "./wq.ts";

/** What a driver is built from. */
export interface IdxdDriverOptions {
  /** Number of WQs. */
  readonly wqs: number;
  /** Each process's mm PASID (what an SVA bind of that process returns). */
  readonly pasids: ReadonlyMap<number, number>;
  /** The scheduler. */
  readonly sched: Sched;
  /** Seed defects switched on. */
  readonly quirks: Quirks;
}

/** The driver of one device. */
export class IdxdDriver {
  /** The hardware. */
  readonly device: IdxdDevice;
  /** The WQs. */
  readonly wqs: readonly IdxdWqDev[];
  /** Every client handle, by id. */
  readonly handles: Map<number, ClientCtx> = new Map();
  /** Process → its mm's PASID. */
  readonly pasids: ReadonlyMap<number, number>;
  /** The scheduler. */
  readonly sched: Sched;
  /** Seed defects switched on. */
  readonly quirks: Quirks;
  #nextHandle = 1;

  /** A driver for a device with every WQ disabled and unconfigured. */
  constructor(options: IdxdDriverOptions) {
    this.device = new IdxdDevice(options.wqs, options.sched);
    this.wqs = Array.from({ length: options.wqs }, (_, id) => new IdxdWqDev(id));
    this.pasids = options.pasids;
    this.sched = options.sched;
    this.quirks = options.quirks;
  }

  /** The id the next handle gets. */
  get nextHandle(): number {
    return this.#nextHandle;
  }

  /** WQ `id`, if the device has it. */
  wq(id: number): IdxdWqDev | undefined {
    return Number.isInteger(id) ? this.wqs[id] : undefined;
  }

  /** The sysfs `type` and `mode` stores: only while the WQ is disabled. */
  configure(id: number, use: string, mode: string): Promise<Ret> {
    const wq = this.wq(id);
    const u = WQ_USES.find((x) => x === use);
    const m = WQ_MODES.find((x) => x === mode);
    if (!wq || !u || !m) return Promise.resolve(err("EINVAL"));
    return wq.lock.hold(this.sched, "idxd.configure:wq-lock", () => {
      if (wq.state !== "disabled") return err("EPERM");
      wq.use = u;
      wq.mode = m;
      return ok(0);
    });
  }

  /** Binds the WQ's driver: writes its configuration, enables it, registers its interface. */
  enable(id: number): Promise<Ret> {
    const wq = this.wq(id);
    if (!wq) return Promise.resolve(err("EINVAL"));
    return wq.lock.hold(this.sched, "idxd.enable:wq-lock", async () => {
      const use = wq.use;
      if (use === "none") return err("EINVAL");
      if (wq.state === "enabled") return err("EBUSY");
      await this.device.enableWq(wq.id, wq.mode);
      wq.state = "enabled";
      wq.clients = 0;
      wq.serves = WQ_DRIVERS[use];
      return ok(0);
    });
  }

  /**
   * Unbinds the WQ's driver (`drv_disable_wq`): removes its interface, drains and disables it,
   * and cuts every client off (upstream warns and sets the client count to 0). Returns how many
   * clients it cut off.
   */
  disable(id: number): Promise<Ret> {
    const wq = this.wq(id);
    if (!wq) return Promise.resolve(err("EINVAL"));
    return wq.lock.hold(this.sched, "idxd.disable:wq-lock", async () => {
      if (wq.state !== "enabled") return err("ENODEV");
      wq.serves = null;
      await this.device.disableWq(wq.id);
      const cut = wq.clients;
      for (const ctx of wq.attached) ctx.attached = false;
      wq.attached.clear();
      wq.clients = 0;
      wq.state = "disabled";
      return ok(cut);
    });
  }

  /** A dmaengine channel user (`idxd_dma_alloc_chan_resources`) on a kernel WQ. */
  claim(id: number): Promise<Ret> {
    const wq = this.wq(id);
    if (!wq) return Promise.resolve(err("EINVAL"));
    return wq.lock.hold(this.sched, "idxd.claim:wq-lock", () => {
      if (wq.serves !== "kernel") return err("ENODEV");
      if (wq.mode === "dedicated" && wq.clients > 0) return err("EBUSY");
      return ok(this.addClient(wq, "kernel", null, null));
    });
  }

  /** Creates the guest's mdev on a guest WQ: one guest per WQ. */
  async mdevCreate(id: number): Promise<Ret> {
    const wq = this.wq(id);
    if (!wq) return err("EINVAL");
    await this.sched.point("idxd.mdevCreate:alloc-vdcm");
    return wq.lock.hold(this.sched, "idxd.mdevCreate:wq-lock", () => {
      if (wq.serves !== "mdev") return err("ENODEV");
      if (wq.clients > 0) return err("EBUSY");
      return ok(this.addClient(wq, "mdev", null, null));
    });
  }

  /**
   * Counts a new client of `wq` and gives it a handle. The caller holds the WQ's lock (or, with
   * a quirk, should have).
   */
  addClient(wq: IdxdWqDev, kind: HandleKind, process: number | null, pasid: number | null): number {
    const id = this.#nextHandle++;
    const ctx = { id, kind, wq, process, pasid, attached: true };
    this.handles.set(id, ctx);
    wq.attached.add(ctx);
    wq.clients++;
    return id;
  }

  /**
   * Drops handle `id` of `kind` (close, release, mdev remove): it leaves the handle table at
   * once (a second close finds nothing), then, under the WQ's lock unless `locked` is false, an
   * attached client stops being counted and a dedicated WQ's file client takes its PASID with
   * it.
   */
  async put(id: number, kind: HandleKind, label: string, locked = true): Promise<Ret> {
    const ctx = this.handles.get(id);
    if (!ctx || ctx.kind !== kind) return err("EINVAL");
    this.handles.delete(id);
    const wq = ctx.wq;
    const detach = async () => {
      if (!ctx.attached) return ok(0);
      if (kind === "file" && wq.mode === "dedicated") await this.device.setPasid(wq.id, null);
      ctx.attached = false;
      wq.attached.delete(ctx);
      wq.clients--;
      return ok(0);
    };
    return locked ? await wq.lock.hold(this.sched, `${label}:wq-lock`, detach) : await detach();
  }
}
