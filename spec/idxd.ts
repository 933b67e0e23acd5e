/**
 * Work-queue ownership on an Intel DSA device (idxd; seed 003, the review of "Add VFIO mediated
 * device support and DEV-MSI support for the idxd driver", and upstream drivers/dma/idxd:
 * device.c, cdev.c, sysfs.c). A work queue (WQ) is configured for one use while disabled, then
 * enabled, and from then on serves one kind of owner only: the kernel (a dmaengine channel),
 * processes (through the WQ's char device, each open a client bound to the process's PASID), or
 * one guest (through an mdev). A dedicated WQ takes one client at a time; a shared WQ takes many,
 * each submitting with its own PASID.
 *
 * Intended behaviour, and the decisions where upstream leaves room:
 * - `configure` (the sysfs `type` and `mode` stores) is refused with EPERM unless the WQ is
 *   disabled, as upstream's stores check `wq->state`. A disabled WQ has no clients, so a WQ never
 *   changes use or mode under an owner.
 * - `enable` (binding the WQ's driver: dmaengine, user or mdev) needs a use (EINVAL for
 *   `"none"`, as "wq type not set") and a disabled WQ (EBUSY, "already enabled"). It creates
 *   the WQ's interface: the dmaengine channel, the char device, or the mdev type.
 * - `disable` does not wait for clients and is not refused by them: upstream's `drv_disable_wq`
 *   warns "Clients has claim on wq", unmaps the portal, drains and resets the WQ and sets the
 *   client count to 0. So here every client is cut off: its handle stays (a file stays open, an
 *   mdev stays created, a claim stays held) but it is detached, no longer counted and no longer
 *   able to submit; the reset clears the dedicated WQ's PASID. It returns how many clients it
 *   cut off. A detached handle can only be closed, removed or released.
 * - `open` is `idxd_cdev_open`: ENXIO unless the WQ is enabled for user use (there is no char
 *   device; `chrdev_open` answers ENXIO for a minor without one), EBUSY on a dedicated WQ that
 *   has a client. The client is bound to the process's PASID (`iommu_sva_bind_device`); on a
 *   dedicated WQ that PASID is written into the WQ's configuration (`idxd_wq_set_pasid`), and
 *   cleared again when the client closes. A shared WQ's configuration carries no PASID: each
 *   descriptor does (ENQCMD). PASIDs are the processes' own (one per mm, allocated outside this
 *   model: the configuration says which process has which).
 * - `claim` is a dmaengine channel user (`idxd_dma_alloc_chan_resources`, which takes a client
 *   reference): ENODEV unless the WQ is enabled for kernel use. `mdevCreate` gives the WQ to a
 *   guest: ENODEV unless enabled for guest use, EBUSY when a guest already has it, whatever the
 *   mode. This model lets a dedicated WQ serve one client whoever it is.
 * - Arguments that name nothing (a WQ outside the device, a process without a PASID, a handle
 *   that is not open or is of another kind, an unknown use or mode) are EINVAL.
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import {
  checkInvariants,
  type CommandSchema,
  fail,
  type Invariant,
  type MachineSpec,
  ok,
  type ResultsOf,
  type ResultTable,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

/** What a WQ is configured for: nothing yet, the kernel, processes, or a guest. */
export type WqUse = "none" | "kernel" | "user" | "guest";

/** Every {@link WqUse}, for validating `configure`. */
export const WQ_USES: readonly WqUse[] = ["none", "kernel", "user", "guest"];

/** Whether a WQ takes one client (dedicated) or many, each with its PASID (shared). */
export type WqMode = "dedicated" | "shared";

/** Every {@link WqMode}, for validating `configure`. */
export const WQ_MODES: readonly WqMode[] = ["dedicated", "shared"];

/** One work queue. */
export interface IdxdWq {
  /** What it is configured for. */
  readonly use: WqUse;
  /** Dedicated or shared. */
  readonly mode: WqMode;
  /** Disabled (configurable, no clients) or enabled (serving its use). */
  readonly state: "disabled" | "enabled";
  /** The client count (`wq->client_count`, sysfs `clients`): attached handles. */
  readonly clients: number;
  /** The PASID in the WQ's configuration: a dedicated user WQ's client's; null otherwise. */
  readonly pasid: number | null;
}

