/**
 * A minimal DMA master standing in for the accelerator until the QM device exists: it issues
 * single accesses for a group through the IOMMU, in two halves (translate, then access) with
 * a preemption point between, and honours the quiesce of an sdmdev queue: while a group is
 * quiesced no new access starts, and quiesce waits for the ones in flight. A device also
 * holds off while its group is changing domain (its group mutex is held), as drivers quiesce
 * a device around an attach.
 *
 * @module
 */
import type { Ret } from "../../spec/types.ts";
import type { Kernel } from "../kernel.ts";
import type { IommuCore, IommuGroup } from "../iommu/core.ts";
import type { DeviceHooks } from "../vfio/type1.ts";

/** The device behind every group, as far as DMA goes. */
export class DmaMaster implements DeviceHooks {
  #k: Kernel;
  #core: IommuCore;
  #stopped = new Set<IommuGroup>();
  #inflight = new Map<IommuGroup, number>();

  /** A DMA master using `core` for translation. */
  constructor(kernel: Kernel, core: IommuCore) {
    this.#k = kernel;
    this.#core = core;
  }

  /** One device access at `iova` on behalf of `group`: what it reached, or EFAULT. */
  async dma(group: IommuGroup, iova: number): Promise<Ret> {
    const { sched } = this.#k;
    const translating = group.parent ?? group;
    const ready = () => !this.#stopped.has(group) && !translating.mutex.held;
    await sched.waitUntil("dma:issue", ready);
    const lease = this.#core.translate(group, iova);
    if (!lease) return { err: "EFAULT" };
    this.#inflight.set(group, (this.#inflight.get(group) ?? 0) + 1);
    await sched.point("dma:access");
    this.#inflight.set(group, this.#inflight.get(group)! - 1);
    const owner = this.#core.access(lease);
    if (owner === null) return { err: "EFAULT" };
    return owner.kind === "user"
      ? { ok: { kind: "user", mm: owner.mm, vaddr: owner.vaddr + lease.offset } }
      : { ok: { kind: "kernel", buffer: owner.buffer, offset: owner.offset + lease.offset } };
  }

  /** Stops new accesses for `group` and waits for those in flight. */
  async quiesce(group: IommuGroup): Promise<void> {
    this.#stopped.add(group);
    const idle = () => !this.#inflight.get(group);
    if (!idle()) await this.#k.sched.waitUntil("dma:quiesce", idle);
  }

  /** Lets `group` issue accesses again. */
  resume(group: IommuGroup): void {
    this.#stopped.delete(group);
  }
}
