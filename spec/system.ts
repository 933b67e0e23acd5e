/**
 * The whole specified system: the component states side by side, one command union, one
 * `step`, and the invariants that relate components.
 *
 * @module
 */
import {
  type Domain,
  type Group,
  type IommuCommand,
  iommuCommandSchema,
  iommuResults,
  type IommuState,
  sharedRef,
  stepIommu,
} from "./iommu.ts";
import { type MmCommand, mmCommandSchema, mmResults, stepMm } from "./mm.ts";
import {
  containerOf,
  stepType1,
  type Type1Command,
  type1CommandSchema,
  type1Results,
  type Type1State,
} from "./type1.ts";
import {
  checkInvariants,
  type CommandSchema,
  type Invariant,
  type MachineSpec,
  PAGE_SIZE,
  type ResultsOf,
  type StepResult,
  type TypedStepResult,
} from "./types.ts";

/** The state of every specified component. */
export interface SystemState {
  /** IOMMU groups, domains and kernel DMA buffers. */
  readonly iommu: IommuState;
  /** VFIO containers, type1 mappings and pins. */
  readonly type1: Type1State;
}

/** Any command of any component; `op` is `<component>.<verb>`. */
export type Command = IommuCommand | Type1Command | MmCommand;

/** The name of every command, as it appears in traces. */
export type Op = Command["op"];

export type { FieldKind } from "./types.ts";

/**
 * Every op of the IOMMU/type1 world and its argument fields: public API, used to validate
 * traces from other implementations and to generate commands.
 */
export const COMMAND_SCHEMA: CommandSchema<Op> = {
  ...iommuCommandSchema,
  ...type1CommandSchema,
  ...mmCommandSchema,
};

/** The shape of every op's success value in the IOMMU/type1 world. */
export const RESULTS: typeof iommuResults & typeof type1Results & typeof mmResults = {
  ...iommuResults,
  ...type1Results,
  ...mmResults,
};

/** The fixed machine a run starts from. */
export interface Topology {
  /** Groups of physical devices behind the IOMMU; each gets a default domain with its own id. */
  readonly pciGroups: readonly number[];
  /** sdmdev groups and the pci group of their parent device. */
  readonly mdevGroups: readonly { readonly group: number; readonly parent: number }[];
  /** Containers and the process (mm) that opened each. */
  readonly containers: readonly { readonly id: number; readonly mm: number }[];
  /**
   * Mediated devices of vendor drivers with no IOMMU of their own (a vGPU-like ring device):
   * their groups attach through a container's local domain and pin pages with
   * `type1.pin`. Default: none.
   */
  readonly vendorGroups?: readonly number[];
  /** RLIMIT_MEMLOCK of every process, in pages; default: unlimited. */
  readonly memlockPages?: number;
}

/**
 * The default machine: group 1 is the accelerator's physical function (the sdmdev parent),
 * group 2 an unrelated device, groups 10 and 11 two sdmdevs of group 1, groups 20 and 21 two
 * vendor mdevs that pin pages, and two processes with one container each, allowed to lock 4
 * pages of memory each (so that MAP_DMA, replay and pinning can run out).
 */
export const DEFAULT_TOPOLOGY: Topology = {
  pciGroups: [1, 2],
  mdevGroups: [{ group: 10, parent: 1 }, { group: 11, parent: 1 }],
  containers: [{ id: 1, mm: 1 }, { id: 2, mm: 2 }],
  vendorGroups: [20, 21],
  memlockPages: 4,
};