/** The kind of owner a handle is: a process's open file, a kernel claim, or a guest's mdev. */
export type HandleKind = "file" | "kernel" | "mdev";

/** One client's handle: what `open`, `claim` or `mdevCreate` returned the id of. */
export interface IdxdHandle {
  /** Which kind of owner holds it. */
  readonly kind: HandleKind;
  /** The WQ it was taken on. */
  readonly wq: number;
  /** The process holding a file; null for the other kinds. */
  readonly process: number | null;
  /** The PASID a file is bound to; null for the other kinds. */
  readonly pasid: number | null;
  /** Counted as the WQ's client; false once `disable` cut it off. */
  readonly attached: boolean;
}

/** The device's work queues and their clients. */
export interface IdxdState {
  /** The WQs, by id (`wq<device>.<id>` upstream; one device here). */
  readonly wqs: readonly IdxdWq[];
  /** Every open handle, by id. */
  readonly handles: ReadonlyMap<number, IdxdHandle>;
  /** Each process that may open a char device, and its mm's PASID. */
  readonly pasids: ReadonlyMap<number, number>;
  /** The id the next handle gets. */
  readonly nextHandle: number;
}

/** The device: how many WQs, and which processes exist with which PASID. */
export interface IdxdConfig {
  /** Number of WQs (ids 0 .. wqs-1). */
  readonly wqs: number;
  /** Process id → its PASID. */
  readonly pasids: ReadonlyMap<number, number>;
}

/**
 * Two WQs; processes 1, 2 and 3 with PASIDs 11, 12 and 13 (different from the process ids, so
 * a process id taken for a PASID shows).
 */
export const DEFAULT_IDXD_CONFIG: IdxdConfig = {
  wqs: 2,
  pasids: new Map([[1, 11], [2, 12], [3, 13]]),
};

/** The ops. Handles are named by the id their `open`, `claim` or `mdevCreate` returned. */
export type IdxdCommand =
  | {
    readonly op: "idxd.configure";
    readonly wq: number;
    readonly use: string;
    readonly mode: string;
  }
  | { readonly op: "idxd.enable"; readonly wq: number }
  | { readonly op: "idxd.disable"; readonly wq: number }
  | { readonly op: "idxd.open"; readonly wq: number; readonly process: number }
  | { readonly op: "idxd.close"; readonly file: number }
  | { readonly op: "idxd.claim"; readonly wq: number }
  | { readonly op: "idxd.release"; readonly claim: number }
  | { readonly op: "idxd.mdevCreate"; readonly wq: number }
  | { readonly op: "idxd.mdevRemove"; readonly mdev: number };

/** Every WQ disabled and unconfigured, no handle. */
export function initialIdxdState(config: IdxdConfig = DEFAULT_IDXD_CONFIG): IdxdState {
  if (!Number.isSafeInteger(config.wqs) || config.wqs < 1) {
    throw new RangeError(`idxd: wqs must be a positive integer, got ${config.wqs}`);
  }
  const pasids = [...config.pasids.values()];
  if (
    pasids.some((p) => !Number.isSafeInteger(p) || p < 1) || new Set(pasids).size < pasids.length
  ) {
    throw new RangeError(
      `idxd: PASIDs must be distinct positive integers, got ${pasids.join(", ")}`,
    );
  }
  const wq: IdxdWq = { use: "none", mode: "dedicated", state: "disabled", clients: 0, pasid: null };
  return {
    wqs: Array.from({ length: config.wqs }, () => wq),
    handles: new Map(),
    pasids: config.pasids,
    nextHandle: 1,
  };
}

const SERVES: Readonly<Record<WqUse, HandleKind | undefined>> = {
  none: undefined,
  kernel: "kernel",
  user: "file",
  guest: "mdev",
};

/** The kind of handle a WQ of `use` serves (none for an unconfigured WQ). */
export function kindServing(use: WqUse): HandleKind | undefined {
  return SERVES[use];
}

