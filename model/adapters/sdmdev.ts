/**
 * The sdmdev machine's adapter (model side: `impl/` is the system alone): executes the spec's
 * `mdev.*` and `sdmdev.*` commands against the simulated mdev core, sdmdev and QM glue, and
 * maps them back to the spec's {@link SdmdevWorld} with {@link SdmdevAdapter.observe} (the
 * abstraction function).
 *
 * How each command reaches the kernel: `mdev.*` go through a generic unit-pool vendor
 * ({@link unitPoolVendor}); `sdmdev.register` is the PCI probe of a QM function on the
 * {@link Platform} (the real QM driver and device, in their own IOMMU group) and registers
 * its `qm_ops` with sdmdev; user actions name the calling process (`by`), whose fd or
 * mappings hold the device file; `sdmdev.notify` is one request of the queue's user
 * completing: a payload-free SQE written into the queue's ring and its SQ doorbell rung (this
 * view has no user driver: what the user writes through its mapping is written here through
 * the same memory), the device executing it, the IRQ thread's pass (its `event_cb` marks the
 * queue updated), and the CQE reaped; `sdmdev.tfmInit`/`tfmExit` are the ZIP driver's crypto
 * transforms on the same QM.
 *
 * @module
 */
import { match } from "ts-pattern";
import { MAX_MDEV_TYPES, type MdevCommand } from "../../spec/mdev.ts";
import {
  MAX_QP_NUM,
  type QueueLife,
  type SdmdevCommand,
  type SdmdevParent,
  type SdmdevQueue as SpecQueue,
  type SdmdevWorld,
} from "../../spec/sdmdev.ts";
import type { Errno, Ret } from "../../spec/types.ts";
import { DOORBELL_CMD } from "../../spec/qm.ts";
import { type QmOptionalOp, qmSdmdevOps, RingNames } from "../../impl/hisi/qm_sdmdev.ts";
import type { Kernel, Outcome } from "../../impl/kernel.ts";
import { COMPLETE_ALL, type Platform, type QmFunction } from "../../impl/platform.ts";
import { MdevCore, unitPoolVendor } from "../../impl/vfio/mdev.ts";
import { bindPasid, mmap, wait } from "../../impl/sdmdev/fops.ts";
import { type QueueHwView, SdmdevQueue } from "../../impl/sdmdev/queue.ts";
import { SdmdevClass, VfioSdmdev } from "../../impl/sdmdev/sdmdev.ts";
import { SvaPasids } from "../../impl/sdmdev/sva.ts";
import { done, isInt, value } from "./rets.ts";

/** How to build an {@link SdmdevAdapter}. */
export interface SdmdevAdapterOptions {
  /** `qm_ops` callbacks every QM registered leaves out (to reach sdmdev's checks for them). */
  readonly qmOmits?: readonly QmOptionalOp[];
  /** The mdev core makes each mdev's group an IOMMU group of the platform (default: no). */
  readonly iommuGroups?: boolean;
}

/** The SQ+CQ depth of the QMs sdmdev parents run on (the spec's `RING_SIZE`). */
const SDMDEV_QM_DEPTH = 1024;

/**
 * The spec's {@link QueueLife} of a queue: `closed` without a file, `opened` or `started` by
 * whether the hardware runs a ring. A ring that runs after the file was released (quirk
 * `stopQueueNoop`) is a state the spec cannot express: it is observed as `closed` with a
 * `hardware` field the spec never has, so the comparison names it.
 */
function lifeOf(q: SdmdevQueue, hw: QueueHwView): QueueLife {
  if (q.openedBy === null) {
    if (hw.ring === null) return { state: "closed" };
    return { state: "closed", hardware: { ring: hw.ring, pasid: hw.pasid } } as QueueLife;
  }
  const maps = q.vmas.map(({ id, region, size, ring }) => ({ id, region, size, ring }));
  const file = { by: q.openedBy, fd: q.fd, maps };
  if (hw.ring === null) return { state: "opened", ...file };
  return { state: "started", ...file, pasid: hw.pasid ?? 0, ring: hw.ring, updated: hw.updated };
}

