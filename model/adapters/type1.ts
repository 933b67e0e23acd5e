/**
 * The type1 view's adapter (model side: `impl/` is the system alone): boots a {@link Topology}
 * on a {@link Platform} (its PCI and mdev groups, a container per process, a generic DMA master
 * as the groups' device), executes the spec's `iommu.*`, `type1.*` and `mm.*` commands against
 * the IOMMU core, the VFIO core ({@link Vfio}) and the processes ({@link Processes}), and maps
 * their state back to the spec's shape with {@link Type1Adapter.observe} (the abstraction
 * function).
 *
 * @module
 */
import { match } from "ts-pattern";
import type { Domain, Group, KernelBuffer, Target } from "../../spec/iommu.ts";
import {
  type Command,
  DEFAULT_TOPOLOGY,
  type SystemState,
  type Topology,
} from "../../spec/system.ts";
import type { Container } from "../../spec/type1.ts";
import { PAGE_SIZE, type Ret } from "../../spec/types.ts";
import { DmaMaster } from "../../impl/device/dma_master.ts";
import type { IommuCore, IommuDomain } from "../../impl/iommu/core.ts";
import type { Kernel, Outcome } from "../../impl/kernel.ts";
import { Processes } from "../../impl/mem/processes.ts";
import { Platform } from "../../impl/platform.ts";
import type { Quirks } from "../../impl/quirks.ts";
import type { Sched } from "../../impl/sched.ts";
import { VendorDriver } from "../../impl/vfio/vendor.ts";
import { Vfio, type VfioDevices } from "../../impl/vfio/vfio.ts";
import { done, value } from "./rets.ts";

/** How to build a {@link Type1Adapter}. */
export interface Type1AdapterOptions {
  /** The machine (default: the spec's default topology). */
  readonly topology?: Topology;
  /** The platform to build on (default: a new one with `quirks` and `sched`). */
  readonly platform?: Platform;
  /** Seed defects to switch on (without `platform`). */
  readonly quirks?: Quirks;
  /** The scheduler (without `platform`; default: sequential). */
  readonly sched?: Sched;
  /** Devices behind the groups (default: none does anything on open or release). */
  readonly devices?: VfioDevices;
}

/** The IOMMU and VFIO of a platform, executing spec-shaped commands. */
export class Type1Adapter {
  /** Shared kernel context (scheduler, memory, quirks, event log). */
  readonly kernel: Kernel;
  /** The IOMMU subsystem. */
  readonly iommu: IommuCore;
  /** The device side. */
  readonly device: DmaMaster;
  /** Containers and group files. */
  readonly vfio: Vfio;
  /** The driver of the vendor mdevs, which pins pages. */
  readonly vendor: VendorDriver = new VendorDriver();
  /** The processes: the containers' openers and the children forked from them. */
  readonly processes: Processes;

  /** Boots the machine. */
  constructor(options: Type1AdapterOptions = {}) {
    const topology = options.topology ?? DEFAULT_TOPOLOGY;
    const platform = options.platform ??
      new Platform({ sched: options.sched, quirks: options.quirks });
    this.kernel = platform.kernel;
    this.iommu = platform.iommu;
    for (const g of topology.pciGroups) this.iommu.addGroup(g, "pci", null);
    for (const m of topology.mdevGroups) this.iommu.addGroup(m.group, "mdev", m.parent);
    for (const g of topology.vendorGroups ?? []) this.iommu.addGroup(g, "mdev", null);
    this.device = new DmaMaster(this.kernel, this.iommu);
    this.vfio = new Vfio(
      this.kernel,
      this.iommu,
      this.device,
      topology.containers,
      options.devices,
      platform.sva,
    );
    for (const c of this.vfio.containers.values()) {
      c.mm.memlockPages = topology.memlockPages ?? null;
    }
    this.processes = new Processes(
      this.kernel,
      [...this.vfio.containers.values()].map((c) => c.mm),
    );
  }