function withWq(state: IdxdState, id: number, wq: IdxdWq): IdxdState {
  return { ...state, wqs: state.wqs.map((w, i) => (i === id ? wq : w)) };
}

/** A new attached handle on WQ `id`, counted as its client (and its PASID if dedicated). */
function attach(
  state: IdxdState,
  id: number,
  kind: HandleKind,
  process: number | null = null,
): StepResult<IdxdState> {
  const wq = state.wqs[id];
  const pasid = process === null ? null : state.pasids.get(process)!;
  const handle: IdxdHandle = { kind, wq: id, process, pasid, attached: true };
  const handles = new Map(state.handles).set(state.nextHandle, handle);
  const own = kind === "file" && wq.mode === "dedicated" ? pasid : wq.pasid;
  const next = withWq({ ...state, handles, nextHandle: state.nextHandle + 1 }, id, {
    ...wq,
    clients: wq.clients + 1,
    pasid: own,
  });
  return { state: next, ret: ok(state.nextHandle), events: [] };
}

/** Takes a new client of `kind` on WQ `id`, with the checks every kind shares. */
function take(
  state: IdxdState,
  id: number,
  kind: HandleKind,
  gone: "ENXIO" | "ENODEV",
  process: number | null = null,
): StepResult<IdxdState> {
  const wq = state.wqs[id];
  if (!wq) return fail(state, "EINVAL");
  if (process !== null && !state.pasids.has(process)) return fail(state, "EINVAL");
  if (wq.state !== "enabled" || kindServing(wq.use) !== kind) return fail(state, gone);
  const single = wq.mode === "dedicated" || kind === "mdev";
  if (single && wq.clients > 0) return fail(state, "EBUSY");
  return attach(state, id, kind, process);
}

/** Drops handle `id` of `kind`; an attached one stops being its WQ's client. */
function put(state: IdxdState, id: number, kind: HandleKind): StepResult<IdxdState> {
  const h = state.handles.get(id);
  if (!h || h.kind !== kind) return fail(state, "EINVAL");
  const handles = new Map(state.handles);
  handles.delete(id);
  let next: IdxdState = { ...state, handles };
  if (h.attached) {
    const wq = state.wqs[h.wq];
    const pasid = h.kind === "file" && wq.mode === "dedicated" ? null : wq.pasid;
    next = withWq(next, h.wq, { ...wq, clients: wq.clients - 1, pasid });
  }
  return { state: next, ret: ok(0), events: [] };
}

/**
 * Executes one operation:
 * - `idxd.configure {wq, use, mode}`: ok(0); EINVAL for an unknown WQ, use or mode; EPERM
 *   unless the WQ is disabled.
 * - `idxd.enable {wq}`: ok(0), the WQ serves its use with no client; EINVAL for an unknown WQ
 *   or one configured for no use; EBUSY when enabled.
 * - `idxd.disable {wq}`: ok(the clients cut off), every attached handle of the WQ detached,
 *   client count 0, PASID cleared; EINVAL for an unknown WQ; ENODEV when disabled.
 * - `idxd.open {wq, process}`: ok(the file's handle id), bound to the process's PASID (on a
 *   dedicated WQ also the WQ's); EINVAL for an unknown WQ or process; ENXIO unless the WQ is
 *   enabled for user use; EBUSY on a dedicated WQ with a client.
 * - `idxd.close {file}`: ok(0); EINVAL unless `file` is an open file.
 * - `idxd.claim {wq}`: ok(the claim's handle id); EINVAL for an unknown WQ; ENODEV unless the
 *   WQ is enabled for kernel use; EBUSY on a dedicated WQ with a client.
 * - `idxd.release {claim}`: ok(0); EINVAL unless `claim` is a held claim.
 * - `idxd.mdevCreate {wq}`: ok(the mdev's handle id); EINVAL for an unknown WQ; ENODEV unless
 *   the WQ is enabled for guest use; EBUSY when it has a client (one guest per WQ).
 * - `idxd.mdevRemove {mdev}`: ok(0); EINVAL unless `mdev` is a created mdev.
 */
