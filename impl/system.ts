/**
 * The executable implementation as one object: boots a {@link Topology}, executes spec-shaped
 * commands against the simulated kernel, and maps its internals back to the spec's state
 * shape with {@link System.observe} (the abstraction function).
 *
 * @module
 */
import { match } from "ts-pattern";
import type { Domain, Group, KernelBuffer, Target } from "../spec/iommu.ts";
import { type Command, DEFAULT_TOPOLOGY, type SystemState, type Topology } from "../spec/system.ts";
import { type Container, pinKey } from "../spec/type1.ts";
import { type Errno, PAGE_SIZE, type Ret } from "../spec/types.ts";
import { DmaMaster } from "./device/dma_master.ts";
import type { IommuCore, IommuDomain } from "./iommu/core.ts";
import type { Kernel, Outcome } from "./kernel.ts";
import { AddressSpace } from "./mem/mm.ts";
import { Platform } from "./platform.ts";
import type { Quirks } from "./quirks.ts";
import type { Sched } from "./sched.ts";
import type { SharedParents } from "./vfio/type1.ts";
import { VfioContainer } from "./vfio/container.ts";

/**
 * The devices behind VFIO groups whose device fd does more than exist (`vfio_device_ops`):
 * an mdev's open and release reach its parent driver.
 */
export interface VfioDevices {
  /** The device of `group` is opened by process `mm` (undefined: no such device). */
  open(group: number, mm: number): Promise<Errno | undefined> | undefined;
  /** Its device fd was closed by process `mm`. */
  release(group: number, mm: number): Promise<Errno | undefined> | undefined;
  /** The group's file is opened: its device is held (an errno refuses the open). */
  openGroup(group: number): Errno | undefined;
  /** The group's file was closed. */
  closeGroup(group: number): void;
}

/** How to build a {@link System}. */
export interface SystemOptions {
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

/** A device operation that has nothing to do. */
function ok(): Promise<undefined> {
  return Promise.resolve(undefined);
}

function done(r: Errno | undefined): Ret {
  return r === undefined ? { ok: 0 } : { err: r };
}

/** The simulated machine: kernel, IOMMU, VFIO containers and a DMA master. */
export class System {
  /** Shared kernel context (scheduler, memory, quirks, event log). */
  readonly kernel: Kernel;
  /** The IOMMU subsystem. */
  readonly iommu: IommuCore;
  /** The device side. */
  readonly device: DmaMaster;
  /** Containers by id. */
  readonly containers: Map<number, VfioContainer> = new Map();
  /** Open group fds (`/dev/vfio/<group>`) and the container (process) holding each. */
  readonly groupFds: Map<number, VfioContainer> = new Map();

  readonly #devices: VfioDevices | undefined;

  /** Boots the machine. */
  constructor(options: SystemOptions = {}) {
    const topology = options.topology ?? DEFAULT_TOPOLOGY;
    const platform = options.platform ??
      new Platform({ sched: options.sched, quirks: options.quirks });
    this.kernel = platform.kernel;
    this.iommu = platform.iommu;
    this.#devices = options.devices;
    for (const g of topology.pciGroups) this.iommu.addGroup(g, "pci", null);
    for (const m of topology.mdevGroups) this.iommu.addGroup(m.group, "mdev", m.parent);
    this.device = new DmaMaster(this.kernel, this.iommu);
    const shared: SharedParents = new Set();
    const deps = { kernel: this.kernel, core: this.iommu, hooks: this.device, shared };
    for (const c of topology.containers) {
      const mm = new AddressSpace(c.mm, this.kernel.phys);
      this.containers.set(c.id, new VfioContainer(c.id, mm, deps));
    }
  }

  /** Executes one command; its events are those its task logged meanwhile. */
  exec(cmd: Command): Promise<Outcome> {
    return this.kernel.traced(() => this.#dispatch(cmd));
  }

  async #dispatch(cmd: Command): Promise<Ret> {
    if (cmd.op.startsWith("type1.")) {
      if (!this.containers.has((cmd as { container: number }).container)) return { err: "ENODEV" };
    }
    if ("group" in cmd && !this.iommu.groups.has(cmd.group)) return { err: "ENODEV" };
    // Looked up once: a group that goes meanwhile (its mdev removed) is still this one.
    const found = "group" in cmd ? this.iommu.groups.get(cmd.group) : undefined;
    const group = () => found!;
    const container = () => this.containers.get((cmd as { container: number }).container)!;
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
      .with({ op: "type1.openGroup" }, () => {
        if (group().kernelDriver !== null) return { err: "EPERM" } as const;
        if (this.groupFds.has(group().id)) return { err: "EBUSY" } as const;
        const refused = this.#devices?.openGroup(group().id);
        if (refused !== undefined) return { err: refused };
        this.groupFds.set(group().id, container());
        return { ok: 0 };
      })
      .with({ op: "type1.closeGroup" }, async () => {
        const refuse = () => (this.groupFds.get(group().id) !== container() ? "EINVAL" : undefined);
        const drop = () => {
          this.groupFds.delete(group().id);
          this.#devices?.closeGroup(group().id);
        };
        return done(await container().closeGroup(group(), refuse, () => void drop()));
      })
      .with({ op: "type1.getDeviceFd" }, async () => {
        if (this.groupFds.get(group().id) !== container()) return { err: "EINVAL" } as const;
        const mm = container().mm.id;
        const open = this.#devices && (() => this.#devices!.open(group().id, mm) ?? ok());
        return done(await container().getDeviceFd(group(), open));
      })
      .with({ op: "type1.closeDeviceFd" }, async () => {
        if (this.groupFds.get(group().id) !== container()) return { err: "EINVAL" } as const;
        const mm = container().mm.id;
        const release = this.#devices && (() => this.#devices!.release(group().id, mm) ?? ok());
        return done(await container().closeDeviceFd(group(), release));
      })
      .with({ op: "type1.attach" }, async () => {
        const refuse = () => {
          if (this.groupFds.get(group().id) !== container()) return "EINVAL";
          const inAny = [...this.containers.values()].some((k) => k.groups.includes(group()));
          return inAny ? "EINVAL" : undefined;
        };
        return done(await container().setContainer(group(), refuse));
      })
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
    const pins = new Map<string, number>();
    for (const c of this.containers.values()) {
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
        dmas: (c.iommu?.dmas ?? []).map((d) => ({ iova: d.iova, size: d.size, vaddr: d.vaddr })),
      });
      for (const [vaddr, n] of c.mm.pinned()) pins.set(pinKey(c.mm.id, vaddr), n);
    }
    return {
      iommu: { groups, domains, buffers },
      type1: {
        containers,
        pins,
        groupFds: new Map([...this.groupFds].map(([g, c]) => [g, c.id])),
        deviceFds: new Set(
          [...this.containers.values()].flatMap((c) => [...c.deviceFds].map((g) => g.id)),
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
