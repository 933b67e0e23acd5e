/**
 * Unit tests of fork and copy-on-write in process address spaces (impl/mem/mm.ts): the child
 * maps the parent's frames, the first write to a shared frame gives the writer a copy, a
 * frame's owner stays one of the processes that map it, and a page pinned for DMA is copied
 * for the child at fork when asked to (page_needs_cow_for_dma) and shared otherwise, a child's
 * release (exit_mmap) gives its shared frames back and frees its own; and in the
 * type1 view, where device DMA lands after a fork and the parent's store.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../impl/mem/mm.ts";
import { PhysMem } from "../impl/mem/phys.ts";
import type { Quirks } from "../impl/quirks.ts";
import { Type1Adapter } from "../model/adapters/type1.ts";
import type { Command } from "../spec/system.ts";
import { PAGE_SIZE, type Ret } from "../spec/types.ts";

const P = PAGE_SIZE;

/** Process 1 with a byte 7 written at the start of its pages 0 and 1. */
function parent(): AddressSpace {
  const mm = new AddressSpace(1, new PhysMem());
  mm.write(0, 0, new Uint8Array([7]));
  mm.write(P, 0, new Uint8Array([7]));
  return mm;
}

Deno.test("fork and copy-on-write", async (t) => {
  await t.step("the child maps the parent's frames, each mapped twice", () => {
    const p = parent();
    const c = p.fork(2, true);
    assert.equal(c.mapped(0), p.mapped(0));
    assert.equal(p.mapped(0)!.maps, 2);
    assert.deepEqual(p.mapped(0)!.owner, { kind: "user", mm: 1, vaddr: 0 });
    assert.equal(c.mapped(2 * P), undefined, "a page the parent never touched stays absent");
  });
  await t.step("the child's write gets it a copy; the parent keeps the frame alone", () => {
    const p = parent();
    const c = p.fork(2, true);
    const before = p.mapped(0)!;
    c.write(0, 1, new Uint8Array([9]));
    assert.notEqual(c.mapped(0), before);
    assert.equal(p.mapped(0), before);
    assert.equal(before.maps, 1);
    assert.deepEqual(c.mapped(0)!.owner, { kind: "user", mm: 2, vaddr: 0 });
    assert.deepEqual([...c.mapped(0)!.bytes!.subarray(0, 2)], [7, 9], "the copy has the data");
    assert.deepEqual([...before.bytes!.subarray(0, 2)], [7, 0], "the parent does not see it");
  });
  await t.step("the parent's write: the old frame is the child's now, and says so", () => {
    const p = parent();
    const c = p.fork(2, true);
    const before = p.mapped(0)!;
    p.write(0, 0, new Uint8Array([8]));
    assert.notEqual(p.mapped(0), before);
    assert.equal(c.mapped(0), before);
    assert.deepEqual(before.owner, { kind: "user", mm: 2, vaddr: 0 });
    assert.equal(before.maps, 1);
    assert.equal(c.mapped(P), p.mapped(P), "other pages stay shared");
  });
  await t.step("a write to a frame no longer shared writes in place", () => {
    const p = parent();
    const c = p.fork(2, true);
    c.write(0, 0, new Uint8Array([9]));
    const mine = p.mapped(0)!;
    p.write(0, 0, new Uint8Array([8]));
    assert.equal(p.mapped(0), mine);
  });
  await t.step("a pin is a write's lookup: it breaks copy-on-write first", () => {
    const p = parent();
    const c = p.fork(2, true);
    const shared = p.mapped(0)!;
    const pinned = p.pin(0);
    assert.notEqual(pinned, shared);
    assert.equal(c.mapped(0), shared);
    assert.equal(pinned.pins, 1);
    assert.equal(shared.pins, 0);
  });
  await t.step("a grandchild shares too; the owner moves to a process still mapping it", () => {
    const p = parent();
    const c = p.fork(2, true);
    const g = c.fork(3, true);
    const frame = p.mapped(0)!;
    assert.equal(frame.maps, 3);
    p.write(0, 0, new Uint8Array([8]));
    assert.equal(frame.maps, 2);
    const owner = frame.owner!;
    assert.ok(owner.kind === "user" && [2, 3].includes(owner.mm));
    assert.equal((owner.mm === 2 ? c : g).mapped(0), frame);
  });
  await t.step("the child starts with nothing pinned and the parent's memlock limit", () => {
    const p = parent();
    p.memlockPages = 4;
    p.pin(0);
    p.lockedVm = 1;
    const c = p.fork(2, true);
    assert.deepEqual([c.lockedVm, c.memlockPages, c.pinned()], [0, 4, []]);
  });
  await t.step("a child's release gives shared frames back and frees its own", () => {
    const phys = new PhysMem();
    const p = new AddressSpace(1, phys);
    p.write(0, 0, new Uint8Array([7]));
    p.write(P, 0, new Uint8Array([7]));
    const c = p.fork(2, true);
    const shared = p.mapped(0)!;
    c.write(P, 0, new Uint8Array([9]));
    const own = c.mapped(P)!;
    p.write(2 * P, 0, new Uint8Array([1]));
    const left = p.mapped(P)!;
    c.release();
    assert.equal(shared.maps, 1, "the parent maps it alone again");
    assert.equal(phys.get(own.pfn), undefined, "the child's copy is freed");
    assert.equal(own.owner, null);
    assert.equal(c.mapped(0), undefined);
    p.write(0, 0, new Uint8Array([8]));
    assert.equal(p.mapped(0), shared, "the parent's store writes in place: no copy");
    assert.equal(p.mapped(P), left);
  });
  await t.step("a child's release after the parent's store leaves the old frame to nobody", () => {
    const phys = new PhysMem();
    const p = new AddressSpace(1, phys);
    p.write(0, 0, new Uint8Array([7]));
    const c = p.fork(2, true);
    const old = p.mapped(0)!;
    p.write(0, 0, new Uint8Array([8]));
    assert.deepEqual(old.owner, { kind: "user", mm: 2, vaddr: 0 });
    c.release();
    assert.equal(phys.get(old.pfn), undefined, "the frame only the child mapped is freed");
  });
  await t.step("a pinned frame only the child still maps is not freed by its release", () => {
    const phys = new PhysMem();
    const p = new AddressSpace(1, phys);
    const pinned = p.pin(0);
    const c = p.fork(2, false); // shared copy-on-write, as in 2018
    p.write(0, 0, new Uint8Array([8])); // the parent moves off the pinned frame
    assert.equal(c.mapped(0), pinned);
    c.release();
    assert.equal(phys.get(pinned.pfn), pinned, "the pin holds its page");
    assert.equal(pinned.pins, 1);
  });
});

