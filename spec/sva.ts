/**
 * Shared virtual addressing (SVA): a process's address space bound to PASID-capable devices
 * (the VFIO_IOMMU_BIND_PROCESS path the seed's wd library calls, RFCv2 7/7
 * `_wd_bind_process`, on the iommu-sva layer of seed 002's thread: `iommu_sva_bind_device`,
 * `iommu_sva_unbind_device`, `iommu_sva_find`). PASIDs come from the IOASID allocator
 * ({@link IoasidState}, `spec/ioasid.ts`), in the SVA set {@link SVA_SET}, with the mm as their
 * private value, so that the I/O page-fault path finds a PASID's mm by
 * `ioasid_find(SVA_SET, pasid)`.
 *
 * Intended behaviour:
 * - **One PASID per mm**, shared by all its bonds: the first bind of an mm allocates it, later
 *   binds (of any device) reuse it.
 * - **Bonds are refcounted per (device, mm)**: each bind takes one, each unbind drops one; the
 *   device's PASID table has an entry for the PASID while the device has a bond with the mm
 *   (abstracted here: the entry is the bond).
 * - **Two lifetimes of an mm**: its users (`mm_users`, the process) and its structure
 *   (`mm_count`, which every bond holds with `mmgrab`). When the users drop to 0 (exit), the
 *   page table goes: a DMA tagged with the PASID faults from then on. The structure and the
 *   PASID stay until the last bond is gone; only then is the PASID freed.
 * - **Teardown order** (kept by the callers: in the stack a running queue holds a bond of its
 *   own, dropped only after it stopped): stop the device's use of the PASID, drain its
 *   requests and faults, unbind, then free the PASID.
 * - **Translation**: a DMA tagged with PASID p walks the page table of p's mm (the process's own
 *   memory: every address is anonymous memory faulted in on first touch, by the CPU or by the
 *   I/O page-fault handler alike) if the device has p in its PASID table and the mm still has
 *   users; otherwise it is an I/O page fault.
 *
 * @module
 */
import { IOASID_MAX, IOASID_MIN, type IoasidState, stepIoasid } from "./ioasid.ts";
import { deleteIn, setIn, type Target } from "./iommu.ts";
import type { Errno, Invariant } from "./types.ts";

/** The `ioasid_set` iommu-sva allocates its PASIDs in (seed 002's `shared_pasid_set`). */
export const SVA_SET = 1;

/** One mm bound to devices (`struct io_mm`). */
export interface SvaMm {
  /** Its PASID. */
  readonly pasid: number;
  /** Bonds by device (PCI function id): how many binds each holds, no zero entries. */
  readonly bonds: ReadonlyMap<number, number>;
}

/** The SVA layer: the PASID space and the bound mms. */
export interface SvaState {
  /** The IOASID space the PASIDs come from. */
  readonly ioasid: IoasidState;
  /** Every mm with a bond, by mm id. */
  readonly mms: ReadonlyMap<number, SvaMm>;
  /**
   * The mms whose users are gone (`mm_users` 0: their processes exited), ascending: no page
   * table, and none can be bound again.
   */
  readonly exited: readonly number[];
}

/** No mm bound, no PASID allocated. */
export function initialSvaState(): SvaState {
  return {
    ioasid: { ids: new Map(), sets: new Map(), allocators: [] },
    mms: new Map(),
    exited: [],
  };
}

/**
 * `iommu_sva_bind_device(device, mm)`: one more bond, and the mm's PASID (allocated on its first
 * bond). EINVAL when the mm has no users left (its process exited), ENOSPC when the space is full.
 */
export function svaBind(s: SvaState, device: number, mm: number): [SvaState, number] | Errno {
  if (s.exited.includes(mm)) return "EINVAL";
  const old = s.mms.get(mm);
  if (old) {
    const bonds = setIn(old.bonds, device, (old.bonds.get(device) ?? 0) + 1);
    return [{ ...s, mms: setIn(s.mms, mm, { ...old, bonds }) }, old.pasid];
  }
  const r = stepIoasid(s.ioasid, {
    op: "ioasid.alloc",
    set: SVA_SET,
    min: IOASID_MIN,
    max: IOASID_MAX,
    private: mm,
  });
  if (!("ok" in r.ret)) return r.ret.err;
  const pasid = r.ret.ok;
  const entry: SvaMm = { pasid, bonds: new Map([[device, 1]]) };
  return [{ ...s, ioasid: r.state, mms: setIn(s.mms, mm, entry) }, pasid];
}