/** The state of a freshly booted machine. */
export function initialState(topology: Topology = DEFAULT_TOPOLOGY): SystemState {
  const groups = new Map<number, Group>();
  const domains = new Map<number, Domain>();
  for (const id of topology.pciGroups) {
    groups.set(id, {
      id,
      kind: "pci",
      parent: null,
      defaultDomain: id,
      domain: id,
      shares: new Map(),
    });
    domains.set(id, { id, pages: new Map() });
  }
  for (const { group, parent } of topology.mdevGroups) {
    groups.set(group, {
      id: group,
      kind: "mdev",
      parent,
      defaultDomain: null,
      domain: null,
      shares: new Map(),
    });
  }
  for (const group of topology.vendorGroups ?? []) {
    groups.set(group, {
      id: group,
      kind: "mdev",
      parent: null,
      defaultDomain: null,
      domain: null,
      shares: new Map(),
    });
  }
  const containers = new Map(
    topology.containers.map((c) => [
      c.id,
      {
        id: c.id,
        mm: c.mm,
        iommuSet: false,
        groups: [],
        domains: [],
        localGroups: [],
        dmas: [],
        vendorPins: new Map(),
      },
    ]),
  );
  return {
    iommu: { groups, domains, buffers: new Map() },
    type1: {
      containers,
      pins: new Map(),
      lockedVm: new Map(),
      memlockPages: topology.memlockPages ?? null,
      processes: new Map(topology.containers.map((c) => [c.mm, null])),
      groupFds: new Map(),
      deviceFds: new Set(),
    },
  };
}

/**
 * What each op of the IOMMU/type1 world returns on success (`ret.ok`), derived from
 * {@link RESULTS}, so that {@link step} of a command of a known op is typed: `type1.unmap`
 * gives the bytes unmapped, `iommu.dma` a `Target`, not `unknown`.
 */
export type Type1Results = ResultsOf<typeof RESULTS>;

/** Executes one command against the system state; `ret.ok` has the op's {@link Type1Results} type. */
export function step<C extends Command>(
  state: SystemState,
  cmd: C,
): TypedStepResult<SystemState, Type1Results[C["op"]]>;
/** Executes one command against the system state. */
export function step(state: SystemState, cmd: Command): StepResult<SystemState> {
  if (cmd.op.startsWith("iommu.")) {
    const r = stepIommu(state.iommu, cmd as IommuCommand);
    return { ...r, state: r.state === state.iommu ? state : { ...state, iommu: r.state } };
  }
  if (cmd.op.startsWith("mm.")) return stepMm(state, cmd as MmCommand);
  return stepType1(state, cmd as Type1Command);
}

/** The IOVAs of `domain` that map process memory. */
function userIovas(state: SystemState, domain: number): number[] {
  const out: number[] = [];
  for (const [iova, t] of state.iommu.domains.get(domain)?.pages ?? []) {
    if (t.kind === "user") out.push(iova);
  }
  return out;
}

