/**
 * The stack view's adapter: one {@link Platform} with the QM functions of `spec/stack.ts`
 * probed (device, QM driver, ZIP crypto, each group owned by the kernel driver), the VFIO
 * containers and type1 IOMMU of {@link Type1Adapter} on the same IOMMU core, and the mdev
 * core and sdmdev of {@link SdmdevAdapter}, whose mdev groups are IOMMU groups there. A VFIO
 * device fd of an mdev group opens and releases its sdmdev.
 *
 * `stack.send` and `stack.recv` are the seed's user QM driver ({@link HisiQmQueue},
 * `hisi_qm_udrv.c`) of the queue's opener, working on what its process mapped: the ring
 * through the ring mapping's backing, the doorbells through the MMIO page's. `send` writes
 * one SQE (its first eight bytes name the IOVA to read) and rings the SQ doorbell; `recv`
 * takes the CQE at the head (its phase the expected one) and rings the CQ doorbell. One
 * driver per start of a queue (its cursors are the process's), made at the first send or
 * recv. A process's threads do not unmap a ring or doorbell page while one of them works
 * through it (a store through an unmapped page would kill the process, which this view does
 * not model): its sends, receives and munmaps take turns. `stack.deviceStep` is the QM
 * device executing the queue's oldest SQE with an engine that reads one byte at that IOVA
 * through the IOMMU (the ring fetch goes through it too), then the IRQ thread's pass; on
 * function 3 the read is tagged with the queue's PASID and walks its process's page table.
 * `sva.bind` and `sva.unbind` are the container's VFIO_IOMMU_BIND and UNBIND on the
 * platform's iommu-sva layer, which also gives BIND_PASID its queue bonds. `stack.exit` tears
 * a process down as `do_exit` does, its mm's users first.
 *
 * @module
 */
import {
  STACK_FUNCTIONS,
  STACK_PARENT,
  STACK_PROCESSES,
  STACK_QP_NUM,
  STACK_SQ_DEPTH,
  type StackCommand,
  type StackCompletion,
  type StackSdmdevCommand,
  type StackState,
  type TfmQpBuffers,
} from "../../spec/stack.ts";
import type { Errno, Ret } from "../../spec/types.ts";
import {
  cqeSqHead,
  QM_SQE_SIZE,
  type QmEngine,
  type QmMemory,
  type QmMmio,
  type QpRings,
  sqeStatus,
} from "../../impl/device/qm_device.ts";
import type { HisiQp } from "../../impl/hisi/qm.ts";
import { type Kernel, Mutex, type Outcome } from "../../impl/kernel.ts";
import { Platform, type QmFunction } from "../../impl/platform.ts";
import { HisiQmQueue } from "../../impl/wd/hisi_qm_udrv.ts";
import type { Quirks } from "../../impl/quirks.ts";
import type { Sched } from "../../impl/sched.ts";
import { dupMmap } from "../../impl/sdmdev/fops.ts";
import { SdmdevQueue } from "../../impl/sdmdev/queue.ts";
import { mdevVfioDevices } from "../../impl/sdmdev/sdmdev.ts";
import { sdmdevSvaLayer } from "../../impl/sdmdev/sva.ts";
import type { SvaMm, SvaState } from "../../spec/sva.ts";
import { observeIoasid } from "./ioasid.ts";
import { Type1Adapter } from "./type1.ts";
import { SdmdevAdapter } from "./sdmdev.ts";

/** Where in an SQE the IOVA a stack request reads is (a little-endian u64). */
const SQE_IOVA = 0;

function readIova(sqe: Uint8Array): number {
  const v = new DataView(sqe.buffer, sqe.byteOffset + SQE_IOVA, 8);
  return v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
}

/** The device's work for a stack request: one byte read at the SQE's IOVA (status 1 on a fault). */
const READ_PROBE: QmEngine = {
  execute: (sqe, port) => port.dma.read(readIova(sqe), 1) instanceof Uint8Array ? 0 : 1,
};

