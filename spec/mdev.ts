/**
 * The mediated-device (mdev) core as a pure state machine (mdev v7, seed 004:
 * `drivers/vfio/mdev/mdev_core.c`, `mdev_sysfs.c`, `mdev_driver.c`), with the parts the v7
 * reviews settled on and later upstream adopted: supported types with `name`, `device_api`
 * and `available_instances`, remove refused while the device is open, and unregister waiting
 * for open devices instead of destroying them under their users.
 *
 * Intended behaviour stated here; the seed's defects (the unregister loop that destroys the
 * same mdev twice, vendor destroy running under an open fd) are quirks of the implementation,
 * never branches of this spec. No command emits events: the intended core logs nothing.
 *
 * Decisions where the seed is silent or was changed by review:
 * - **Resources.** A parent owns a pool of `capacity` abstract units; some may be `reserved`
 *   by users outside the mdev core (for sdmdev, queue pairs taken by kernel crypto users).
 *   Type `i` (0-based) of a parent costs `2^i` units, like the vGPU example of the v7 review
 *   (1G of frame buffer; 128M, 256M and 512M types). `available_instances` of a type is
 *   `floor(free / cost)`, so one create can change every type's count, and it is never
 *   negative because a create needs `cost <= free`.
 * - **Create without room** fails EBUSY: the v7 core has no check of its own, the vendor's
 *   create callback refuses, and the one vendor specified here (the QM, via sdmdev) answers
 *   EBUSY when no queue pair is free.
 * - **UUID format** ({@link parseUuid}): 36 characters, hex digits with hyphens at offsets
 *   8, 13, 18 and 23, either case, optionally followed by one newline (what `echo` writes to
 *   the sysfs `create` file); no version or variant check (`uuid_le_to_bin` has none). The
 *   device's identity is the lower-case form. Unlike the v7 `uuid_le_to_bin` on the text
 *   before `:`, trailing characters are refused rather than ignored (upstream checks the
 *   length since). Duplicates are checked across all parents: the UUID is the device name on
 *   the mdev bus, so it must be unique system-wide (later upstream moved the check there too).
 * - **IOMMU groups.** Each mdev gets its own group, the lowest free id at or above
 *   {@link FIRST_MDEV_GROUP} (10), like the IDA behind `iommu_group_alloc`; a removed mdev's
 *   id is free for the next create. The default system topology's sdmdev groups 10 and 11
 *   are the first two an empty machine hands out.
 * - **Unregister** (`mdev_unregister_device`): from the moment it starts, creates on that
 *   parent fail ENODEV (the sysfs create files are gone); every closed device is removed at
 *   once; open devices stay until they are released, and each is removed at its release.
 *   The parent disappears with its last device. The op returns the number of open devices
 *   it still waits for (0: it completed at once). Unregistering an unknown parent, or one
 *   already unregistering, is ENODEV (the seed returns silently: the parent is off the list).
 * - **Open** is one per mdev (the VFIO group opens once): a second open is EBUSY.
 * - **Vendors.** A parent is registered either directly (`mdev.register`, vendor `"mdev"`: a
 *   generic vendor whose callbacks always succeed) or by sdmdev (vendor `"sdmdev"`, see
 *   `sdmdev.ts`, whose callbacks take queue pairs). The `mdev.*` ops refuse a parent of the
 *   other vendor with EPERM, so one user action is one op in a trace.
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import { deleteIn, lowestFreeId, setIn } from "./iommu.ts";
import {
  checkInvariants,
  type CommandSchema,
  type Errno,
  type Event,
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

export type { Errno, Event, Invariant, Ret, StepResult } from "./types.ts";

// ---------------------------------------------------------------------------------------------
// State

/** Who supplies a parent's callbacks: a generic vendor driver, or sdmdev (mdev v7, `parent_ops`). */
export type MdevVendor = "mdev" | "sdmdev";

