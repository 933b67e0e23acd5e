/**
 * Unit tests of the type1 pinning rules for vendor mdevs (DOMAIN.md §3; spec/type1.ts): the
 * local domain, MAP_DMA recorded or pinned, vfio_pin_pages / vfio_unpin_pages, locked_vm,
 * RLIMIT_MEMLOCK, invalidation on unmap and cleanup on the last detach. One behaviour per step.
 */
import assert from "node:assert/strict";
import {
  type Command,
  PAGE_SIZE,
  PIN_PAGES_MAX,
  pinCount,
  step,
  type SystemState,
  violations,
} from "../spec/mod.ts";
import { opened, run } from "./type1_steps.ts";

const P = PAGE_SIZE;

/** The errno `cmd` fails with in `state` (asserting that it fails and changes nothing). */
function refused(state: SystemState, cmd: Command): string {
  const r = step(state, cmd);
  assert.ok("err" in r.ret, `${cmd.op} succeeded: ${JSON.stringify(r.ret)}`);
  assert.equal(r.state, state, "a refused command changes nothing");
  return r.ret.err;
}

/** Container 1 with only its vendor mdev (group 20) and pages 0–1 mapped at IOVA 0. */
function vendorOnly(): SystemState {
  return run([
    { op: "type1.attach", container: 1, group: 20 },
    { op: "type1.setIommu", container: 1 },
    { op: "type1.map", container: 1, iova: 0, size: 2 * P, vaddr: 8 * P },
  ], opened());
}

const pin = (iova: number, pages: number, group = 20): Command => ({
  op: "type1.pin",
  container: 1,
  group,
  iova,
  pages,
});
const unpin = (iova: number, pages: number): Command => ({
  op: "type1.unpin",
  container: 1,
  group: 20,
  iova,
  pages,
});

Deno.test("type1 pinning: the local domain and MAP_DMA", async (t) => {
  await t.step("a vendor mdev joins the local domain, no IOMMU domain", () => {
    const c = vendorOnly().type1.containers.get(1)!;
    assert.deepEqual(c.localGroups, [20]);
    assert.deepEqual(c.domains, []);
  });
  await t.step("with no IOMMU-backed domain MAP_DMA records only: nothing pinned", () => {
    const s = vendorOnly();
    assert.equal(s.type1.containers.get(1)!.dmas.length, 1);
    assert.equal(pinCount(s.type1, 1, 8 * P), 0);
    assert.equal(s.type1.lockedVm.get(1), undefined);
  });
  await t.step("the first IOMMU-backed domain pins the recorded pages", () => {
    const s = run([{ op: "type1.attach", container: 1, group: 2 }], vendorOnly());
    assert.equal(pinCount(s.type1, 1, 8 * P), 1);
    assert.equal(s.type1.lockedVm.get(1), 2);
  });
  await t.step("...and past RLIMIT_MEMLOCK its attach is ENOMEM", () => {
    const s = run(
      [{ op: "type1.map", container: 1, iova: 2 * P, size: 3 * P, vaddr: 0 }],
      vendorOnly(),
    );
    assert.equal(refused(s, { op: "type1.attach", container: 1, group: 2 }), "ENOMEM");
  });
  await t.step("when the last IOMMU-backed domain goes the mappings stay, unpinned", () => {
    const s = run([
      { op: "type1.attach", container: 1, group: 2 },
      { op: "type1.detach", container: 1, group: 2 },
    ], vendorOnly());
    assert.equal(s.type1.containers.get(1)!.dmas.length, 1);
    assert.equal(s.type1.pins.size, 0);
    assert.equal(s.type1.lockedVm.size, 0);
  });
});