  /** Executes one command; its events are those its task logged meanwhile. */
  exec(cmd: Command): Promise<Outcome> {
    return this.kernel.traced(() => this.#dispatch(cmd));
  }

  async #dispatch(cmd: Command): Promise<Ret> {
    const { vfio } = this;
    if (cmd.op.startsWith("type1.")) {
      if (!vfio.containers.has((cmd as { container: number }).container)) return { err: "ENODEV" };
    }
    if ("group" in cmd && !this.iommu.groups.has(cmd.group)) return { err: "ENODEV" };
    // Looked up once: a group that goes meanwhile (its mdev removed) is still this one.
    const found = "group" in cmd ? this.iommu.groups.get(cmd.group) : undefined;
    const group = () => found!;
    const container = () => vfio.containers.get((cmd as { container: number }).container)!;
    return await match(cmd)
      .with({ op: "iommu.share" }, async () => {
        const d = await this.iommu.share(group(), (cmd as { owner: number }).owner);
        return d === "EINVAL" ? { err: d } : { ok: d.id };
      })
      .with({ op: "iommu.unshare" }, async () => {
        const d = await this.iommu.unshare(group(), (cmd as { owner: number }).owner);
        return d === "EINVAL" ? { err: d } : { ok: d.id };
      })
      .with({ op: "iommu.dmaAlloc" }, (c) => {
        const r = this.iommu.dmaAlloc(group(), c.pages);
        return typeof r === "string" ? { err: r } : { ok: r };
      })
      .with({ op: "iommu.dmaFree" }, async (c) => done(await this.iommu.dmaFree(group(), c.iova)))
      .with({ op: "iommu.dma" }, (c) => this.device.dma(group(), c.iova))
      .with({ op: "type1.openGroup" }, () => done(vfio.openGroup(container(), group())))
      .with(
        { op: "type1.closeGroup" },
        async () => done(await vfio.closeGroup(container(), group())),
      )
      .with(
        { op: "type1.getDeviceFd" },
        async () => done(await vfio.getDeviceFd(container(), group())),
      )
      .with(
        { op: "type1.closeDeviceFd" },
        async () => done(await vfio.closeDeviceFd(container(), group())),
      )
      .with({ op: "type1.attach" }, async () => done(await vfio.attach(container(), group())))
      .with({ op: "type1.detach" }, async () => done(await container().unsetContainer(group())))
      .with({ op: "type1.setIommu" }, async () => done(await container().setIommu()))
      .with(
        { op: "type1.map" },
        async (c) => done(await container().mapDma(c.iova, c.size, c.vaddr)),
      )
      .with({ op: "type1.unmap" }, async (c) => {
        const r = await container().unmapDma(c.iova, c.size);
        return typeof r === "string" ? { err: r } : { ok: r };
      })
      .with({ op: "mm.fork" }, (c) => value(this.processes.fork(c.mm, c.child)))
      .with({ op: "mm.write" }, (c) => done(this.processes.write(c.mm, c.vaddr)))
      .with({ op: "type1.pin" }, { op: "type1.unpin" }, async (c) => {
        const delta = c.op === "type1.pin" ? 1 : -1;
        const r = await this.vendor.adjust(container(), group(), c.iova, c.pages, delta);
        return typeof r === "string" ? { err: r } : { ok: r };
      })
      .exhaustive();
  }

  /** The abstraction function: the implementation's state in the spec's shape. */
  observe(): SystemState {
    const core = this.iommu;
    const groups = new Map<number, Group>();
    for (const g of core.groups.values()) {
      groups.set(g.id, {
        id: g.id,
        kind: g.kind,
        parent: g.parent?.id ?? null,
        defaultDomain: g.defaultDomain?.id ?? null,
        domain: g.domain?.id ?? null,
        shares: new Map(g.shares),
      });
    }
    const domains = new Map<number, Domain>();
    for (const d of core.domains.values()) domains.set(d.id, observeDomain(d));
    const buffers = new Map<number, KernelBuffer>();
    for (const b of core.buffers.values()) {
      buffers.set(b.id, {
        id: b.id,
        group: b.group,
        iova: b.iova,
        size: b.frames.length * PAGE_SIZE,
      });
    }
    const containers = new Map<number, Container>();
    const pins = new Map<number, Map<number, number>>();
    const lockedVm = new Map<number, number>();
    let memlockPages: number | null = null;
    for (const c of this.vfio.containers.values()) {
      const local = c.iommu?.localDomain ?? null;
      containers.set(c.id, {
        id: c.id,
        mm: c.mm.id,
        iommuSet: c.iommu !== null,
        groups: c.groups.map((g) => g.id),
        domains: (c.iommu?.domains ?? []).map((vd) => ({
          domain: vd.domain.id,
          groups: vd.groups.map((g) => g.id),
          sharedParent: vd.parentGroup?.id ?? null,
        })),
        localGroups: (local?.groups ?? []).map((g) => g.id),
        dmas: (c.iommu?.dmas ?? []).map((d) => ({ iova: d.iova, size: d.size, vaddr: d.vaddr })),
        vendorPins: new Map(local?.pins.entries()),
      });
      const pages = new Map(c.mm.pinned());
      if (pages.size > 0) pins.set(c.mm.id, pages);
      if (c.mm.lockedVm !== 0) lockedVm.set(c.mm.id, c.mm.lockedVm);
      memlockPages = c.mm.memlockPages;
    }
    return {
      iommu: { groups, domains, buffers },
      type1: {
        containers,
        pins,
        lockedVm,
        memlockPages,
        processes: new Map([...this.processes.all].map(([id, p]) => [id, p.parent])),
        groupFds: new Map([...this.vfio.groupFds].map(([g, c]) => [g, c.id])),
        deviceFds: new Set(
          [...this.vfio.containers.values()].flatMap((c) => [...c.deviceFds].map((g) => g.id)),
        ),
      },
    };
  }
}

/** A freed frame still in a page table shows as kernel buffer -1 (never a spec state). */
function observeDomain(d: IommuDomain): Domain {
  const pages = new Map<number, Target>();
  for (const [iova, frame] of d.table) {
    const o = frame.owner;
    pages.set(iova, o === null ? { kind: "kernel", buffer: -1, offset: frame.pfn } : { ...o });
  }
  return { id: d.id, pages };
}