/** One supported type of a parent (`mdev_supported_types/<id>/`, v7 review; mdev v8+). */
export interface MdevType {
  /** The type's directory name, `<parent name>-<index>`. */
  readonly id: string;
  /** The `name` attribute. */
  readonly name: string;
  /** The `device_api` attribute, e.g. `vfio-pci`. */
  readonly deviceApi: string;
  /** Resource units one instance of this type takes from the parent's pool. */
  readonly cost: number;
}

/** A registered parent device (`struct parent_device`, mdev v7). */
export interface MdevParent {
  /** The parent device's id. */
  readonly id: number;
  /** Whose callbacks run for its devices. */
  readonly vendor: MdevVendor;
  /** The parent's name; type ids derive from it. */
  readonly name: string;
  /** Supported types, in index order. */
  readonly types: readonly MdevType[];
  /** Resource units of the parent's pool. */
  readonly capacity: number;
  /** Units held by users outside the mdev core (for sdmdev: kernel crypto users' qps). */
  readonly reserved: number;
  /** Units held by live mdevs: the sum of their types' costs. */
  readonly used: number;
  /**
   * null while registered; once `mdev_unregister_device` has started, the value of
   * {@link MdevState.nextSerial} at that moment: every device it still has was created
   * before (a smaller serial).
   */
  readonly unregisterFrom: number | null;
}

/** A mediated device (`struct mdev_device`, mdev v7). */
export interface MdevDevice {
  /** Canonical lower-case UUID, the device name on the mdev bus. */
  readonly uuid: string;
  /** Parent id. */
  readonly parent: number;
  /** Type id. */
  readonly type: string;
  /** Its own IOMMU group (`mdev_attach_iommu`). */
  readonly group: number;
  /** Whether the device is open (the VFIO device fd of its group). */
  readonly open: boolean;
  /** Creation serial: the number of successful creates before this one. */
  readonly serial: number;
}

/** The mdev core's state (mdev v7, `parent_list` and each parent's `mdev_list`). */
export interface MdevState {
  /** Registered parents (including those being unregistered), by id. */
  readonly parents: ReadonlyMap<number, MdevParent>;
  /** Live devices, by canonical UUID. */
  readonly devices: ReadonlyMap<string, MdevDevice>;
  /** IOMMU group id to the UUID of the mdev that owns it. */
  readonly groups: ReadonlyMap<number, string>;
  /** Successful creates so far (the next device's serial). */
  readonly nextSerial: number;
}

/** The empty mdev core: no parent registered (mdev v7, `mdev_init`). */
export function initialMdevState(): MdevState {
  return { parents: new Map(), devices: new Map(), groups: new Map(), nextSerial: 0 };
}

/** Lowest IOMMU group id handed to an mdev (mdev v7, `mdev_attach_iommu`; see the module doc). */
export const FIRST_MDEV_GROUP: number = 10;

/** Most types a parent may declare (type `i` costs `2^i` units; mdev v7 review, types). */
export const MAX_MDEV_TYPES: number = 8;

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * Commands of the mdev core (mdev v7): `mdev.register` (`mdev_register_device`; `create` and
 * `remove` say whether the vendor supplies those mandatory callbacks), `mdev.unregister`
 * (`mdev_unregister_device`), `mdev.create` (`mdev_create_store` → `mdev_device_create`),
 * `mdev.remove` (`mdev_destroy_store` → `mdev_device_destroy`), `mdev.open` and
 * `mdev.release` (`vfio_mdev_open`/`vfio_mdev_close`, v7 2/4), `mdev.readTypes` (the type
 * attributes in sysfs). See {@link stepMdev} for returns and errnos.
 */