export function stepIdxd<C extends IdxdCommand>(
  state: IdxdState,
  cmd: C,
): TypedStepResult<IdxdState, ResultsOf<typeof idxdResults>[C["op"]]>;
/** stepIdxd of any command, its success value untyped. */
export function stepIdxd(state: IdxdState, cmd: IdxdCommand): StepResult<IdxdState> {
  return match(cmd)
    .with({ op: "idxd.configure" }, (c): StepResult<IdxdState> => {
      const wq = state.wqs[c.wq];
      const use = WQ_USES.find((u) => u === c.use);
      const mode = WQ_MODES.find((m) => m === c.mode);
      if (!wq || !use || !mode) return fail(state, "EINVAL");
      if (wq.state !== "disabled") return fail(state, "EPERM");
      return { state: withWq(state, c.wq, { ...wq, use, mode }), ret: ok(0), events: [] };
    })
    .with({ op: "idxd.enable" }, (c): StepResult<IdxdState> => {
      const wq = state.wqs[c.wq];
      if (!wq || wq.use === "none") return fail(state, "EINVAL");
      if (wq.state === "enabled") return fail(state, "EBUSY");
      const next = withWq(state, c.wq, { ...wq, state: "enabled", clients: 0, pasid: null });
      return { state: next, ret: ok(0), events: [] };
    })
    .with({ op: "idxd.disable" }, (c): StepResult<IdxdState> => {
      const wq = state.wqs[c.wq];
      if (!wq) return fail(state, "EINVAL");
      if (wq.state !== "enabled") return fail(state, "ENODEV");
      const handles = new Map(
        [...state.handles].map(([id, h]) => [id, h.wq === c.wq ? { ...h, attached: false } : h]),
      );
      const disabled: IdxdWq = { ...wq, state: "disabled", clients: 0, pasid: null };
      return {
        state: withWq({ ...state, handles }, c.wq, disabled),
        ret: ok(wq.clients),
        events: [],
      };
    })
    .with({ op: "idxd.open" }, (c) => take(state, c.wq, "file", "ENXIO", c.process))
    .with({ op: "idxd.close" }, (c) => put(state, c.file, "file"))
    .with({ op: "idxd.claim" }, (c) => take(state, c.wq, "kernel", "ENODEV"))
    .with({ op: "idxd.release" }, (c) => put(state, c.claim, "kernel"))
    .with({ op: "idxd.mdevCreate" }, (c) => take(state, c.wq, "mdev", "ENODEV"))
    .with({ op: "idxd.mdevRemove" }, (c) => put(state, c.mdev, "mdev"))
    .otherwise(unknownOp);
}

/** The attached handles of WQ `id`. */
function clientsOf(state: IdxdState, id: number): IdxdHandle[] {
  return [...state.handles.values()].filter((h) => h.attached && h.wq === id);
}

/** The first WQ for which `bad` returns a message, as `wq N: message`. */
function firstWq(
  state: IdxdState,
  bad: (wq: IdxdWq, clients: IdxdHandle[]) => string | undefined,
): string | undefined {
  for (const [id, wq] of state.wqs.entries()) {
    const msg = bad(wq, clientsOf(state, id));
    if (msg !== undefined) return `wq ${id}: ${msg}`;
  }
  return undefined;
}

/**
 * What must hold of the WQs and their clients. `always` ones hold at every scheduling point;
 * the client count and the dedicated WQ's PASID are updated step by step under the WQ's lock, so
 * they are checked between operations.
 */
