/**
 * spec/wd.ts's commands on the simulated machine (impl/wd/host.ts), its accelerator an sdmdev or
 * a uacce device (the backend): each process is a {@link WdSys} using the wd library
 * ({@link WdQueue} under the asynchronous API); the device is the QM device stepping the
 * process's queue, then the IRQ thread; the operator's commands set the type1 module, the mdev
 * driver binding (sdmdev only: ENODEV on uacce, which has neither) and `vm.max_map_count`, and
 * remove the accelerator (`sdmdev.unregister`, or `uacce_remove`). {@link WdAdapter.observe}
 * reads what the kernel holds for each process: its fd table and device mappings that reach the
 * device, its container's DMA mappings (on uacce, with SVA, the library's record of its shares),
 * pinned pages and `locked_vm`, the ring positions of its queue, and the queue pairs the QM has
 * taken.
 *
 * Which queue a process holds is the library's ({@link WdQueue.of}).
 *
 * @module
 */
import type { Ret } from "../../spec/types.ts";
import type {
  WdAccelerator,
  WdBackend,
  WdCommand,
  WdProcess,
  WdQueueLife,
  WdState,
} from "../../spec/wd.ts";
import { COMPLETE_ALL, Platform } from "../../impl/platform.ts";
import type { Quirks } from "../../impl/quirks.ts";
import type { Sched } from "../../impl/sched.ts";
import { cqePhase, type QpRings, RingPos, sqeTag } from "../../impl/device/qm_device.ts";
import { WdAsyncQueue } from "../../impl/wd/async.ts";
import { bootWdHost, bootWdUacceHost, type WdKernel } from "../../impl/wd/host.ts";
import { WdSys } from "../../impl/wd/sys.ts";
import { UacceFd } from "../../impl/uacce/uacce.ts";
import { mdevUuid, WdQueue } from "../../impl/wd/wd.ts";
import type { Implementation, Outcome } from "../machine.ts";

/** How the machine is sized. */
export interface WdAdapterOptions {
  /** The accelerator's device class. */
  readonly backend: WdBackend;
  /** Queue depth (SQ = CQ). */
  readonly depth: number;
  /** The processes. */
  readonly pids: readonly number[];
  /** The accelerator's queue pairs. */
  readonly queuePairs: number;
}

/** One process: its system calls, the callbacks its async requests ran. */
interface Proc {
  sys?: WdSys;
  callbacks: number;
  /** Its threads in `wd_request_queue`: until one returns, the others have no queue pointer. */
  requesting: number;
}

/** Whether the queue `sys`'s process holds is a uacce queue its device's removal made ZOMBIE. */
function zombie(sys: WdSys): boolean {
  return sys.fds.numbers().some((fd) => {
    const f = sys.file(fd, UacceFd);
    return f !== undefined && f.core.files.get(f.id)?.q.state === "ZOMBIE";
  });
}

/** Completions the device wrote that the driver has not read (the phase rule from the head). */
function visibleCompletions(rings: QpRings): number {
  const pos = new RingPos(rings.cqHead.depth, rings.cqHead.phase);
  pos.index = rings.cqHead.index;
  let n = 0;
  while (n < pos.depth && cqePhase(rings.cqe(pos.index)) === pos.phase) {
    n++;
    pos.step();
  }
  return n;
}

function ok(v: unknown): Ret {
  return { ok: v };
}

/** The wd machine's implementation. */
export class WdAdapter implements Implementation<WdState, WdCommand> {
  readonly #platform: Platform;
  readonly #options: WdAdapterOptions;
  readonly #procs = new Map<number, Proc>();
  /** Pids whose process exited holding a queue, in the order they first did. */
  readonly #exited: number[] = [];
  /** The asynchronous API over each queue (all of a queue's traffic goes through it). */
  readonly #asyncs = new WeakMap<WdQueue, WdAsyncQueue>();
  #booting: Promise<WdKernel> | undefined;
  #host: WdKernel | undefined;

  /** A fresh machine with `quirks` under `sched`; it boots at the first command. */
  constructor(quirks: Quirks, sched: Sched, options: WdAdapterOptions) {
    this.#platform = new Platform({ sched, quirks });
    this.#options = options;
    for (const pid of options.pids) this.#procs.set(pid, { callbacks: 0, requesting: 0 });
  }