export type MdevCommand =
  | {
    readonly op: "mdev.register";
    readonly parent: number;
    readonly name: string;
    readonly deviceApi: string;
    readonly capacity: number;
    readonly types: number;
    readonly create: boolean;
    readonly remove: boolean;
  }
  | { readonly op: "mdev.unregister"; readonly parent: number }
  | {
    readonly op: "mdev.create";
    readonly parent: number;
    readonly type: string;
    readonly uuid: string;
  }
  | { readonly op: "mdev.remove"; readonly uuid: string }
  | { readonly op: "mdev.open"; readonly uuid: string }
  | { readonly op: "mdev.release"; readonly uuid: string }
  | { readonly op: "mdev.readTypes"; readonly parent: number };

/** Every mdev op and its argument fields (public API: validates traces, generates commands). */
export const mdevCommandSchema: CommandSchema<MdevCommand["op"]> = {
  "mdev.register": {
    parent: "int",
    name: "string",
    deviceApi: "string",
    capacity: "int",
    types: "int",
    create: "bool",
    remove: "bool",
  },
  "mdev.unregister": { parent: "int" },
  "mdev.create": { parent: "int", type: "string", uuid: "string" },
  "mdev.remove": { uuid: "string" },
  "mdev.open": { uuid: "string" },
  "mdev.release": { uuid: "string" },
  "mdev.readTypes": { parent: "int" },
};

/** The shape of every mdev op's success value ({@link MdevTypeInfo} for `readTypes`). */
export const mdevResults = {
  "mdev.register": "zero",
  "mdev.unregister": "int",
  "mdev.create": "int",
  "mdev.remove": "zero",
  "mdev.open": "zero",
  "mdev.release": "zero",
  "mdev.readTypes": {
    list: {
      record: { id: "string", name: "string", device_api: "string", available_instances: "int" },
    },
  },
} as const satisfies ResultTable<MdevCommand["op"]>;

/** Every `op` of {@link MdevCommand}, for validating traces (mdev v7). */
export const MDEV_OPS: readonly MdevCommand["op"][] = Object.keys(
  mdevCommandSchema,
) as MdevCommand["op"][];

/** One type's sysfs attributes, the `ok` value of `mdev.readTypes` (mdev_supported_types). */
export interface MdevTypeInfo {
  /** Type id (directory name). */
  readonly id: string;
  /** `name`. */
  readonly name: string;
  /** `device_api`. */
  readonly device_api: string;
  /** `available_instances`: how many more devices of this type a create would accept now. */
  readonly available_instances: number;
}

// ---------------------------------------------------------------------------------------------
// Helpers (also the building blocks sdmdev.ts composes)

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\n?$/;

/**
 * The canonical (lower-case, 36-character) form of a UUID as written to sysfs, or undefined
 * when it is malformed (mdev v7, `mdev_create_store` → `uuid_le_to_bin`; format in the
 * module doc).
 */
export function parseUuid(text: string): string | undefined {
  if (typeof text !== "string" || !UUID_RE.test(text)) return undefined;
  return text.slice(0, 36).toLowerCase();
}

/** Units of a parent's pool nobody holds (mdev v7 review, `available_instances`). */
export function freeUnits(parent: MdevParent): number {
  return parent.capacity - parent.reserved - parent.used;
}

/** `available_instances` of `type`: how many more it fits, never negative (mdev v7 review). */
export function availableInstances(parent: MdevParent, type: MdevType): number {
  return Math.max(0, Math.floor(freeUnits(parent) / type.cost));
}

/** The sysfs view of a parent's types (`mdev_supported_types`, mdev v7 review). */
export function typeInfos(parent: MdevParent): readonly MdevTypeInfo[] {
  return parent.types.map((t) => ({
    id: t.id,
    name: t.name,
    device_api: t.deviceApi,
    available_instances: availableInstances(parent, t),
  }));
}

