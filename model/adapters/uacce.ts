/**
 * The uacce machine's adapter: executes the spec's `uacce.*` commands against the simulated
 * uacce core (impl/uacce/) and the QM driver plugged into it (impl/hisi/qm_uacce.ts) on one
 * {@link Platform}, and maps them back to the spec's {@link UacceState} with
 * {@link UacceAdapter.observe}.
 *
 * `uacce.register` is the PCI probe of a QM function (its QM driver and device in their own
 * IOMMU group, rings of depth {@link UACCE_QM_DEPTH}) and its `uacce_register`; whether the
 * parent's IOMMU can do SVA is the topology's ({@link UACCE_SVA_PARENTS}). `uacce.remove` is
 * the parent's PCI remove: `uacce_remove`, then the QM function is gone (a later register probes
 * it afresh). User actions name the file; `uacce.access` is the process touching its mapping.
 *
 * The abstraction function reports every resource: a registered device's taken queue pairs
 * come from the QM's own allocator (which file's queue holds each, whether the hardware runs
 * it, whether its DMA memory is still allocated); a queue pair a removed QM function still
 * holds, or a DMA buffer of any QM function that neither its probe nor a queue accounts for, is
 * listed in `leaks`.
 *
 * @module
 */
import { match } from "ts-pattern";
import {
  UACCE_MAX_QPS,
  UACCE_SVA_PARENTS,
  type UacceCommand,
  type UacceDevice as SpecDevice,
  type UacceFile as SpecFile,
  type UacceQp,
  type UacceQueueLife,
  type UacceState,
} from "../../spec/uacce.ts";
import type { Ret } from "../../spec/types.ts";
import { qmUacceInterface } from "../../impl/hisi/qm_uacce.ts";
import type { HisiQp } from "../../impl/hisi/qm.ts";
import type { Kernel, Outcome } from "../../impl/kernel.ts";
import { COMPLETE_ALL, type Platform, type QmFunction } from "../../impl/platform.ts";
import { SvaPasids } from "../../impl/sdmdev/sva.ts";
import type { UacceQueue } from "../../impl/uacce/queue.ts";
import { UacceCore } from "../../impl/uacce/uacce.ts";
import { done, isInt, value } from "./rets.ts";

/** SQ and CQ depth of the QMs uacce parents run on: their SQ+CQ fill the two DUS pages. */
export const UACCE_QM_DEPTH = 32;

/** A probed QM function and the DMA buffers its probe allocated (`group:iova`). */
interface Probe {
  readonly fn: QmFunction;
  readonly boot: ReadonlySet<string>;
}

/** The simulated uacce core + QM driver, executing spec-shaped commands. */
export class UacceAdapter {
  /** The machine. */
  readonly platform: Platform;
  /** Shared kernel context. */
  readonly kernel: Kernel;
  /** The SVA layer reduced to its binds (one PASID per process; no device walks it here). */
  readonly sva: SvaPasids = new SvaPasids();
  /** The uacce class. */
  readonly core: UacceCore;
  /** The latest probe of each parent (registered or removed since). */
  readonly #probes = new Map<number, Probe>();
  /** Probes replaced by a later one, kept so what they still hold shows. */
  readonly #earlier: Probe[] = [];

  /** An empty machine: no parent probed. */
  constructor(platform: Platform) {
    this.platform = platform;
    this.kernel = platform.kernel;
    this.core = new UacceCore(this.kernel, this.sva);
  }

