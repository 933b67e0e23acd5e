/** Unit tests of the IOMMU and type1 spec rules (DOMAIN.md §1–2), one behaviour per step. */
import assert from "node:assert/strict";
import { type Command, initialState, PAGE_SIZE, pinCount, sharedRef, step } from "../spec/mod.ts";
import { opened, run } from "./type1_steps.ts";

const P = PAGE_SIZE;

const sdmdevIn1: Command[] = [
  { op: "type1.attach", container: 1, group: 10 },
  { op: "type1.setIommu", container: 1 },
];

Deno.test("iommu share/unshare", async (t) => {
  await t.step("share returns the default domain and counts per owner", () => {
    const r = step(initialState(), { op: "iommu.share", group: 1, owner: 1 });
    assert.deepEqual(r.ret, { ok: 1 });
    assert.equal(sharedRef(r.state.iommu.groups.get(1)!), 1);
  });
  await t.step("unshare without a matching share is refused", () => {
    const s = run([{ op: "iommu.share", group: 1, owner: 1 }]);
    assert.deepEqual(step(s, { op: "iommu.unshare", group: 1, owner: 2 }).ret, { err: "EINVAL" });
    assert.deepEqual(step(initialState(), { op: "iommu.unshare", group: 1, owner: 1 }).ret, {
      err: "EINVAL",
    });
  });
  await t.step("a group attached elsewhere cannot be shared", () => {
    const s = run([{ op: "type1.attach", container: 2, group: 1 }, {
      op: "type1.setIommu",
      container: 2,
    }]);
    assert.deepEqual(step(s, { op: "iommu.share", group: 1, owner: 1 }).ret, { err: "EINVAL" });
  });
  await t.step("a shared group cannot be attached to another domain", () => {
    const s = run([{ op: "iommu.share", group: 1, owner: 1 }, {
      op: "type1.attach",
      container: 2,
      group: 1,
    }]);
    assert.deepEqual(step(s, { op: "type1.setIommu", container: 2 }).ret, { err: "EBUSY" });
  });
  await t.step("unknown groups are ENODEV", () => {
    assert.deepEqual(step(initialState(), { op: "iommu.share", group: 42, owner: 1 }).ret, {
      err: "ENODEV",
    });
  });
});

Deno.test("type1 sdmdev attach and detach", async (t) => {
  await t.step("attach shares the parent's default domain and replays mappings", () => {
    const s = run([
      { op: "type1.attach", container: 1, group: 2 },
      { op: "type1.setIommu", container: 1 },
      { op: "type1.map", container: 1, iova: P, size: 2 * P, vaddr: 8 * P },
      { op: "type1.attach", container: 1, group: 10 },
    ]);
    const pages = s.iommu.domains.get(1)!.pages;
    assert.deepEqual(pages.get(P), { kind: "user", mm: 1, vaddr: 8 * P });
    assert.deepEqual(pages.get(2 * P), { kind: "user", mm: 1, vaddr: 9 * P });
    assert.equal(sharedRef(s.iommu.groups.get(1)!), 1);
  });
  await t.step("detach removes the mappings from the shared domain, then unshares", () => {
    const s = run([
      { op: "type1.attach", container: 1, group: 2 },
      ...sdmdevIn1,
      { op: "type1.map", container: 1, iova: 0, size: P, vaddr: 0 },
      { op: "type1.detach", container: 1, group: 10 },
    ]);
    assert.equal(s.iommu.domains.get(1)!.pages.size, 0);
    assert.equal(sharedRef(s.iommu.groups.get(1)!), 0);
    assert.ok(s.iommu.domains.has(1), "the shared domain is never freed");
    assert.equal(pinCount(s.type1, 1, 0), 1, "the other domain keeps the dma pinned");
  });
  await t.step("the last detach unpins everything", () => {
    const s = run([
      ...sdmdevIn1,
      { op: "type1.map", container: 1, iova: 0, size: P, vaddr: 0 },
      { op: "type1.detach", container: 1, group: 10 },
    ]);
    assert.equal(s.type1.pins.size, 0);
    assert.deepEqual(s.type1.containers.get(1)!.dmas, []);
    assert.equal(s.type1.containers.get(1)!.iommuSet, false);
  });
  await t.step("a second sharer of the same parent is refused, in any container", () => {
    const s = run(sdmdevIn1);
    const moved = run([
      { op: "type1.closeGroup", container: 2, group: 11 },
      { op: "type1.openGroup", container: 1, group: 11 },
    ], s);
    assert.deepEqual(step(moved, { op: "type1.attach", container: 1, group: 11 }).ret, {
      err: "EBUSY",
    });
    const s2 = run([{ op: "type1.attach", container: 2, group: 11 }], s);
    assert.deepEqual(step(s2, { op: "type1.setIommu", container: 2 }).ret, { err: "EBUSY" });
  });
  await t.step("a failed SET_IOMMU leaves nothing behind", () => {
    const s = run([{ op: "type1.attach", container: 2, group: 1 }, {
      op: "type1.attach",
      container: 2,
      group: 11,
    }]);
    const r = step(s, { op: "type1.setIommu", container: 2 });
    assert.deepEqual(r.ret, { err: "EINVAL" });
    assert.equal(r.state, s);
  });
});