/** Arguments of {@link registerParent} (mdev v7, `mdev_register_device`). */
export interface RegisterArgs {
  /** Parent device id, a positive integer. */
  readonly parent: number;
  /** Which vendor registers it. */
  readonly vendor: MdevVendor;
  /** Parent name: letters, digits, `_`, 1 to 32 characters. */
  readonly name: string;
  /** `device_api` of every type. */
  readonly deviceApi: string;
  /** Pool size in units, 0 to 65536. */
  readonly capacity: number;
  /** Number of types, 1 to {@link MAX_MDEV_TYPES}. */
  readonly types: number;
  /** Units held outside the mdev core from the start (normally 0). */
  readonly reserved: number;
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

/**
 * `mdev_register_device` (mdev v7): EINVAL for malformed arguments, EEXIST when the parent
 * is already registered (by either vendor, even while it is being unregistered).
 * The mandatory-callback check is the caller's (see `mdev.register`).
 */
export function registerParent(state: MdevState, a: RegisterArgs): MdevState | Errno {
  if (
    !isInt(a.parent, 1, Number.MAX_SAFE_INTEGER) || typeof a.name !== "string" ||
    !/^[A-Za-z0-9_]{1,32}$/.test(a.name) || typeof a.deviceApi !== "string" ||
    a.deviceApi.length === 0 || !isInt(a.capacity, 0, 0x10000) ||
    !isInt(a.types, 1, MAX_MDEV_TYPES) || !isInt(a.reserved, 0, a.capacity)
  ) {
    return "EINVAL";
  }
  if (state.parents.has(a.parent)) return "EEXIST";
  const types: MdevType[] = [];
  for (let i = 0; i < a.types; i++) {
    const id = `${a.name}-${i}`;
    types.push({ id, name: id, deviceApi: a.deviceApi, cost: 2 ** i });
  }
  const parent: MdevParent = {
    id: a.parent,
    vendor: a.vendor,
    name: a.name,
    types,
    capacity: a.capacity,
    reserved: a.reserved,
    used: 0,
    unregisterFrom: null,
  };
  return { ...state, parents: setIn(state.parents, a.parent, parent) };
}

/** A parent of `vendor` that is registered and not being unregistered; else ENODEV/EPERM. */
function liveParent(state: MdevState, id: number, vendor: MdevVendor): MdevParent | Errno {
  const p = state.parents.get(id);
  if (!p || p.unregisterFrom !== null) return "ENODEV";
  return p.vendor === vendor ? p : "EPERM";
}

/**
 * Sets the units a parent's users outside the mdev core hold (sdmdev: kernel crypto qps).
 * EINVAL when that would leave the pool overdrawn; ENODEV/EPERM as for create. While the
 * parent is being unregistered the units may only go down, and the parent goes when
 * neither devices nor reserved units are left.
 */
export function setReserved(
  state: MdevState,
  parentId: number,
  vendor: MdevVendor,
  reserved: number,
): MdevState | Errno {
  const p = state.parents.get(parentId);
  const unregistering = p !== undefined && p.unregisterFrom !== null;
  if (!unregistering) {
    const live = liveParent(state, parentId, vendor);
    if (typeof live === "string") return live;
  }
  if (p!.vendor !== vendor) return "EPERM";
  const limit = unregistering ? p!.reserved : p!.capacity - p!.used;
  if (!isInt(reserved, 0, limit)) return "EINVAL";
  const left = { ...p!, reserved };
  if (parentDone(left, state.devices)) return { ...state, parents: deleteIn(state.parents, p!.id) };
  return { ...state, parents: setIn(state.parents, p!.id, left) };
}

/**
 * Whether an unregistering parent has nothing left: no device and no reserved units (kernel
 * users of the vendor's pool), so it goes.
 */
function parentDone(p: MdevParent, devices: ReadonlyMap<string, MdevDevice>): boolean {
  return p.unregisterFrom !== null && p.used === 0 && p.reserved === 0 &&
    !hasDevices(devices, p.id);
}

/**
 * `mdev_device_create` (mdev v7) with the v7 review's types: ENODEV for an unknown parent or
 * type or a parent being unregistered, EPERM for a parent of another vendor, EINVAL for a
 * malformed UUID, EEXIST when a live device has that UUID, EBUSY when the type has no
 * available instance. The group id is the lowest free one in `groupIds` (the IOMMU core's
 * groups; by default the mdev core's own). Returns the new state and device.
 */
export function createDevice(
  state: MdevState,
  parentId: number,
  typeId: string,
  uuidText: string,
  vendor: MdevVendor,
  groupIds: ReadonlyMap<number, unknown> = state.groups,
): [MdevState, MdevDevice] | Errno {
  const p = liveParent(state, parentId, vendor);
  if (typeof p === "string") return p;
  const type = p.types.find((t) => t.id === typeId);
  if (!type) return "ENODEV";
  const uuid = parseUuid(uuidText);
  if (uuid === undefined) return "EINVAL";
  if (state.devices.has(uuid)) return "EEXIST";
  if (availableInstances(p, type) === 0) return "EBUSY";
  const group = lowestFreeId(groupIds, FIRST_MDEV_GROUP);
  const device: MdevDevice = {
    uuid,
    parent: p.id,
    type: type.id,
    group,
    open: false,
    serial: state.nextSerial,
  };
  return [{
    parents: setIn(state.parents, p.id, { ...p, used: p.used + type.cost }),
    devices: setIn(state.devices, uuid, device),
    groups: setIn(state.groups, group, uuid),
    nextSerial: state.nextSerial + 1,
  }, device];
}

/** Drops a device, its units and its group; the parent goes too if it was its last device. */
function dropDevice(state: MdevState, d: MdevDevice): MdevState {
  const p = state.parents.get(d.parent)!;
  const cost = p.types.find((t) => t.id === d.type)!.cost;
  const devices = deleteIn(state.devices, d.uuid);
  const left = { ...p, used: p.used - cost };
  const parents = parentDone(left, devices)
    ? deleteIn(state.parents, p.id)
    : setIn(state.parents, p.id, left);
  return { ...state, parents, devices, groups: deleteIn(state.groups, d.group) };
}

function hasDevices(devices: ReadonlyMap<string, MdevDevice>, parent: number): boolean {
  for (const d of devices.values()) if (d.parent === parent) return true;
  return false;
}

/** A live device by (possibly non-canonical) UUID text, checked against `vendor`. */
export function lookupDevice(
  state: MdevState,
  uuidText: string,
  vendor: MdevVendor,
): MdevDevice | Errno {
  const uuid = parseUuid(uuidText);
  if (uuid === undefined) return "EINVAL";
  const d = state.devices.get(uuid);
  if (!d) return "ENODEV";
  return state.parents.get(d.parent)!.vendor === vendor ? d : "EPERM";
}

/**
 * `mdev_device_destroy` (mdev v7) as later upstream settled it: EBUSY while the device is
 * open (never destroy under a user); EINVAL/ENODEV/EPERM as for {@link lookupDevice}.
 */
export function removeDevice(
  state: MdevState,
  uuidText: string,
  vendor: MdevVendor,
): [MdevState, MdevDevice] | Errno {
  const d = lookupDevice(state, uuidText, vendor);
  if (typeof d === "string") return d;
  if (d.open) return "EBUSY";
  return [dropDevice(state, d), d];
}

/** `vfio_mdev_open` (mdev v7 2/4): EBUSY when already open (one open per mdev). */
export function openDevice(
  state: MdevState,
  uuidText: string,
  vendor: MdevVendor,
): [MdevState, MdevDevice] | Errno {
  const d = lookupDevice(state, uuidText, vendor);
  if (typeof d === "string") return d;
  if (d.open) return "EBUSY";
  const opened = { ...d, open: true };
  return [{ ...state, devices: setIn(state.devices, d.uuid, opened) }, opened];
}

/** What {@link releaseDevice} did besides closing the device (mdev v7, `mdev_put_device`). */
export interface Released {
  /** The device as it was before the release. */
  readonly device: MdevDevice;
  /** The parent is being unregistered, so the device was removed. */
  readonly removed: boolean;
  /** That removal was the parent's last device: the parent is gone. */
  readonly parentGone: boolean;
}

/**
 * `vfio_mdev_close` (mdev v7 2/4): EINVAL when the device is not open. When its parent
 * is being unregistered the device is removed at once, and the parent with its last device.
 */
export function releaseDevice(
  state: MdevState,
  uuidText: string,
  vendor: MdevVendor,
): [MdevState, Released] | Errno {
  const d = lookupDevice(state, uuidText, vendor);
  if (typeof d === "string") return d;
  if (!d.open) return "EINVAL";
  const p = state.parents.get(d.parent)!;
  if (p.unregisterFrom === null) {
    const closed = { ...d, open: false };
    return [{ ...state, devices: setIn(state.devices, d.uuid, closed) }, {
      device: d,
      removed: false,
      parentGone: false,
    }];
  }
  const next = dropDevice(state, d);
  return [next, { device: d, removed: true, parentGone: !next.parents.has(p.id) }];
}

/** What {@link beginUnregister} did (mdev v7, `mdev_unregister_device`). */
export interface Unregistering {
  /** Closed devices removed at once, in creation order. */
  readonly removed: readonly MdevDevice[];
  /** Open devices the unregister waits for (0: the parent is gone already). */
  readonly pending: number;
}

/**
 * `mdev_unregister_device` (mdev v7), intended: stop creates, remove every closed device,
 * and leave open ones until released. ENODEV for an unknown parent or one already being
 * unregistered; EPERM for another vendor's parent.
 */
export function beginUnregister(
  state: MdevState,
  parentId: number,
  vendor: MdevVendor,
): [MdevState, Unregistering] | Errno {
  const p = liveParent(state, parentId, vendor);
  if (typeof p === "string") return p;
  let next: MdevState = {
    ...state,
    parents: setIn(state.parents, p.id, { ...p, unregisterFrom: state.nextSerial }),
  };
  const removed: MdevDevice[] = [];
  let pending = 0;
  for (const d of [...state.devices.values()].sort((x, y) => x.serial - y.serial)) {
    if (d.parent !== p.id) continue;
    if (d.open) {
      pending++;
    } else {
      removed.push(d);
      next = dropDevice(next, d);
    }
  }
  const left = next.parents.get(p.id);
  if (left && parentDone(left, next.devices)) {
    next = { ...next, parents: deleteIn(next.parents, p.id) };
  }
  return [next, { removed, pending }];
}

// ---------------------------------------------------------------------------------------------
// Step

const NO_EVENTS: readonly Event[] = Object.freeze([]);

function result<T>(
  state: MdevState,
  r: [MdevState, T] | MdevState | Errno,
  value: (t: T) => unknown,
): StepResult<MdevState> {
  if (typeof r === "string") return fail(state, r);
  if (Array.isArray(r)) return { state: r[0], ret: ok(value(r[1])), events: NO_EVENTS };
  return { state: r as MdevState, ret: ok(0), events: NO_EVENTS };
}

/** The command with op `K`. */
type MdevCmd<K extends MdevCommand["op"]> = Extract<MdevCommand, { readonly op: K }>;

/** Narrows a command whose op has just been matched to `op`. */
function as<K extends MdevCommand["op"]>(cmd: MdevCommand, _op: K): MdevCmd<K> {
  return cmd as MdevCmd<K>;
}

/**
 * Executes one mdev core command (mdev v7, `mdev_core.c`, `mdev_sysfs.c`; 2/4 `vfio_mdev.c`), for
 * parents of the generic vendor `"mdev"` (a parent registered by sdmdev gives EPERM):
 * - `mdev.register {parent, name, deviceApi, capacity, types, create, remove}`
 *   (`mdev_register_device`): ok(0). EINVAL when the vendor lacks the `create` or `remove`
 *   callback or an argument is malformed (see {@link RegisterArgs}); EEXIST when `parent`
 *   is already registered.
 * - `mdev.unregister {parent}` (`mdev_unregister_device`): ok(number of open devices still
 *   waited for); ENODEV when unknown or already unregistering.
 * - `mdev.create {parent, type, uuid}` (`mdev_device_create`): ok(group id of the new mdev);
 *   ENODEV (unknown/unregistering parent, unknown type), EINVAL (malformed UUID), EEXIST
 *   (live duplicate UUID), EBUSY (no available instance).
 * - `mdev.remove {uuid}` (`mdev_device_destroy`): ok(0); EINVAL (malformed), ENODEV
 *   (unknown), EBUSY (open).
 * - `mdev.open {uuid}`: ok(0); EINVAL, ENODEV, EBUSY (already open).
 * - `mdev.release {uuid}`: ok(0); EINVAL (malformed or not open), ENODEV.
 * - `mdev.readTypes {parent}`: ok({@link MdevTypeInfo}[]); ENODEV when not registered or
 *   being unregistered (its sysfs type directories are gone).
 */
export function stepMdev<C extends MdevCommand>(
  state: MdevState,
  cmd: C,
): TypedStepResult<MdevState, ResultsOf<typeof mdevResults>[C["op"]]>;
/** stepMdev of any command, its success value untyped. */
export function stepMdev(state: MdevState, cmd: MdevCommand): StepResult<MdevState> {
  const c = cmd;
  return match(cmd.op)
    .with("mdev.create", (op) => {
      const a = as(c, op);
      return result(state, createDevice(state, a.parent, a.type, a.uuid, "mdev"), (d) => d.group);
    })
    .with("mdev.open", (op) => result(state, openDevice(state, as(c, op).uuid, "mdev"), () => 0))
    .with("mdev.release", (op) => {
      return result(state, releaseDevice(state, as(c, op).uuid, "mdev"), () => 0);
    })
    .with("mdev.remove", (op) => {
      return result(state, removeDevice(state, as(c, op).uuid, "mdev"), () => 0);
    })
    .with("mdev.readTypes", (op): StepResult<MdevState> => {
      const p = liveParent(state, as(c, op).parent, "mdev");
      if (typeof p === "string") return fail(state, p);
      return { state, ret: ok(typeInfos(p)), events: NO_EVENTS };
    })
    .with("mdev.register", (op) => {
      const a = as(c, op);
      if (a.create !== true || a.remove !== true) return fail(state, "EINVAL");
      return result(state, registerParent(state, { ...a, vendor: "mdev", reserved: 0 }), () => 0);
    })
    .with("mdev.unregister", (op) => {
      return result(state, beginUnregister(state, as(c, op).parent, "mdev"), (u) => u.pending);
    })
    .exhaustive(unknownOp);
}

// ---------------------------------------------------------------------------------------------
// Invariants

function eachParent(
  s: MdevState,
  f: (p: MdevParent) => string | undefined,
): string | undefined {
  for (const p of s.parents.values()) {
    const msg = f(p);
    if (msg !== undefined) return `parent ${p.id}: ${msg}`;
  }
  return undefined;
}

function eachDevice(
  s: MdevState,
  f: (d: MdevDevice) => string | undefined,
): string | undefined {
  for (const d of s.devices.values()) {
    const msg = f(d);
    if (msg !== undefined) return `mdev ${d.uuid}: ${msg}`;
  }
  return undefined;
}

/**
 * The mdev core invariants (DOMAIN.md §3), each a named predicate over {@link MdevState}
 * (mdev v7 as a whole):
 * - `mdev.available-nonnegative` (always): no pool is overdrawn: `reserved` and `used` are
 *   non-negative and `capacity - reserved - used >= 0`, so every `available_instances` is.
 * - `mdev.one-group-per-mdev` (always): group ids are at least {@link FIRST_MDEV_GROUP} and
 *   `groups` and the devices' `group` fields are one bijection.
 * - `mdev.no-create-after-unregister` (always): every device of a parent being unregistered
 *   was created before the unregister started, and is open (closed ones are removed).
 * - `mdev.units-balance` (between-ops): every device's parent and type exist, a parent's
 *   `used` is the sum of its devices' costs, an unregistering parent has a device or reserved
 *   units (kernel users it waits for), keys are
 *   canonical UUIDs and serials are unique and below `nextSerial`.
 */
export const mdevInvariants: readonly Invariant<MdevState>[] = [
  {
    name: "mdev.available-nonnegative",
    scope: "always",
    check: (s) =>
      eachParent(
        s,
        (p) =>
          p.reserved < 0 || p.used < 0 || freeUnits(p) < 0
            ? `capacity ${p.capacity}, reserved ${p.reserved}, used ${p.used}`
            : undefined,
      ),
  },
  {
    name: "mdev.one-group-per-mdev",
    scope: "always",
    check: (s) => {
      if (s.groups.size !== s.devices.size) {
        return `${s.groups.size} groups for ${s.devices.size} mdevs`;
      }
      for (const [g, uuid] of s.groups) {
        if (g < FIRST_MDEV_GROUP) return `group ${g} below ${FIRST_MDEV_GROUP}`;
        const d = s.devices.get(uuid);
        if (!d || d.group !== g) return `group ${g} names ${uuid}, which is in ${d?.group}`;
      }
      return undefined;
    },
  },
  {
    name: "mdev.no-create-after-unregister",
    scope: "always",
    check: (s) =>
      eachDevice(s, (d) => {
        const from = s.parents.get(d.parent)?.unregisterFrom;
        if (from === null || from === undefined) return undefined;
        if (d.serial >= from) return `created (#${d.serial}) after unregister began (#${from})`;
        return d.open ? undefined : "closed but not removed while its parent unregisters";
      }),
  },
  {
    name: "mdev.units-balance",
    scope: "between-ops",
    check: (s) => {
      const used = new Map<number, number>();
      const serials = new Set<number>();
      const bad = eachDevice(s, (d) => {
        const p = s.parents.get(d.parent);
        if (!p) return `parent ${d.parent} is not registered`;
        const t = p.types.find((x) => x.id === d.type);
        if (!t) return `type ${d.type} unknown to parent ${p.id}`;
        if (parseUuid(d.uuid) !== d.uuid || s.devices.get(d.uuid) !== d) {
          return "not keyed by its canonical UUID";
        }
        if (serials.has(d.serial) || d.serial < 0 || d.serial >= s.nextSerial) {
          return `serial ${d.serial} reused or out of range`;
        }
        serials.add(d.serial);
        used.set(p.id, (used.get(p.id) ?? 0) + t.cost);
        return undefined;
      });
      if (bad !== undefined) return bad;
      return eachParent(s, (p) => {
        const u = used.get(p.id) ?? 0;
        if (p.used !== u) return `used ${p.used}, its devices cost ${u}`;
        return parentDone(p, s.devices)
          ? "unregistering with no device and no reserved unit left, yet still registered"
          : undefined;
      });
    },
  },
];

/** The names of the violated {@link mdevInvariants} with their messages (mdev v7). */
export function checkMdevInvariants(state: MdevState): string[] {
  return checkInvariants(mdevInvariants, state);
}

/** The mdev core as one record. */
export const mdevSpec: MachineSpec<MdevState, MdevCommand> = {
  component: "mdev",
  initial: initialMdevState,
  step: stepMdev,
  invariants: mdevInvariants,
  schema: mdevCommandSchema,
  results: mdevResults,
};