  /** Executes one command. */
  exec(cmd: WdCommand): Promise<Outcome> {
    return this.#platform.kernel.traced(async () => {
      const host = await this.#boot();
      const vfio = host.backend === "sdmdev" ? host : undefined;
      switch (cmd.op) {
        case "wd.loadType1": {
          const r = vfio ? vfio.vfio.loadType1(cmd.loaded === true) : "ENODEV";
          return r === undefined ? ok(0) : { err: r };
        }
        case "wd.hostDriver":
          if (!vfio) return { err: "ENODEV" };
          vfio.mdev.hostDriver = cmd.bound === true;
          return ok(0);
        case "wd.maxMapCount": {
          const r = await host.platform.kernel.sysfs.write(
            "/proc/sys/vm/max_map_count",
            String(cmd.maps),
          );
          return r === undefined ? ok(0) : { err: r };
        }
        case "wd.remove":
          return await this.#remove(host);
      }
      const proc = this.#procs.get(cmd.by);
      if (!proc?.sys) return { err: "EINVAL" };
      return await this.#processOp(host, proc, proc.sys, cmd);
    });
  }

  /** The asynchronous API over the queue `sys`'s process holds, if any. */
  #async(sys: WdSys): WdAsyncQueue | undefined {
    const q = WdQueue.of(sys);
    if (!q) return undefined;
    let a = this.#asyncs.get(q);
    if (!a) this.#asyncs.set(q, a = new WdAsyncQueue(q));
    return a;
  }

  async #processOp(host: WdKernel, proc: Proc, sys: WdSys, cmd: WdCommand): Promise<Ret> {
    if (cmd.op === "wd.requestQueue") {
      proc.requesting++;
      try {
        const q = await WdQueue.request(sys);
        return typeof q === "string" ? { err: q } : ok(0);
      } finally {
        proc.requesting--;
      }
    }
    // A call on the queue passes the pointer wd_request_queue returns: a thread calling while
    // another is in the request waits for it, as it would for the pointer.
    if (proc.requesting > 0) {
      await this.#platform.kernel.sched.waitUntil("wd.queue-pointer", () => proc.requesting === 0);
    }
    if (cmd.op === "wd.exit") {
      const held = WdQueue.of(sys) !== undefined;
      await sys.exit();
      proc.sys = new WdSys(host, cmd.by);
      proc.callbacks = 0;
      if (held && !this.#exited.includes(cmd.by)) this.#exited.push(cmd.by);
      return ok(0);
    }
    const q = this.#async(sys);
    if (!q) return { err: "EINVAL" };
    const value = (r: number | { readonly seq: number } | string): Ret =>
      typeof r === "string" ? { err: r as never } : ok(typeof r === "number" ? r : r.seq);
    switch (cmd.op) {
      case "wd.releaseQueue": {
        const r = await q.release();
        return typeof r === "string" ? { err: r } : ok(r.length);
      }
      case "wd.send":
        return value(await q.send());
      case "wd.submit":
        return value(await q.submit(() => proc.callbacks++));
      case "wd.recv":
        return value(await q.recv());
      case "wd.recvSync":
        return value(await q.recvSync(cmd.timeoutMs));
      case "wd.poll":
        if (!Number.isSafeInteger(cmd.max) || cmd.max < 1) return { err: "EINVAL" };
        {
          const got = await q.poll(cmd.max);
          return typeof got === "string" ? { err: got } : ok(got);
        }
      case "wd.flush":
        q.queue.flush();
        return ok(0);
      case "wd.memShare": {
        const r = await q.queue.memShare(cmd.vaddr, cmd.size);
        return r === undefined ? ok(0) : { err: r };
      }
      case "wd.memUnshare": {
        const r = await q.queue.memUnshare(cmd.vaddr);
        return r === undefined ? ok(0) : { err: r };
      }
      case "wd.device":
        return await this.#deviceStep(host, q.queue);
    }
    return { err: "EINVAL" };
  }

  /**
   * The accelerator's PCI remove: sdmdev's unregister (the open mdevs it still waits for), or
   * uacce's remove (none waited for); ENODEV for one removed or removing already.
   */
  async #remove(host: WdKernel): Promise<Ret> {
    if (host.backend === "sdmdev") {
      const sd = host.sdmdev.devices.get(host.fn.id);
      const r = sd ? await host.sdmdev.unregister(sd) : "ENODEV";
      return typeof r === "string" ? { err: r } : ok(r);
    }
    const u = host.uacce.lookup(host.fn.id);
    const r = u ? await host.uacce.remove(u) : "ENODEV";
    return r === undefined ? ok(0) : { err: r };
  }

  /** The accelerator's life as the kernel has it (present until the machine boots). */
  #accelerator(): WdAccelerator {
    const host = this.#host;
    if (!host) return "present";
    if (host.backend === "uacce") return host.uacce.lookup(host.fn.id) ? "present" : "removed";
    if (!host.sdmdev.devices.has(host.fn.id)) return "removed";
    return host.mdev.parents.get(host.fn.id)?.unregistering ? "removing" : "present";
  }

  /** The device takes the next SQE of the queue, then the interrupt's IRQ thread pass. */
  async #deviceStep(host: WdKernel, q: WdQueue): Promise<Ret> {
    const driver = q.driver;
    if (!driver) return { err: "EINVAL" };
    const r = await host.fn.device.step(driver.qn);
    if (typeof r === "string") return await q.settle({ err: r });
    const seq = sqeTag(driver.rings.sqe(r.sqIndex));
    await host.fn.qm.irqThread();
    return await q.settle(ok(seq));
  }

  /**
   * The machine, booted by the first command; a command racing that boot waits for it through
   * the scheduler (a plain await would hide the wait from it).
   */
  async #boot(): Promise<WdKernel> {
    if (this.#host) return this.#host;
    if (this.#booting) {
      await this.#platform.kernel.sched.waitUntil("wd.boot", () => this.#host !== undefined);
      return this.#host!;
    }
    const options = {
      config: {
        qpNum: this.#options.queuePairs,
        sqDepth: this.#options.depth,
        cqDepth: this.#options.depth,
      },
      engine: COMPLETE_ALL,
      pids: this.#options.pids,
    };
    this.#booting = this.#options.backend === "sdmdev"
      ? bootWdHost(this.#platform, options)
      : Promise.resolve(bootWdUacceHost(this.#platform, options));
    const host = await this.#booting;
    for (const [pid, proc] of this.#procs) proc.sys = new WdSys(host, pid);
    return this.#host = host;
  }

  /** The abstraction function. */
  observe(): WdState {
    const host = this.#host;
    const k = this.#platform.kernel;
    const vfio = host?.backend === "sdmdev" ? host : undefined;
    const procs = this.#options.pids.map((pid): WdProcess => {
      const proc = this.#procs.get(pid)!;
      const container = vfio?.vfio.containers.get(pid);
      const held = proc.sys && WdQueue.of(proc.sys);
      const shares = vfio
        ? (container?.iommu?.dmas ?? []).map((d) => ({ vaddr: d.vaddr, size: d.size }))
        : held?.shares ?? [];
      const mm = proc.sys?.mm;
      return {
        pid,
        queue: this.#queueLife(proc),
        fds: proc.sys?.fds.size ?? 0,
        maps: proc.sys?.reaching ?? 0,
        shares,
        pinned: mm?.pinned().length ?? 0,
        lockedVm: mm?.lockedVm ?? 0,
        callbacks: proc.callbacks,
      };
    });
    const qm = host?.fn.qm;
    return {
      backend: this.#options.backend,
      depth: this.#options.depth,
      procs,
      mdevs: vfio?.mdev.devices.size ?? 0,
      qps: qm ? qm.config.qpNum - qm.freeQps : 0,
      queuePairs: this.#options.queuePairs,
      orphans: this.#orphans(),
      type1: vfio?.vfio.type1Loaded ?? true,
      hostDriver: vfio?.mdev.hostDriver ?? false,
      maxMapCount: k.maxMapCount,
      accelerator: this.#accelerator(),
    };
  }

  /**
   * The pids that exited and whose mdev (the library names it after its process) still exists
   * while the process holds no queue, in the order they exited.
   */
  #orphans(): number[] {
    const host = this.#host;
    if (host?.backend !== "sdmdev") return [];
    return this.#exited.filter((pid) => {
      const sys = this.#procs.get(pid)?.sys;
      return host.mdev.devices.has(mdevUuid(pid)) && !(sys && WdQueue.of(sys));
    });
  }

  #queueLife(proc: Proc): WdQueueLife {
    const q = proc.sys && this.#async(proc.sys);
    if (!q) return { state: "none" };
    const received = q.queue.received;
    if (zombie(proc.sys!)) {
      return { state: "zombie", outstanding: q.queue.nextSeq - received, awaiting: q.awaiting() };
    }
    const rings = q.queue.driver?.rings;
    return {
      state: "open",
      sent: rings?.submitted ?? 0,
      done: received + (rings ? visibleCompletions(rings) : 0),
      received,
      awaiting: q.awaiting(),
    };
  }
}