/** The whole stack on one platform, executing the stack spec's commands. */
export class StackAdapter {
  /** The machine. */
  readonly platform: Platform;
  /** The QM functions, by id. */
  readonly functions: ReadonlyMap<number, QmFunction>;
  /** VFIO containers and type1 on the platform's IOMMU. */
  readonly system: Type1Adapter;
  /** mdev core and sdmdev on the same platform. */
  readonly sdmdev: SdmdevAdapter;
  /** The user driver of each queue start, by the QM's rings of that start. */
  readonly #drivers = new WeakMap<QpRings, HisiQmQueue>();
  /** The IOVA each request in flight reads, by tag (what the process keeps of its requests). */
  readonly #sent = new Map<number, number>();
  /** Each process's turns at its rings and mappings (see the module comment). */
  readonly #turns = new Map<number, Mutex>();
  #tags = 0;

  /** Boots the platform and probes the QM functions (`sdmdev.register` is the prelude's). */
  constructor(quirks: Quirks, sched?: Sched) {
    this.platform = new Platform({ sched, quirks });
    const config = { qpNum: STACK_QP_NUM, sqDepth: STACK_SQ_DEPTH, cqDepth: STACK_SQ_DEPTH };
    const probe = (f: { parent: number; sva: boolean }) =>
      this.platform.probeQm(f.parent, config, READ_PROBE, f.sva);
    this.functions = new Map(STACK_FUNCTIONS.map((f) => [f.parent, probe(f)]));
    this.sdmdev = new SdmdevAdapter(this.platform, { iommuGroups: true });
    const core = this.sdmdev.mdev;
    this.system = new Type1Adapter({
      platform: this.platform,
      topology: {
        pciGroups: [2],
        mdevGroups: [],
        containers: STACK_PROCESSES,
      },
      devices: mdevVfioDevices(core, this.sdmdev.sdmdev),
    });
    const { containers } = this.system.vfio;
    this.sdmdev.sdmdev.sva = sdmdevSvaLayer(
      this.platform.sva,
      this.platform.iommu,
      (by) => containers.get(by)?.mm,
    );
  }

  /** Shared kernel context. */
  get kernel(): Kernel {
    return this.platform.kernel;
  }