  /** Executes one command; its events are those its task logged meanwhile. */
  exec(cmd: UacceCommand): Promise<Outcome> {
    return this.kernel.traced(() => this.#dispatch(cmd));
  }

  #dispatch(cmd: UacceCommand): Promise<Ret> | Ret {
    const { core } = this;
    return match(cmd)
      .with({ op: "uacce.register" }, (c) => this.#register(c.parent, c.qpNum, c.sva))
      .with({ op: "uacce.remove" }, async (c) => {
        const u = core.lookup(c.parent);
        if (!u) return { err: "ENODEV" } as const;
        return done(await core.remove(u));
      })
      .with({ op: "uacce.open" }, async (c) => {
        if (!isInt(c.by, 1)) return { err: "EINVAL" } as const;
        return value(await core.open(c.parent, c.by));
      })
      .with({ op: "uacce.startQ" }, (c) => core.ioctl(c.file, "startQ"))
      .with({ op: "uacce.putQ" }, (c) => core.ioctl(c.file, "putQ"))
      .with({ op: "uacce.mmap" }, async (c) => value(await core.mmap(c.file, c.pgoff, c.size)))
      .with({ op: "uacce.munmap" }, async (c) => done(await core.munmap(c.file, c.map)))
      .with({ op: "uacce.access" }, (c) => done(core.access(c.file, c.map)))
      .with({ op: "uacce.close" }, async (c) => done(await core.close(c.file)))
      .with({ op: "uacce.readAttrs" }, (c) => {
        const u = core.lookup(c.parent);
        return u ? { ok: core.attrs(u) } : { err: "ENODEV" } as const;
      })
      .exhaustive();
  }

  /** The PCI probe of `parent` (`hisi_zip_probe` → `hisi_qm_init`, `qm_alloc_uacce`). */
  #register(parent: number, qpNum: number, sva: boolean): Ret {
    if (!isInt(parent, 1) || !isInt(qpNum, 1, UACCE_MAX_QPS)) return { err: "EINVAL" };
    if (this.core.lookup(parent)) return { err: "EEXIST" };
    const config = { qpNum, sqDepth: UACCE_QM_DEPTH, cqDepth: UACCE_QM_DEPTH };
    const earlier = this.#probes.get(parent);
    if (earlier) this.#earlier.push(earlier);
    const before = this.#liveBuffers();
    const fn = this.platform.probeQm(parent, config, COMPLETE_ALL);
    const boot = new Set([...this.#liveBuffers()].filter((b) => !before.has(b)));
    this.#probes.set(parent, { fn, boot });
    const iface = qmUacceInterface(this.kernel, this.platform.iommu, fn, sva);
    const u = this.core.register(parent, iface, UACCE_SVA_PARENTS.includes(parent));
    return typeof u === "string" ? { err: u } : { ok: { dev: u.dev, flags: u.flags } };
  }

  /** Every live kernel DMA buffer, as `group:iova`. */
  #liveBuffers(): Set<string> {
    const out = new Set<string>();
    for (const b of this.platform.iommu.buffers.values()) out.add(`${b.group}:${b.iova}`);
    return out;
  }

  /**
   * Live DMA buffers neither a probe allocated nor a queue pair holds as its DMA memory, by
   * any probe of any parent.
   */
  #strayBuffers(): string[] {
    const accounted = new Set<string>();
    for (const probe of [...this.#probes.values(), ...this.#earlier]) {
      probe.boot.forEach((b) => accounted.add(b));
      for (const qp of probe.fn.qm.qps) {
        if (qp?.qdma) accounted.add(`${probe.fn.group.id}:${qp.qdma.iova}`);
      }
    }
    return [...this.#liveBuffers()].filter((b) => !accounted.has(b));
  }

  /** Every uacce queue the core knows of (open files and the devices' lists), by queue pair. */
  #queuesByQp(): Map<HisiQp, UacceQueue> {
    const out = new Map<HisiQp, UacceQueue>();
    const add = (q: UacceQueue) => {
      if (q.priv) out.set(q.priv as HisiQp, q);
    };
    for (const f of this.core.files.values()) add(f.q);
    for (const u of this.core.xa.values()) u.queues.forEach(add);
    return out;
  }

  /**
   * The abstraction function: registered devices with their QM's taken queue pairs, the open
   * files with their queues and mappings, the PASIDs, and what leaked (see the module comment).
   */
  observe(): UacceState {
    const byQp = this.#queuesByQp();
    const fileOf = new Map<UacceQueue, number>();
    for (const f of this.core.files.values()) fileOf.set(f.q, f.id);
    const devices = new Map<number, SpecDevice>();
    const leaks: string[] = [];
    for (const [parent, probe] of this.#probes) {
      const u = this.core.lookup(parent);
      const qps = new Map<number, UacceQp>();
      for (const qp of probe.fn.qm.qps) {
        if (qp === null) continue;
        const q = byQp.get(qp);
        const file = q ? fileOf.get(q) ?? 0 : 0;
        qps.set(qp.qn, { file, running: qp.started, dus: q?.uacce.ops?.hw(q).dus ?? false });
      }
      if (!u) {
        for (const qn of qps.keys()) leaks.push(`parent ${parent} is removed: qp ${qn} taken`);
        continue;
      }
      devices.set(parent, {
        dev: u.dev,
        parent,
        flags: u.flags,
        qpNum: probe.fn.qm.config.qpNum,
        available: u.ops!.getAvailableInstances(),
        qps,
      });
    }
    for (const probe of this.#earlier) {
      const taken = probe.fn.qm.qps.filter((qp) => qp !== null).length;
      if (taken > 0) leaks.push(`an earlier probe of parent ${probe.fn.id}: ${taken} qps taken`);
    }
    for (const b of this.#strayBuffers()) leaks.push(`DMA buffer ${b} (group:iova) no one holds`);
    const files = new Map<number, SpecFile>();
    for (const f of this.core.files.values()) {
      const q = f.q;
      files.set(f.id, {
        file: f.id,
        parent: q.parent,
        dev: q.uacce.dev,
        by: q.by,
        pasid: q.pasid,
        fd: f.fd,
        maps: f.vmas.map(({ id, region, size, zapped }) => ({ id, region, size, zapped })),
        queue: lifeOf(q),
      });
    }
    return {
      svaParents: UACCE_SVA_PARENTS,
      devices,
      files,
      pasids: new Map(this.sva.mms),
      leaks,
      nextDev: this.core.nextDev,
      nextFile: this.core.nextFile,
    };
  }
}

/** The spec's lifecycle of a queue: its state, and the queue pair it holds while it holds one. */
function lifeOf(q: UacceQueue): UacceQueueLife {
  // A queue that gave its queue pair back without being stopped is a state the spec has not:
  // it shows as such.
  if (!q.held) return { state: q.state, held: false } as UacceQueueLife;
  const qn = (q.priv as HisiQp).qn;
  return q.state === "ZOMBIE" ? { state: "ZOMBIE", held: true, qn } : { state: q.state, qn };
}