Deno.test("fork of a page pinned for DMA", async (t) => {
  await t.step("copied for the child at once: the parent keeps the pinned frame", () => {
    const p = parent();
    const pinned = p.pin(0);
    const c = p.fork(2, true);
    assert.notEqual(c.mapped(0), pinned);
    assert.equal(pinned.maps, 1);
    assert.deepEqual([...c.mapped(0)!.bytes!.subarray(0, 1)], [7]);
    p.write(0, 0, new Uint8Array([8]));
    assert.equal(p.mapped(0), pinned, "the parent's write lands on the frame the device uses");
  });
  await t.step("without the early copy it is shared, and the parent's write moves off it", () => {
    const p = parent();
    const pinned = p.pin(0);
    const c = p.fork(2, false);
    assert.equal(c.mapped(0), pinned);
    p.write(0, 0, new Uint8Array([8]));
    assert.notEqual(p.mapped(0), pinned);
    assert.equal(c.mapped(0), pinned);
    assert.deepEqual(pinned.owner, { kind: "user", mm: 2, vaddr: 0 });
  });
});

Deno.test("the type1 view: device DMA after a fork and the parent's store", async (t) => {
  /** The page device DMA at IOVA 0 of group 1 reaches after map, fork and the parent's store. */
  async function reached(quirks: Quirks): Promise<Ret> {
    const a = new Type1Adapter({ quirks });
    const cmds: Command[] = [
      { op: "type1.openGroup", container: 2, group: 1 },
      { op: "type1.attach", container: 2, group: 1 },
      { op: "type1.setIommu", container: 2 },
      { op: "type1.map", container: 2, iova: 0, size: P, vaddr: 0 },
      { op: "mm.fork", mm: 2, child: 3 },
      { op: "mm.write", mm: 2, vaddr: 0 },
    ];
    for (const cmd of cmds) assert.ok("ok" in (await a.exec(cmd)).ret, cmd.op);
    return (await a.exec({ op: "iommu.dma", group: 1, iova: 0 })).ret;
  }
  await t.step("the parent's page, as the spec says", async () => {
    assert.deepEqual(await reached({}), { ok: { kind: "user", mm: 2, vaddr: 0 } });
  });
  await t.step("with forkCowMovesPinnedPage, the child's", async () => {
    const quirk = { forkCowMovesPinnedPage: true };
    assert.deepEqual(await reached(quirk), { ok: { kind: "user", mm: 3, vaddr: 0 } });
  });
});