/** The system invariants, checked after every step and at every scheduling point. */
export const invariants: readonly Invariant<SystemState>[] = [
  {
    name: "share-counts-positive",
    scope: "always",
    check: (s) => {
      for (const g of s.iommu.groups.values()) {
        for (const [owner, n] of g.shares) {
          if (n <= 0) return `group ${g.id} owner ${owner} holds ${n} shares`;
        }
      }
    },
  },
  {
    name: "shared-domain-is-default",
    scope: "always",
    check: (s) => {
      for (const g of s.iommu.groups.values()) {
        if (sharedRef(g) > 0 && g.domain !== g.defaultDomain) {
          return `group ${g.id} is shared (${sharedRef(g)}) but attached to domain ${g.domain}`;
        }
      }
    },
  },
  {
    name: "default-domains-live",
    scope: "always",
    check: (s) => {
      for (const g of s.iommu.groups.values()) {
        if (g.defaultDomain !== null && !s.iommu.domains.has(g.defaultDomain)) {
          return `default domain ${g.defaultDomain} of group ${g.id} was freed`;
        }
      }
    },
  },
  {
    name: "one-container-per-group",
    scope: "always",
    check: (s) => {
      const seen = new Map<number, number>();
      for (const c of s.type1.containers.values()) {
        for (const g of c.groups) {
          if (seen.has(g)) return `group ${g} is in containers ${seen.get(g)} and ${c.id}`;
          seen.set(g, c.id);
        }
      }
    },
  },
  {
    name: "container-mappings-in-every-domain",
    scope: "between-ops",
    check: (s) => {
      for (const c of s.type1.containers.values()) {
        for (const vd of c.domains) {
          const domain = s.iommu.domains.get(vd.domain);
          if (!domain) return `container ${c.id} uses domain ${vd.domain}, which does not exist`;
          for (const d of c.dmas) {
            for (let off = 0; off < d.size; off += PAGE_SIZE) {
              if (domain.pages.get(d.iova + off)?.kind !== "user") {
                return `container ${c.id} iova ${
                  d.iova + off
                } is not mapped in domain ${vd.domain}`;
              }
            }
          }
        }
      }
    },
  },
  {
    // The fork race (DOMAIN.md §10): what an IOVA of a container's mapping reaches must be
    // the page its opener's page table maps at the mapped address, before and after a fork
    // and whoever stores to the page (spec/mm.ts).
    name: "dma-lands-in-mapping-process",
    scope: "between-ops",
    check: (s) => {
      for (const c of s.type1.containers.values()) {
        for (const vd of c.domains) {
          const pages = s.iommu.domains.get(vd.domain)?.pages;
          for (const d of c.dmas) {
            for (let off = 0; off < d.size; off += PAGE_SIZE) {
              const t = pages?.get(d.iova + off);
              if (t?.kind === "user" && (t.mm !== c.mm || t.vaddr !== d.vaddr + off)) {
                return `iova ${d.iova + off} of container ${c.id} (mm ${c.mm}, vaddr ${
                  d.vaddr + off
                }) reaches mm ${t.mm}'s page at ${t.vaddr} in domain ${vd.domain}`;
              }
            }
          }
        }
      }
    },
  },
  {
    name: "user-mappings-belong-to-an-attached-container",
    scope: "between-ops",
    check: (s) => {
      for (const domain of s.iommu.domains.values()) {
        for (const iova of userIovas(s, domain.id)) {
          const owner = [...s.type1.containers.values()].find((c) =>
            c.domains.some((vd) => vd.domain === domain.id) &&
            c.dmas.some((d) => d.iova <= iova && iova < d.iova + d.size)
          );
          if (!owner) return `domain ${domain.id} maps user iova ${iova} for no attached container`;
        }
      }
    },
  },
  {
    name: "default-domain-user-mappings-only-while-shared",
    scope: "always",
    check: (s) => {
      for (const g of s.iommu.groups.values()) {
        if (g.defaultDomain === null || sharedRef(g) > 0) continue;
        const stale = userIovas(s, g.defaultDomain);
        if (stale.length > 0) {
          return `group ${g.id} is unshared but its default domain still maps user iova ${
            stale[0]
          }`;
        }
      }
    },
  },
  {
    name: "files-match-containers",
    scope: "between-ops",
    check: (s) => {
      for (const c of s.type1.containers.values()) {
        for (const g of c.groups) {
          if (s.type1.groupFds.get(g) !== c.id) {
            return `group ${g} is in container ${c.id} without that container's group fd`;
          }
        }
      }
      for (const g of s.type1.deviceFds) {
        const c = containerOf(s.type1, g);
        if (!c || !c.iommuSet || s.type1.groupFds.get(g) !== c.id) {
          return `device fd of group ${g} open outside an IOMMU-set container holding its group fd`;
        }
      }
    },
  },
  {
    name: "pins-match-dma-list",
    scope: "between-ops",
    check: (s) => {
      // MAP_DMA pins its pages while the container has an IOMMU-backed domain; a vendor's
      // pin pins the page behind its IOVA.
      const expected = new Map<number, Map<number, number>>();
      for (const c of s.type1.containers.values()) {
        const pages = expected.get(c.mm) ?? new Map<number, number>();
        const add = (va: number, n: number) => pages.set(va, (pages.get(va) ?? 0) + n);
        for (const d of c.domains.length > 0 ? c.dmas : []) {
          for (let va = d.vaddr; va < d.vaddr + d.size; va += PAGE_SIZE) add(va, 1);
        }
        for (const [iova, n] of c.vendorPins) {
          const d = c.dmas.find((d) => d.iova <= iova && iova < d.iova + d.size);
          if (d) add(d.vaddr + iova - d.iova, n);
        }
        if (pages.size > 0) expected.set(c.mm, pages);
      }
      const pinned = (
        p: ReadonlyMap<number, ReadonlyMap<number, number>>,
        mm: number,
        va: number,
      ) => p.get(mm)?.get(va) ?? 0;
      for (const [mm, pages] of s.type1.pins) {
        if (pages.size === 0) return `mm ${mm} has an empty pin map`;
      }
      for (const side of [s.type1.pins, expected]) {
        for (const [mm, pages] of side) {
          for (const va of pages.keys()) {
            const n = pinned(s.type1.pins, mm, va);
            const want = pinned(expected, mm, va);
            if (n !== want) return `page ${va} of mm ${mm} pinned ${n} times, expected ${want}`;
          }
        }
      }
    },
  },
  {
    name: "vendor-pins-inside-mappings",
    scope: "between-ops",
    check: (s) => {
      for (const c of s.type1.containers.values()) {
        for (const [iova, n] of c.vendorPins) {
          if (n <= 0) return `container ${c.id} iova ${iova} has pin count ${n}`;
          if (c.localGroups.length === 0) {
            return `container ${c.id} iova ${iova} is pinned with no local domain`;
          }
          if (!c.dmas.some((d) => d.iova <= iova && iova < d.iova + d.size)) {
            return `container ${c.id} iova ${iova} is pinned outside every mapping`;
          }
        }
      }
    },
  },
  {
    name: "local-domain-holds-vendor-groups",
    scope: "between-ops",
    check: (s) => {
      const vendor = (g: number) => {
        const group = s.iommu.groups.get(g);
        return group?.kind === "mdev" && group.parent === null;
      };
      for (const c of s.type1.containers.values()) {
        const wrong = c.localGroups.find((g) => !vendor(g) || !c.groups.includes(g));
        if (wrong !== undefined) return `container ${c.id} local domain holds group ${wrong}`;
        for (const vd of c.domains) {
          const v = vd.groups.find(vendor);
          if (v !== undefined) return `vendor mdev group ${v} is in IOMMU domain ${vd.domain}`;
        }
      }
    },
  },
  {
    name: "locked-vm-counts-pinned-pages",
    scope: "between-ops",
    check: (s) => {
      const mms = new Set([...s.type1.pins.keys(), ...s.type1.lockedVm.keys()]);
      for (const mm of mms) {
        const pinned = s.type1.pins.get(mm)?.size ?? 0;
        const locked = s.type1.lockedVm.get(mm) ?? 0;
        if (locked !== pinned) return `mm ${mm} locked_vm ${locked}, but ${pinned} pages pinned`;
        const limit = s.type1.memlockPages;
        if (limit !== null && locked > limit) {
          return `mm ${mm} locked_vm ${locked} is over RLIMIT_MEMLOCK ${limit}`;
        }
      }
    },
  },
  {
    name: "nothing-left-after-last-detach",
    scope: "between-ops",
    check: (s) => {
      for (const c of s.type1.containers.values()) {
        if (c.groups.length > 0) continue;
        if (c.dmas.length > 0 || c.vendorPins.size > 0 || c.localGroups.length > 0) {
          return `container ${c.id} has no group but keeps mappings or pins`;
        }
      }
    },
  },
];

/**
 * Every violated invariant of `state`, as `name: message` strings; with `scope` "always", only
 * the invariants that must hold at every scheduling point.
 */
export function violations(state: SystemState, scope?: "always"): string[] {
  return checkInvariants(invariants, state, scope);
}

/** The IOMMU and vfio type1 world as one record (configured by its {@link Topology}). */
export const type1Spec: MachineSpec<SystemState, Command, Topology> = {
  component: "type1",
  initial: initialState,
  step,
  invariants,
  schema: COMMAND_SCHEMA,
  results: RESULTS,
};
