/**
 * SVA in the composed stack: PASIDs from the IOASID allocator, one per mm; a queue's reads
 * tagged with its PASID walk its own process's page table; the queue's own bond keeps the
 * PASID while it runs; exit drops the mm's users, and the PASID goes with the last bond.
 */
import assert from "node:assert/strict";
import { type StackCommand, stackViolations } from "../spec/stack.ts";
import { SVA_SET } from "../spec/sva.ts";
import { StackAdapter } from "../model/adapters/stack.ts";
import { STACK_PRELUDE, stackMachine, USER_IOVA } from "../model/machines/stack.ts";
import { runSequential } from "../model/runner.ts";

const U1 = "11111111-2222-3333-4444-555555555555";
const U3 = "33333333-4444-5555-6666-777777777777";
/** An address no container maps for DMA: only a walk of the process's page table reaches it. */
const OWN_VADDR = 0x5000_0000;

const send3 = (iova: number): StackCommand => ({ op: "stack.send", uuid: U3, by: 2, iova });
const step3: StackCommand = { op: "stack.deviceStep", parent: 3, qn: 0 };
const recv3: StackCommand = { op: "stack.recv", uuid: U3, by: 2 };
const releaseU3: StackCommand[] = [
  { op: "sdmdev.munmap", uuid: U3, by: 2, map: 1 },
  { op: "sdmdev.munmap", uuid: U3, by: 2, map: 2 },
  { op: "type1.closeDeviceFd", container: 2, group: 11 },
];

async function conforming(cmds: readonly StackCommand[]) {
  const records = await runSequential(stackMachine, cmds);
  assert.equal(records.find((r) => r.failure)?.failure, undefined);
  assert.equal(records.length, cmds.length);
  return records;
}

Deno.test("a PASID-tagged read walks its process's page table; an untagged one the domain", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    send3(OWN_VADDR),
    step3,
    recv3,
    { op: "stack.send", uuid: U1, by: 1, iova: OWN_VADDR },
    { op: "stack.deviceStep", parent: 1, qn: 0 },
    { op: "stack.recv", uuid: U1, by: 1 },
  ]);
  const recvs = records.filter((r) => r.cmd.op === "stack.recv").map((r) => r.impl.ret);
  assert.deepEqual(recvs, [
    { ok: { iova: OWN_VADDR, status: 0 } },
    { ok: { iova: OWN_VADDR, status: 1 } },
  ]);
  const fault = records.at(-2)!.impl.events;
  assert.deepEqual(fault, [{ fault: "iommu", group: 1, iova: OWN_VADDR }]);
});

Deno.test("the device's tagged DMA reaches a frame of the PASID's mm, written by the process", async () => {
  const stack = new StackAdapter({});
  for (const cmd of STACK_PRELUDE) assert.ok("ok" in (await stack.exec(cmd)).ret, cmd.op);
  const mm2 = stack.system.vfio.containers.get(2)!.mm;
  const { phys } = stack.kernel;
  phys.write(mm2.page(OWN_VADDR), 5, new Uint8Array([0xab]));
  const group3 = stack.platform.iommu.groups.get(3)!;
  const frame = stack.platform.iommu.dmaPasid(group3, 1, OWN_VADDR + 5);
  assert.deepEqual(frame?.owner, { kind: "user", mm: 2, vaddr: OWN_VADDR });
  const byte = new Uint8Array(1);
  phys.readInto(frame!, 5, byte);
  assert.equal(byte[0], 0xab);
  assert.equal(stack.platform.iommu.dmaPasid(group3, 2, OWN_VADDR), undefined, "PASID 2: none");
});

Deno.test("unbind while the queue runs: the queue's bond keeps the PASID until its release", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    { op: "sva.unbind", container: 2 },
    { op: "sva.unbind", container: 2 },
    send3(OWN_VADDR),
    step3,
    recv3,
    ...releaseU3,
  ]);
  const unbinds = records.filter((r) => r.cmd.op === "sva.unbind").map((r) => r.impl.ret);
  assert.deepEqual(unbinds, [{ ok: 0 }, { err: "EINVAL" }]);
  const afterUnbind = records[STACK_PRELUDE.length].observed.sva;
  assert.deepEqual([...afterUnbind.ioasid.sets.get(SVA_SET) ?? []], [1], "PASID 1 still allocated");
  assert.deepEqual([...afterUnbind.mms.get(2)!.bonds], [[3, 1]], "the queue's bond alone");
  assert.deepEqual(records.at(-4)!.impl.ret, { ok: { iova: OWN_VADDR, status: 0 } });
  const end = records.at(-1)!.observed.sva;
  assert.equal(end.mms.size, 0);
  assert.equal(end.ioasid.ids.size, 0, "the last bond freed the PASID");
});