Deno.test("type1 MAP_DMA / UNMAP_DMA", async (t) => {
  const base = run(sdmdevIn1);
  await t.step("overlap is EEXIST, misalignment and size 0 are EINVAL", () => {
    const s = run([{ op: "type1.map", container: 1, iova: 0, size: 2 * P, vaddr: 0 }], base);
    assert.deepEqual(step(s, { op: "type1.map", container: 1, iova: P, size: P, vaddr: 0 }).ret, {
      err: "EEXIST",
    });
    assert.deepEqual(
      step(s, { op: "type1.map", container: 1, iova: 3 * P + 1, size: P, vaddr: 0 }).ret,
      {
        err: "EINVAL",
      },
    );
    assert.deepEqual(
      step(s, { op: "type1.map", container: 1, iova: 3 * P, size: 0, vaddr: 0 }).ret,
      {
        err: "EINVAL",
      },
    );
  });
  await t.step("MAP_DMA before SET_IOMMU is EINVAL", () => {
    assert.deepEqual(
      step(initialState(), { op: "type1.map", container: 1, iova: 0, size: P, vaddr: 0 }).ret,
      {
        err: "EINVAL",
      },
    );
  });
  await t.step("unmap that bisects a mapping is EINVAL; covering ranges return the bytes", () => {
    const s = run([
      { op: "type1.map", container: 1, iova: 0, size: 2 * P, vaddr: 0 },
      { op: "type1.map", container: 1, iova: 4 * P, size: P, vaddr: 0 },
    ], base);
    assert.deepEqual(step(s, { op: "type1.unmap", container: 1, iova: P, size: P }).ret, {
      err: "EINVAL",
    });
    const r = step(s, { op: "type1.unmap", container: 1, iova: 0, size: 8 * P });
    assert.deepEqual(r.ret, { ok: 3 * P });
    assert.equal(r.state.type1.pins.size, 0);
    assert.equal(r.state.iommu.domains.get(1)!.pages.size, 0);
    assert.deepEqual(step(s, { op: "type1.unmap", container: 1, iova: 6 * P, size: P }).ret, {
      ok: 0,
    });
  });
});

Deno.test("kernel DMA buffers share the IOVA space with user mappings", async (t) => {
  await t.step("a user MAP_DMA onto a kernel buffer is EEXIST", () => {
    const s = run([{ op: "iommu.dmaAlloc", group: 1, pages: 1 }, ...sdmdevIn1]);
    const kernelIova = 1 * P;
    assert.deepEqual(
      step(s, { op: "type1.map", container: 1, iova: kernelIova, size: P, vaddr: 0 }).ret,
      {
        err: "EEXIST",
      },
    );
  });
  await t.step("a kernel allocation onto a user mapping fails with a collision warning", () => {
    const s = run([...sdmdevIn1, { op: "type1.map", container: 1, iova: P, size: P, vaddr: 0 }]);
    const r = step(s, { op: "iommu.dmaAlloc", group: 1, pages: 1 });
    assert.deepEqual(r.ret, { err: "ENOMEM" });
    assert.deepEqual(r.events, [{ warn: "iova-collision", group: 1, iova: P }]);
  });
  await t.step("a device DMA reaches what its domain maps, else faults", () => {
    const s = run([...sdmdevIn1, {
      op: "type1.map",
      container: 1,
      iova: 0,
      size: P,
      vaddr: 5 * P,
    }]);
    assert.deepEqual(step(s, { op: "iommu.dma", group: 10, iova: 12 }).ret, {
      ok: { kind: "user", mm: 1, vaddr: 5 * P + 12 },
    });
    const miss = step(s, { op: "iommu.dma", group: 10, iova: 3 * P });
    assert.deepEqual(miss.ret, { err: "EFAULT" });
    assert.deepEqual(miss.events, [{ fault: "iommu", group: 10, iova: 3 * P }]);
  });
});

Deno.test("VFIO group and device fds", async (t) => {
  await t.step("a group fd opens once", () => {
    assert.deepEqual(step(opened(), { op: "type1.openGroup", container: 2, group: 10 }).ret, {
      err: "EBUSY",
    });
  });
  await t.step("SET_CONTAINER needs the caller's group fd", () => {
    assert.deepEqual(step(opened(), { op: "type1.attach", container: 2, group: 10 }).ret, {
      err: "EINVAL",
    });
  });
  await t.step("GET_DEVICE_FD needs the IOMMU set, and each device opens once", () => {
    const set = run([{ op: "type1.attach", container: 1, group: 10 }]);
    assert.deepEqual(step(set, { op: "type1.getDeviceFd", container: 1, group: 10 }).ret, {
      err: "EINVAL",
    });
    const fd = run([{ op: "type1.setIommu", container: 1 }, {
      op: "type1.getDeviceFd",
      container: 1,
      group: 10,
    }], set);
    assert.deepEqual(step(fd, { op: "type1.getDeviceFd", container: 1, group: 10 }).ret, {
      err: "EBUSY",
    });
  });
  await t.step(
    "UNSET_CONTAINER and closing the group are EBUSY while the device fd is open",
    () => {
      const fd = run([...sdmdevIn1, { op: "type1.getDeviceFd", container: 1, group: 10 }]);
      assert.deepEqual(step(fd, { op: "type1.detach", container: 1, group: 10 }).ret, {
        err: "EBUSY",
      });
      assert.deepEqual(step(fd, { op: "type1.closeGroup", container: 1, group: 10 }).ret, {
        err: "EBUSY",
      });
    },
  );
  await t.step("closing the last group fd unsets the container", () => {
    const s = run([...sdmdevIn1, { op: "type1.closeGroup", container: 1, group: 10 }]);
    assert.deepEqual(s.type1.containers.get(1)!.groups, []);
    assert.equal(s.type1.containers.get(1)!.iommuSet, false);
    assert.equal(s.type1.groupFds.has(10), false);
  });
});