/** The simulated mdev core + sdmdev + QM glue, executing spec-shaped commands. */
export class SdmdevAdapter {
  /** The machine. */
  readonly platform: Platform;
  /** Shared kernel context. */
  readonly kernel: Kernel;
  /** The mdev core. */
  readonly mdev: MdevCore;
  /** sdmdev. */
  readonly sdmdev: SdmdevClass;
  /** This view's SVA layer, reduced to its binds (a stack replaces `sdmdev.sva` with its own). */
  readonly sva: SvaPasids;
  /** Ghost names of the rings sdmdev queues started with (the spec's ring ids). */
  readonly rings: RingNames = new RingNames();
  #pfs = new WeakMap<VfioSdmdev, QmFunction>();
  #omit: readonly QmOptionalOp[];
  #tags = 0;

  /** An empty machine: no parent registered. */
  constructor(platform: Platform, options: SdmdevAdapterOptions = {}) {
    this.platform = platform;
    this.kernel = platform.kernel;
    this.mdev = new MdevCore(this.kernel, options.iommuGroups ? platform.iommu : null);
    this.sdmdev = new SdmdevClass(this.kernel, this.mdev);
    this.sva = new SvaPasids(platform.sva.space);
    this.sdmdev.sva = this.sva;
    this.#omit = options.qmOmits ?? [];
  }