Deno.test("one PASID per mm, shared by its bonds; BIND_PASID only with the caller's", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    { op: "sva.bind", container: 2 },
    { op: "sdmdev.bindPasid", uuid: U3, by: 2, pasid: 2 },
    ...releaseU3,
    { op: "sva.unbind", container: 2 },
    { op: "type1.getDeviceFd", container: 2, group: 11 },
    { op: "sdmdev.bindPasid", uuid: U3, by: 2, pasid: 1 },
    { op: "sva.bind", container: 2 },
    { op: "sdmdev.bindPasid", uuid: U3, by: 2, pasid: 1 },
  ]);
  const at = (i: number) => records[STACK_PRELUDE.length + i];
  assert.deepEqual(at(0).impl.ret, { ok: 1 }, "the same PASID, no new bond");
  assert.deepEqual([...at(0).observed.sva.mms.get(2)!.bonds], [[3, 2]]);
  assert.deepEqual(at(1).impl.ret, { err: "EINVAL" }, "PASID 2 is nobody's");
  assert.equal(at(5).observed.sva.ioasid.ids.size, 0, "unbound and released: PASID 1 freed");
  assert.deepEqual(at(7).impl.ret, { err: "EINVAL" }, "PASID 1 freed: nobody's");
  assert.deepEqual(records.slice(-2).map((r) => r.impl.ret), [{ ok: 1 }, { ok: 0 }]);
});

Deno.test("exit while bound: the PASID goes with the process's last bond; no bind after", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    send3(USER_IOVA),
    { op: "stack.exit", by: 2 },
    { op: "type1.openGroup", container: 2, group: 11 },
    { op: "type1.attach", container: 2, group: 11 },
    { op: "sva.bind", container: 2 },
  ]);
  const exited = records[STACK_PRELUDE.length + 1].observed;
  assert.equal(exited.sva.ioasid.ids.size, 0);
  assert.deepEqual(exited.sva.exited, [2]);
  assert.equal(exited.requests.size, 0);
  assert.deepEqual(records.at(-1)!.impl.ret, { err: "EINVAL" });
});

Deno.test("sva ops: bad containers and containers without a PASID-capable device are EINVAL", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    { op: "sva.bind", container: 9 },
    { op: "sva.unbind", container: 9 },
    { op: "sva.bind", container: 1 },
    { op: "sva.unbind", container: 1 },
    { op: "sva.bind", container: 2 },
  ]);
  const rets = records.slice(-5).map((r) => r.impl.ret);
  assert.deepEqual(rets, [
    { err: "EINVAL" },
    { err: "EINVAL" },
    { err: "EINVAL" },
    { err: "EINVAL" },
    { ok: 1 },
  ]);
});

Deno.test("freeBeforeUnbind: the container's unbind frees the PASID the queue still runs with", async () => {
  const run = async (quirks: Record<string, boolean>) => {
    const stack = new StackAdapter(quirks);
    for (const cmd of [...STACK_PRELUDE, { op: "sva.unbind", container: 2 } as const]) {
      assert.ok("ok" in (await stack.exec(cmd)).ret, cmd.op);
    }
    return stackViolations(stack.observe());
  };
  assert.deepEqual(await run({}), []);
  const broken = await run({ freeBeforeUnbind: true });
  assert.ok(broken.some((v) => /runs PASID 1 of mm none/.test(v)), broken.join("; "));
});

Deno.test("after exit_mm the queue's tagged reads fault (iopf); bonds keep the PASID until the closes", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    send3(USER_IOVA),
    { op: "stack.exitMm", by: 2 },
    step3,
    { op: "type1.closeDeviceFd", container: 2, group: 11 },
    { op: "type1.closeGroup", container: 2, group: 11 },
  ]);
  const at = (i: number) => records[STACK_PRELUDE.length + i];
  assert.deepEqual([...at(1).observed.sva.ioasid.sets.get(SVA_SET) ?? []], [1], "PASID kept");
  assert.deepEqual(at(2).impl.ret, { err: "EFAULT" });
  assert.deepEqual(at(2).impl.events, [{ fault: "iopf", group: 3, pasid: 1, vaddr: USER_IOVA }]);
  assert.deepEqual([...at(3).observed.sva.mms.get(2)!.bonds], [[3, 1]], "the container's bond");
  assert.equal(at(4).observed.sva.ioasid.ids.size, 0, "the last bond freed it");
});