  /** Executes one command; its events are those its task logged meanwhile. */
  exec(cmd: StackCommand): Promise<Outcome> {
    if (cmd.op.startsWith("type1.")) return this.system.exec(cmd as never);
    if (cmd.op === "sdmdev.register") {
      return this.kernel.traced(async () => {
        const fn = this.functions.get(cmd.parent);
        if (!fn) return { err: "ENODEV" };
        const sva = STACK_FUNCTIONS.find((f) => f.parent === cmd.parent)!.sva;
        if (cmd.qpNum !== STACK_QP_NUM || cmd.sva !== sva) return { err: "EINVAL" };
        const r = await this.sdmdev.registerFunction(fn, cmd.name, cmd.sva);
        return r === undefined ? { ok: 0 } : { err: r };
      });
    }
    if (
      (cmd.op === "sdmdev.tfmInit" || cmd.op === "sdmdev.tfmExit") && cmd.parent !== STACK_PARENT
    ) {
      return this.kernel.traced(() => ({ err: "ENODEV" }));
    }
    if (cmd.op === "stack.send") {
      return this.kernel.traced(() =>
        this.#asProcess(cmd.by, "user.send", () => this.#send(cmd.uuid, cmd.by, cmd.iova))
      );
    }
    if (cmd.op === "stack.recv") {
      return this.kernel.traced(() =>
        this.#asProcess(cmd.by, "user.recv", () => this.#recv(cmd.uuid, cmd.by))
      );
    }
    if (cmd.op === "sdmdev.munmap") {
      const { uuid, by, map } = cmd;
      return this.kernel.traced(() =>
        this.#asProcess(by, "user.munmap", async (): Promise<Ret> => {
          const r = await this.sdmdev.sdmdev.munmap(uuid, by, map);
          return r === undefined ? { ok: 0 } : { err: r };
        })
      );
    }
    if (cmd.op === "stack.deviceStep") {
      return this.kernel.traced(() => this.#deviceStep(cmd.parent, cmd.qn));
    }
    if (cmd.op === "stack.exit") return this.kernel.traced(() => this.#exit(cmd.by));
    if (cmd.op === "stack.exitMm") return this.kernel.traced(() => this.#exitMm(cmd.by));
    if (cmd.op === "stack.fork") {
      return this.kernel.traced(() => this.#fork(cmd.by, cmd.child));
    }
    if (cmd.op === "sva.bind" || cmd.op === "sva.unbind") {
      const c = this.system.vfio.containers.get(cmd.container);
      return this.kernel.traced(async (): Promise<Ret> => {
        if (!c) return { err: "EINVAL" };
        const r = cmd.op === "sva.bind" ? await c.bindProcess() : await c.unbindProcess();
        return typeof r === "string" ? { err: r } : { ok: r ?? 0 };
      });
    }
    return this.sdmdev.exec(cmd as StackSdmdevCommand);
  }

  /** Runs `body` in process `by`'s turn. */
  #asProcess<T>(by: number, label: string, body: () => Promise<T>): Promise<T> {
    let turn = this.#turns.get(by);
    if (!turn) this.#turns.set(by, turn = new Mutex());
    return turn.hold(this.kernel.sched, `${label}:turn`, body);
  }

  /** The started queue pair of an sdmdev queue, if it runs. */
  #runningQp(q: SdmdevQueue): HisiQp | undefined {
    const qp = this.#functionOf(q).qm.qps[this.#vendorOf(q).hw(q).qn];
    return qp?.rings ? qp : undefined;
  }

  #functionOf(q: SdmdevQueue): QmFunction {
    return this.functions.get(q.mdev.parent.id)!;
  }

  #vendorOf(q: SdmdevQueue) {
    return this.sdmdev.sdmdev.devices.get(q.mdev.parent.id)!.ops;
  }

  /**
   * The user driver process `by` runs on queue `uuid`, over its mappings; why it cannot
   * reach the queue's rings otherwise (ENODEV, EINVAL, EFAULT).
   */
  #userDriver(uuid: string, by: number): HisiQmQueue | Errno {
    const found = this.sdmdev.sdmdev.lookup(uuid);
    if (typeof found === "string") return found;
    const q = found[1];
    const qp = this.#runningQp(q);
    if (q.openedBy === null || !qp?.rings) return "EINVAL";
    const { processes } = this.system;
    const child = q.openedBy !== by && processes.all.get(by)?.parent != null &&
      processes.openerOf(by) === q.openedBy;
    if (q.openedBy !== by && !child) return "EINVAL";
    const vmas = child ? q.inherited.get(by) ?? [] : q.vmas;
    const ring = vmas.find((m) => m.region === 1);
    const mmio = vmas.find((m) => m.region === 0);
    if (!ring || !mmio) return "EFAULT";
    let driver = this.#drivers.get(qp.rings);
    if (!driver) {
      const mem = ring.backing as QmMemory;
      driver = new HisiQmQueue(
        this.kernel,
        by,
        qp.qn,
        mem,
        mmio.backing as QmMmio,
        this.#functionOf(q).qm.config,
      );
      this.#drivers.set(qp.rings, driver);
    }
    return driver;
  }

  async #send(uuid: string, by: number, iova: number): Promise<Ret> {
    if (!Number.isSafeInteger(iova) || iova < 0) return { err: "EINVAL" };
    const driver = this.#userDriver(uuid, by);
    if (typeof driver === "string") return { err: driver };
    const sqe = new Uint8Array(QM_SQE_SIZE);
    const v = new DataView(sqe.buffer);
    v.setUint32(SQE_IOVA, iova % 2 ** 32, true);
    v.setUint32(SQE_IOVA + 4, Math.floor(iova / 2 ** 32), true);
    const tag = this.#tags++ & 0xffff;
    const r = await driver.send(tag, true, sqe);
    if (typeof r === "string") return { err: r };
    this.#sent.set(tag, iova);
    return { ok: 0 };
  }

  async #recv(uuid: string, by: number): Promise<Ret> {
    const driver = this.#userDriver(uuid, by);
    if (typeof driver === "string") return { err: driver };
    const c = await driver.recv();
    if (typeof c === "string") return { err: c };
    const iova = this.#sent.get(c.tag) ?? -1;
    this.#sent.delete(c.tag);
    const done: StackCompletion = { iova, status: c.status };
    return { ok: done };
  }

  async #deviceStep(parent: number, qn: number): Promise<Ret> {
    const fn = this.functions.get(parent);
    if (!fn || !Number.isInteger(qn)) return { err: "EINVAL" };
    const { qm, device } = fn;
    // The device runs whatever queue its contexts name, whatever the driver thinks.
    const stepped = await device.step(qn);
    if (typeof stepped === "string") return { err: stepped };
    const rings = qm.qpArray[qn]?.rings;
    const status = rings ? sqeStatus(rings.sqe(stepped.sqIndex)) : 0;
    await qm.irqThread();
    return status === 0 ? { ok: 0 } : { err: "EFAULT" as Errno };
  }

  /** The sdmdev queues of the platform. */
  #queues(): SdmdevQueue[] {
    const out: SdmdevQueue[] = [];
    for (const d of this.sdmdev.mdev.devices.values()) {
      if (d.drvdata instanceof SdmdevQueue) out.push(d.drvdata);
    }
    return out;
  }

  /** fork: the child's memory and files (`Processes.fork`), and dup_mmap's sdmdev part. */
  #fork(by: number, child: number): Ret {
    const r = this.system.processes.fork(by, child);
    if (typeof r === "string") return { err: r };
    for (const q of this.#queues()) dupMmap(this.kernel, q, by, child);
    return { ok: r };
  }

  /** `exit_mm`: the process's mm loses its users, then its sdmdev mappings go. */
  async #exitMm(by: number): Promise<Ret> {
    if (this.system.processes.all.get(by)?.parent != null) {
      for (const q of this.#queues()) q.inherited.delete(by);
      return { ok: 0 };
    }
    const container = this.system.vfio.containers.get(by);
    if (!container) return { err: "EINVAL" };
    await this.#asProcess(by, "exit.mm", async () => {
      this.platform.sva.exitMm(container.mm);
      for (const q of this.#queues()) {
        if (q.openedBy !== by) continue;
        for (const m of [...q.vmas]) await this.sdmdev.sdmdev.munmap(q.mdev.uuid, by, m.id);
      }
    });
    return { ok: 0 };
  }

  /**
   * `do_exit`: {@link StackAdapter.#exitMm}, then its device and group fds (`exit_files`),
   * whose last close waits for the children holding copies of them.
   */
  async #exit(by: number): Promise<Ret> {
    const mm = await this.#exitMm(by);
    if (!("ok" in mm)) return mm;
    const { processes } = this.system;
    const parent = processes.all.get(by)?.parent;
    if (parent != null) processes.exitChild(by);
    const opener = processes.openerOf(parent ?? by);
    const container = this.system.vfio.containers.get(opener)!;
    if (container.mm.users || processes.childrenOf(opener).length > 0) return { ok: 0 };
    await this.#closeFiles(opener);
    return { ok: 0 };
  }

  /** The last close of opener `by`'s files: its device fds, then its group fds. */
  async #closeFiles(by: number): Promise<void> {
    const container = this.system.vfio.containers.get(by)!;
    const held = [...this.system.vfio.groupFds].filter(([, c]) => c === container).map(([g]) => g);
    held.sort((a, b) => a - b);
    for (const group of held) {
      if ([...container.deviceFds].some((g) => g.id === group)) {
        await this.system.exec({ op: "type1.closeDeviceFd", container: by, group });
      }
    }
    for (const group of held) {
      await this.system.exec({ op: "type1.closeGroup", container: by, group });
    }
  }

  /**
   * The abstraction function: every slice, the ring and transform buffers, the SQEs waiting,
   * and the CQEs the device wrote and its CQ doorbell has not released (each names its SQE,
   * which holds the IOVA and the status).
   */
  observe(): StackState {
    const rings = new Map<number, number>();
    const requests = new Map<string, readonly number[]>();
    const completions = new Map<string, readonly StackCompletion[]>();
    for (const d of this.sdmdev.mdev.devices.values()) {
      if (!(d.drvdata instanceof SdmdevQueue)) continue;
      const q = d.drvdata;
      const qp = this.#runningQp(q);
      const ring = this.#vendorOf(q).hw(q).ring;
      if (!qp?.scqe || !qp.rings) continue;
      // A ring is the queue's once its start is done (mid-start it is the QM's alone).
      if (ring !== null && q.started) rings.set(ring, qp.scqe.buffer);
      const hw = this.#functionOf(q).device.observeQueue(qp.qn);
      const waiting: number[] = [];
      for (let p = hw?.sqHead ?? 0; p < (hw?.sqDoorbell ?? 0); p++) {
        waiting.push(readIova(qp.rings.sqe(p % STACK_SQ_DEPTH)));
      }
      if (waiting.length > 0) requests.set(d.uuid, waiting);
      const done: StackCompletion[] = [];
      for (let p = hw?.cqDoorbell ?? 0; p < (hw?.cqTail ?? 0); p++) {
        const sqe = qp.rings.sqe(cqeSqHead(qp.rings.cqe(p % STACK_SQ_DEPTH)));
        done.push({ iova: readIova(sqe), status: sqeStatus(sqe) });
      }
      if (done.length > 0) completions.set(d.uuid, done);
    }
    const tfmBuffers = new Map<number, readonly [TfmQpBuffers, TfmQpBuffers]>();
    for (const [tfm, t] of this.functions.get(STACK_PARENT)!.crypto.tfms) {
      const of = (c: typeof t.comp): TfmQpBuffers => ({
        input: c.input.buffer,
        output: c.output.buffer,
        ring: c.qp.scqe?.buffer ?? -1,
      });
      tfmBuffers.set(tfm, [of(t.comp), of(t.decomp)]);
    }
    return {
      ...this.system.observe(),
      ...this.sdmdev.observe(),
      rings,
      tfmBuffers,
      requests,
      completions,
      ...this.#observeSva(),
    };
  }

  /** The SVA layer: the IOASID space, each bound mm's bonds by function, each container's. */
  #observeSva(): Pick<StackState, "sva" | "svaBinds"> {
    const mms = new Map<number, SvaMm>();
    for (const [mm, io] of this.platform.sva.mms) {
      const bonds = new Map([...io.bonds].map(([g, n]) => [g.id, n] as const));
      mms.set(mm, { pasid: io.pasid, bonds });
    }
    const exited = [...this.system.vfio.containers.values()]
      .filter((c) => !c.mm.users).map((c) => c.mm.id).sort((a, b) => a - b);
    const sva: SvaState = { ioasid: observeIoasid(this.platform.sva.space), mms, exited };
    const svaBinds = new Map<number, readonly number[]>();
    for (const c of this.system.vfio.containers.values()) {
      if (c.svaBound) svaBinds.set(c.id, c.svaBound.map((g) => g.id));
    }
    return { sva, svaBinds };
  }
}