export const idxdInvariants: readonly Invariant<IdxdState>[] = [
  {
    name: "idxd.owned-once",
    scope: "always",
    check: (s) =>
      firstWq(s, (_, clients) => {
        const kinds = new Set(clients.map((h) => h.kind));
        if (kinds.size > 1) return `clients of several kinds: ${[...kinds].join(", ")}`;
        const guests = clients.filter((h) => h.kind === "mdev").length;
        return guests > 1 ? `${guests} guests` : undefined;
      }),
  },
  {
    name: "idxd.no-switch-while-owned",
    scope: "always",
    check: (s) =>
      firstWq(s, (wq, clients) => {
        const stray = clients.find((h) => h.kind !== kindServing(wq.use));
        return stray ? `a ${stray.kind} client on a WQ configured for ${wq.use}` : undefined;
      }),
  },
  {
    name: "idxd.dedicated-one-client",
    scope: "always",
    check: (s) =>
      firstWq(
        s,
        (wq, clients) =>
          wq.mode === "dedicated" && (clients.length > 1 || wq.clients > 1)
            ? `dedicated with ${Math.max(clients.length, wq.clients)} clients`
            : undefined,
      ),
  },
  {
    name: "idxd.shared-distinct-pasids",
    scope: "always",
    check: (s) =>
      firstWq(s, (_, clients) => {
        const byPasid = new Map<number | null, number | null>();
        for (const h of clients.filter((h) => h.kind === "file")) {
          if (h.pasid !== s.pasids.get(h.process!)) {
            return `process ${h.process}'s client is bound to PASID ${h.pasid}`;
          }
          const other = byPasid.get(h.pasid);
          if (other !== undefined && other !== h.process) {
            return `processes ${other} and ${h.process} submit with PASID ${h.pasid}`;
          }
          byPasid.set(h.pasid, h.process);
        }
        return undefined;
      }),
  },
  {
    name: "idxd.disabled-no-clients",
    scope: "always",
    check: (s) =>
      firstWq(
        s,
        (wq, clients) =>
          wq.state === "disabled" && (clients.length > 0 || wq.clients > 0)
            ? `disabled with ${Math.max(clients.length, wq.clients)} clients`
            : undefined,
      ),
  },
  {
    name: "idxd.client-count",
    scope: "between-ops",
    check: (s) =>
      firstWq(
        s,
        (wq, clients) =>
          wq.clients !== clients.length
            ? `client count ${wq.clients}, ${clients.length} attached handles`
            : undefined,
      ),
  },
  {
    name: "idxd.dedicated-pasid",
    scope: "between-ops",
    check: (s) =>
      firstWq(s, (wq, clients) => {
        const file = clients.find((h) => h.kind === "file");
        const want = wq.mode === "dedicated" && file ? file.pasid : null;
        return wq.pasid !== want ? `configured PASID ${wq.pasid}, expected ${want}` : undefined;
      }),
  },
];

/** Every violated invariant of `state`, as `name: message`. */
export function checkIdxdInvariants(
  state: IdxdState,
  scope?: Invariant<IdxdState>["scope"],
): string[] {
  return checkInvariants(idxdInvariants, state, scope);
}

/** Every op and its argument fields (public API: validates traces, generates commands). */
export const idxdCommandSchema: CommandSchema<IdxdCommand["op"]> = {
  "idxd.configure": { wq: "int", use: "string", mode: "string" },
  "idxd.enable": { wq: "int" },
  "idxd.disable": { wq: "int" },
  "idxd.open": { wq: "int", process: "int" },
  "idxd.close": { file: "int" },
  "idxd.claim": { wq: "int" },
  "idxd.release": { claim: "int" },
  "idxd.mdevCreate": { wq: "int" },
  "idxd.mdevRemove": { mdev: "int" },
};

/** The shape of every idxd op's success value. */
export const idxdResults = {
  "idxd.configure": "zero",
  "idxd.enable": "zero",
  "idxd.disable": "int",
  "idxd.open": "int",
  "idxd.close": "zero",
  "idxd.claim": "int",
  "idxd.release": "zero",
  "idxd.mdevCreate": "int",
  "idxd.mdevRemove": "zero",
} as const satisfies ResultTable<IdxdCommand["op"]>;

/** The idxd work queues as one record (config: {@link IdxdConfig}). */
export const idxdSpec: MachineSpec<IdxdState, IdxdCommand, IdxdConfig> = {
  component: "idxd",
  initial: initialIdxdState,
  step: stepIdxd,
  invariants: idxdInvariants,
  schema: idxdCommandSchema,
  results: idxdResults,
};
