/**
 * `deno bench bench/pin_bench.ts`: vfio type1 pinning for a vendor mdev (impl/vfio/type1.ts
 * through impl/vfio/vendor.ts): one iteration pins a batch of 512 pages (the most one
 * vfio_pin_pages takes) inside a 512-page mapping and unpins it again, with locked_vm
 * accounting, in a container whose only group is the vendor mdev (so every pin is accounted).
 * The anchor is the least any per-page pin count does: 512 increments then 512 decrements of
 * a typed array. Batches per second = 1 / time per iteration (target: at least 50,000).
 */
import { PIN_PAGES_MAX } from "../spec/type1.ts";
import { PAGE_SIZE } from "../spec/types.ts";
import { Type1Adapter } from "../model/adapters/type1.ts";

const adapter = new Type1Adapter({
  topology: {
    pciGroups: [1],
    mdevGroups: [],
    vendorGroups: [20],
    containers: [{ id: 1, mm: 1 }],
  },
});
for (
  const cmd of [
    { op: "type1.openGroup", container: 1, group: 20 },
    { op: "type1.attach", container: 1, group: 20 },
    { op: "type1.setIommu", container: 1 },
    { op: "type1.map", container: 1, iova: 0, size: PIN_PAGES_MAX * PAGE_SIZE, vaddr: 0 },
  ] as const
) {
  const r = await adapter.exec(cmd);
  if (!("ok" in r.ret)) throw new Error(`set-up ${cmd.op}: ${JSON.stringify(r.ret)}`);
}
const container = adapter.vfio.containers.get(1)!;
const group = adapter.iommu.groups.get(20)!;

const counts = new Uint32Array(PIN_PAGES_MAX);

Deno.bench("anchor: 512 typed-array increments + 512 decrements", { baseline: true }, () => {
  for (let i = 0; i < PIN_PAGES_MAX; i++) counts[i]++;
  for (let i = 0; i < PIN_PAGES_MAX; i++) counts[i]--;
});

Deno.bench("type1: pin + unpin of a 512-page batch (vendor mdev)", async () => {
  const pinned = await adapter.vendor.adjust(container, group, 0, PIN_PAGES_MAX, 1);
  const unpinned = await adapter.vendor.adjust(container, group, 0, PIN_PAGES_MAX, -1);
  if (pinned !== PIN_PAGES_MAX || unpinned !== PIN_PAGES_MAX) throw new Error("pin failed");
});