  /** Executes one command; its events are those its task logged meanwhile. */
  exec(cmd: MdevCommand | SdmdevCommand): Promise<Outcome> {
    return this.kernel.traced(() => this.#dispatch(cmd));
  }

  /** The QM function behind a live sdmdev parent. */
  #pf(parent: number): [VfioSdmdev, QmFunction] | Errno {
    const sd = this.sdmdev.pdevSdmdev(parent);
    return typeof sd === "string" ? sd : [sd, this.#pfs.get(sd)!];
  }

  #dispatch(cmd: MdevCommand | SdmdevCommand): Promise<Ret> {
    const { mdev, sdmdev } = this;
    return match(cmd)
      .with({ op: "mdev.register" }, async (c) => {
        if (!isInt(c.capacity, 0, 0x10000) || !isInt(c.types, 1, MAX_MDEV_TYPES)) {
          return { err: "EINVAL" } as const;
        }
        return done(await mdev.register(c.parent, unitPoolVendor(c)));
      })
      .with({ op: "mdev.unregister" }, async (c) => value(await mdev.unregister(c.parent, "mdev")))
      .with(
        { op: "mdev.create" },
        async (c) => value(await mdev.create(c.parent, c.type, c.uuid, "mdev")),
      )
      .with({ op: "mdev.remove" }, async (c) => done(await mdev.remove(c.uuid, "mdev")))
      .with({ op: "mdev.open" }, async (c) => done(await mdev.open(c.uuid, "mdev", 0)))
      .with({ op: "mdev.release" }, async (c) => done(await mdev.release(c.uuid, "mdev")))
      .with(
        { op: "mdev.readTypes" },
        (c) => Promise.resolve(value(mdev.readTypes(c.parent, "mdev"))),
      )
      .with({ op: "sdmdev.register" }, (c) => this.#register(c.parent, c.name, c.qpNum, c.sva))
      .with({ op: "sdmdev.unregister" }, async (c) => {
        const pf = this.#pf(c.parent);
        if (typeof pf === "string") return { err: pf };
        const pending = await sdmdev.unregister(pf[0]);
        return value(typeof pending === "string" ? pending : pending + pf[1].crypto.users);
      })
      .with({ op: "sdmdev.create" }, async (c) => value(await sdmdev.create(c.parent, c.uuid)))
      .with({ op: "sdmdev.remove" }, async (c) => done(await mdev.remove(c.uuid, "sdmdev")))
      .with({ op: "sdmdev.open" }, async (c) => {
        if (!isInt(c.by, 1)) return { err: "EINVAL" } as const;
        return done(await mdev.open(c.uuid, "sdmdev", c.by));
      })
      .with({ op: "sdmdev.release" }, async (c) => {
        return done(await sdmdev.close(c.uuid, c.by));
      })
      .with({ op: "sdmdev.mmap" }, async (c) => {
        const r = await sdmdev.fd(c.uuid, c.by);
        return value(typeof r === "string" ? r : mmap(...r, c.pgoff, c.size));
      })
      .with(
        { op: "sdmdev.munmap" },
        async (c) => done(await sdmdev.munmap(c.uuid, c.by, c.map)),
      )
      .with({ op: "sdmdev.wait" }, async (c) => {
        const r = await sdmdev.fd(c.uuid, c.by);
        if (typeof r === "string") return value(r);
        const [sd, q] = r;
        const qn = sd.ops.hw(q).qn;
        // The device's event for the queue arrives at poll `updateAt` (the IRQ thread's event_cb).
        const post = () => this.#pfs.get(sd)!.qm.qps[qn]?.onEvent?.();
        return wait(sd, q, c.timeout, { at: c.updateAt, post });
      })
      .with({ op: "sdmdev.notify" }, async (c) => {
        const sd = sdmdev.kernelParent(c.parent);
        if (!sd) return { err: "ENODEV" } as const;
        const r = await this.#notify(this.#pfs.get(sd)!, c.qn);
        if (!("err" in r)) return r;
        // A request the queue's stop cut short (its release under way) ends as one that came
        // after the release: the parent may have gone with it.
        await sdmdev.settled(c.parent, "sdmdev.notify:list-lock");
        return sdmdev.kernelParent(c.parent) ? r : { err: "ENODEV" } as const;
      })
      .with({ op: "sdmdev.svaBind" }, (c) => Promise.resolve(value(this.sva.bind(c.by))))
      .with({ op: "sdmdev.bindPasid" }, async (c) => {
        const r = await sdmdev.fd(c.uuid, c.by);
        if (typeof r === "string") return value(r);
        return await bindPasid(this.kernel, sdmdev.sva ?? this.sva, sdmdev, r, c.by, c.pasid);
      })
      .with({ op: "sdmdev.readAttrs" }, (c) => Promise.resolve(value(sdmdev.readAttrs(c.parent))))
      .with({ op: "sdmdev.tfmInit" }, async (c) => {
        const pf = this.#pf(c.parent);
        if (typeof pf === "string") return { err: pf };
        const { crypto } = pf[1];
        const r = await crypto.init(c.tfm, "zlib-deflate");
        if (r !== undefined) return { err: r };
        const t = crypto.tfms.get(c.tfm)!;
        return { ok: [t.comp.qp.qn, t.decomp.qp.qn] };
      })
      .with({ op: "sdmdev.tfmExit" }, async (c) => {
        const sd = sdmdev.kernelParent(c.parent);
        if (!sd) return { err: "ENODEV" } as const;
        const r = await this.#pfs.get(sd)!.crypto.exit(c.tfm);
        if (r === undefined) sdmdev.kernelUserGone(sd);
        return done(r);
      })
      .exhaustive();
  }

  /**
   * The QM function's probe (`hisi_qm_init` + `qm_register_sdmdev`). A parent sdmdev has
   * registered already keeps its QM (the register fails with EEXIST); any other is probed
   * afresh.
   */
  async #register(parent: number, name: string, qpNum: number, sva: boolean): Promise<Ret> {
    if (!isInt(qpNum, 1, MAX_QP_NUM) || typeof sva !== "boolean") return { err: "EINVAL" };
    const live = this.sdmdev.devices.has(parent) && this.platform.functions.get(parent);
    const config = { qpNum, sqDepth: SDMDEV_QM_DEPTH, cqDepth: SDMDEV_QM_DEPTH };
    const fn = live || this.platform.probeQm(parent, config, COMPLETE_ALL);
    return done(await this.registerFunction(fn, name, sva));
  }