/**
 * `iommu_sva_unbind_device`: drops one bond of (`device`, `mm`); with the mm's last bond its
 * PASID is freed. EINVAL without such a bond. The caller stopped the device's use of the PASID.
 */
export function svaUnbind(s: SvaState, device: number, mm: number): SvaState | "EINVAL" {
  const old = s.mms.get(mm);
  const held = old?.bonds.get(device) ?? 0;
  if (!old || held === 0) return "EINVAL";
  const bonds = held === 1 ? deleteIn(old.bonds, device) : setIn(old.bonds, device, held - 1);
  if (bonds.size > 0) return { ...s, mms: setIn(s.mms, mm, { ...old, bonds }) };
  const freed = stepIoasid(s.ioasid, { op: "ioasid.free", id: old.pasid }).state;
  return { ...s, ioasid: freed, mms: deleteIn(s.mms, mm) };
}

/** `exit_mm` of a bound mm: no users left, so no page table; the bonds and the PASID stay. */
export function svaExitMm(s: SvaState, mm: number): SvaState {
  if (s.exited.includes(mm)) return s;
  return { ...s, exited: [...s.exited, mm].sort((a, b) => a - b) };
}

/** `iommu_sva_find`: the mm PASID `pasid` belongs to (`ioasid_find` in {@link SVA_SET}). */
export function pasidOwner(s: SvaState, pasid: number): number | undefined {
  const e = s.ioasid.ids.get(pasid);
  return e?.set === SVA_SET && e.private !== null ? e.private : undefined;
}

/** Each PASID of the SVA set and the mm it belongs to (what {@link pasidOwner} answers). */
export function pasidOwners(s: SvaState): ReadonlyMap<number, number> {
  const out = new Map<number, number>();
  for (const id of s.ioasid.sets.get(SVA_SET) ?? []) {
    const mm = pasidOwner(s, id);
    if (mm !== undefined) out.set(id, mm);
  }
  return out;
}

/** The mms `device` has a bond with (its PASID table), by PASID. */
export function pasidTable(s: SvaState, device: number): ReadonlyMap<number, number> {
  const out = new Map<number, number>();
  for (const [mm, e] of s.mms) if (e.bonds.has(device)) out.set(e.pasid, mm);
  return out;
}

/**
 * A DMA of `device` tagged with `pasid` at `vaddr`: the page of the mm it walks, or undefined
 * for an I/O page fault (no such entry in the device's PASID table, or an mm without users).
 */
export function walkPasid(
  s: SvaState,
  device: number,
  pasid: number,
  vaddr: number,
): Target | undefined {
  const mm = pasidTable(s, device).get(pasid);
  if (mm === undefined || s.exited.includes(mm)) return undefined;
  return { kind: "user", mm, vaddr };
}

/**
 * What must hold of the SVA layer:
 * - `sva.pasid-allocated` (always): every bound mm's PASID is allocated in {@link SVA_SET} with
 *   that mm as its private value (no id freed, or reused, while a bond references it);
 * - `sva.one-pasid-per-mm` (always): no two bound mms share a PASID, every bound mm has a bond,
 *   and every PASID of the SVA set belongs to a bound mm.
 */
export const svaInvariants: readonly Invariant<SvaState>[] = [
  {
    name: "sva.pasid-allocated",
    scope: "always",
    check: (s) => {
      for (const [mm, e] of s.mms) {
        const owner = pasidOwner(s, e.pasid);
        if (owner !== mm) return `mm ${mm}: PASID ${e.pasid} belongs to ${owner ?? "nobody"}`;
      }
      return undefined;
    },
  },
  {
    name: "sva.one-pasid-per-mm",
    scope: "always",
    check: (s) => {
      const seen = new Map<number, number>();
      for (const [mm, e] of s.mms) {
        if (e.bonds.size === 0) return `mm ${mm} is bound to no device`;
        const other = seen.get(e.pasid);
        if (other !== undefined) return `mms ${other} and ${mm} share PASID ${e.pasid}`;
        seen.set(e.pasid, mm);
      }
      for (const id of s.ioasid.sets.get(SVA_SET) ?? []) {
        if (!seen.has(id)) return `PASID ${id} is allocated for no bound mm`;
      }
      return undefined;
    },
  },
];