Deno.test("type1 pinning: vfio_pin_pages and vfio_unpin_pages", async (t) => {
  await t.step("a pin inside a mapping pins and accounts the pages behind it", () => {
    const s = run([pin(0, 2)], vendorOnly());
    assert.deepEqual(step(vendorOnly(), pin(0, 2)).ret, { ok: 2 });
    assert.deepEqual([...s.type1.containers.get(1)!.vendorPins], [[0, 1], [P, 1]]);
    assert.equal(pinCount(s.type1, 1, 9 * P), 1);
    assert.equal(s.type1.lockedVm.get(1), 2);
  });
  await t.step("the first page of a mapping can be pinned on its own", () => {
    assert.deepEqual(step(vendorOnly(), pin(0, 1)).ret, { ok: 1 });
  });
  await t.step("all or nothing: one page outside every mapping is EINVAL", () => {
    assert.equal(refused(vendorOnly(), pin(P, 2)), "EINVAL");
  });
  await t.step("page counts outside 1..512 and unaligned IOVAs are EINVAL", () => {
    const s = vendorOnly();
    assert.equal(refused(s, pin(0, 0)), "EINVAL");
    assert.equal(refused(s, pin(0, PIN_PAGES_MAX + 1)), "EINVAL");
    assert.equal(refused(s, pin(1, 1)), "EINVAL");
  });
  await t.step("only through a group of the local domain", () => {
    const s = run([{ op: "type1.attach", container: 1, group: 2 }], vendorOnly());
    assert.equal(refused(s, pin(0, 1, 2)), "EINVAL");
    assert.equal(refused(opened(), pin(0, 1)), "EINVAL");
  });
  await t.step("a page pinned twice is accounted once and needs two unpins", () => {
    let s = run([pin(0, 1), pin(0, 1)], vendorOnly());
    assert.equal(s.type1.lockedVm.get(1), 1);
    s = run([unpin(0, 1)], s);
    assert.equal(pinCount(s.type1, 1, 8 * P), 1);
    s = run([unpin(0, 1)], s);
    assert.equal(s.type1.lockedVm.size, 0);
    assert.equal(refused(s, unpin(0, 1)), "EINVAL");
  });
  await t.step("a page MAP_DMA pinned is not accounted again by a vendor's pin", () => {
    const s = run([{ op: "type1.attach", container: 1, group: 2 }, pin(0, 2)], vendorOnly());
    assert.equal(pinCount(s.type1, 1, 8 * P), 2);
    assert.equal(s.type1.lockedVm.get(1), 2);
    const back = run([unpin(0, 2)], s);
    assert.equal(back.type1.lockedVm.get(1), 2, "MAP_DMA still pins both pages");
  });
  await t.step("new pages past RLIMIT_MEMLOCK are ENOMEM", () => {
    const s = run([
      { op: "type1.map", container: 1, iova: 2 * P, size: 3 * P, vaddr: 0 },
      pin(0, 2),
    ], vendorOnly());
    assert.equal(refused(s, pin(2 * P, 3)), "ENOMEM");
    assert.deepEqual(step(s, pin(2 * P, 2)).ret, { ok: 2 }, "4 pages is the limit");
  });
});

Deno.test("type1 pinning: invalidation and cleanup", async (t) => {
  await t.step("UNMAP_DMA of a pinned range unpins the vendor's pages first", () => {
    const s = run(
      [pin(0, 2), { op: "type1.unmap", container: 1, iova: 0, size: 2 * P }],
      vendorOnly(),
    );
    assert.equal(s.type1.containers.get(1)!.vendorPins.size, 0);
    assert.equal(s.type1.pins.size, 0);
    assert.equal(s.type1.lockedVm.size, 0);
  });
  await t.step("the last vendor detach drops its pins and, with no IOMMU domain, mappings", () => {
    const s = run([pin(0, 2), { op: "type1.detach", container: 1, group: 20 }], vendorOnly());
    const c = s.type1.containers.get(1)!;
    assert.deepEqual([c.localGroups, c.dmas, c.vendorPins.size], [[], [], 0]);
    assert.equal(s.type1.pins.size, 0);
    assert.equal(s.type1.lockedVm.size, 0);
  });
  await t.step("with an IOMMU domain left the mappings stay pinned by MAP_DMA", () => {
    const s = run([
      { op: "type1.attach", container: 1, group: 2 },
      pin(0, 1),
      { op: "type1.detach", container: 1, group: 20 },
    ], vendorOnly());
    assert.equal(s.type1.containers.get(1)!.dmas.length, 1);
    assert.equal(pinCount(s.type1, 1, 8 * P), 1);
    assert.equal(s.type1.lockedVm.get(1), 2);
  });
  await t.step("the invariants name a stale pin and wrong accounting", () => {
    const s = run([pin(0, 1)], vendorOnly());
    const c = s.type1.containers.get(1)!;
    const stale = {
      ...s,
      type1: { ...s.type1, containers: new Map([[1, { ...c, dmas: [] }]]) },
    };
    assert.ok(violations(stale).some((v) => v.startsWith("vendor-pins-inside-mappings")));
    const overcounted = { ...s, type1: { ...s.type1, lockedVm: new Map([[1, 2]]) } };
    assert.ok(violations(overcounted).some((v) => v.startsWith("locked-vm-counts-pinned-pages")));
  });
});