  /** `qm_register_sdmdev` for a probed QM function: its `qm_ops` registered with sdmdev. */
  registerFunction(fn: QmFunction, name: string, sva: boolean): Promise<Errno | undefined> {
    const vendor = { qm: fn.qm, device: fn.device, crypto: fn.crypto, rings: this.rings };
    const sd = new VfioSdmdev(fn.id, name, sva, qmSdmdevOps(this.kernel, vendor, this.#omit));
    // The QM is known before sdmdev lists the device: a notify racing the probe finds it.
    this.#pfs.set(sd, fn);
    return this.sdmdev.register(sd);
  }

  /**
   * One request of sdmdev queue `qn`'s user, through the real QM (see the module comment):
   * EINVAL unless `qn` is a started mdev queue whose file a process holds (its fd or a
   * mapping: no one else could write the SQE); the device's errno if it could not run it.
   */
  async #notify({ qm, device }: QmFunction, qn: number): Promise<Ret> {
    if (!isInt(qn, 0, qm.qpArray.length - 1)) return { err: "EINVAL" };
    const qp = qm.qpArray[qn];
    if (!qp?.rings || typeof qp.owner !== "object" || qp.rings.full()) return { err: "EINVAL" };
    // A queue whose file nothing holds (an open not yet done, a release under way) runs only
    // for the driver: the spec's queue is not running then, so it has no request to complete.
    const q = this.mdev.devices.get(qp.owner.mdev)?.drvdata;
    if (q instanceof SdmdevQueue && !q.fd && q.vmas.length === 0) return { err: "EINVAL" };
    const rings = qp.rings;
    rings.fill(this.#tags++ & 0xffff);
    qm.qpDoorbell(rings, { qn, cmd: DOORBELL_CMD.SQ, index: rings.sqTail.index, priority: 0 });
    const stepped = await device.step(qn);
    if (typeof stepped === "string") return { err: stepped };
    await qm.irqThread();
    if (qp.rings === rings) {
      for (let c = rings.next(); c !== undefined; c = rings.next()) rings.accept(c.sqSlot);
      qm.qpDoorbell(rings, { qn, cmd: DOORBELL_CMD.CQ, index: rings.cqHead.index, priority: 0 });
    }
    return { ok: 0 };
  }

  /**
   * The abstraction function. `mdev` is the core's own view (units from each vendor's pool);
   * sdmdev parents are the class devices, with the QM's qp owners, the transforms' qps and the
   * parent references; a queue joins the sdmdev state (opener, mappings) with the QM's (qp, ring,
   * PASID, pending update); PASIDs are this view's SVA layer's binds; `nextRing` is the next
   * ghost ring name.
   */
  observe(): SdmdevWorld {
    const parents = new Map<number, SdmdevParent>();
    for (const sd of this.sdmdev.devices.values()) {
      const tfms = new Map<number, readonly [number, number]>();
      for (const [tfm, qns] of this.#pfs.get(sd)?.crypto.tfmQps() ?? []) tfms.set(tfm, qns);
      const pool = sd.ops.pool();
      parents.set(sd.parent, {
        parent: sd.parent,
        name: sd.name,
        sva: sd.sva,
        pool: { qpNum: pool.qpNum, owners: new Map(pool.owners) },
        tfms,
        refs: sd.pdevRefs,
      });
    }
    const queues = new Map<string, SpecQueue>();
    for (const d of this.mdev.devices.values()) {
      const sd = this.sdmdev.devices.get(d.parent.id);
      if (!sd || !(d.drvdata instanceof SdmdevQueue)) continue;
      const q = d.drvdata;
      const hw = sd.ops.hw(q);
      queues.set(d.uuid, { uuid: d.uuid, parent: sd.parent, qn: hw.qn, life: lifeOf(q, hw) });
    }
    return {
      mdev: this.mdev.observe(),
      sdmdev: { parents, queues, pasids: new Map(this.sva.mms), nextRing: this.rings.next },
    };
  }
}
