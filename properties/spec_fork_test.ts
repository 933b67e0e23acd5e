/**
 * Unit tests of the process ops of the type1 world (spec/mm.ts): fork records the child and
 * changes nothing of the containers, mappings or pins; a store changes nothing; the errno
 * table; and the invariant that a container's IOVAs reach its opener's pages.
 */
import assert from "node:assert/strict";
import { type Command, PAGE_SIZE, step, type SystemState, violations } from "../spec/mod.ts";
import { opened, run } from "./type1_steps.ts";

const P = PAGE_SIZE;

/** Container 2 with the accelerator's function attached and its page 0 mapped at IOVA 0. */
function mapped(): SystemState {
  return run([
    { op: "type1.attach", container: 2, group: 1 },
    { op: "type1.setIommu", container: 2 },
    { op: "type1.map", container: 2, iova: 0, size: P, vaddr: 0 },
  ], opened());
}

const fork = (mm: number, child: number): Command => ({ op: "mm.fork", mm, child });
const write = (mm: number, vaddr: number): Command => ({ op: "mm.write", mm, vaddr });

/** The errno `cmd` fails with in `state` (asserting that it fails and changes nothing). */
function refused(state: SystemState, cmd: Command): string {
  const r = step(state, cmd);
  assert.ok("err" in r.ret, `${cmd.op} succeeded: ${JSON.stringify(r.ret)}`);
  assert.equal(r.state, state, "a refused command changes nothing");
  return r.ret.err;
}

Deno.test("processes: fork and stores", async (t) => {
  await t.step("the containers' openers are the processes at the start", () => {
    assert.deepEqual([...opened().type1.processes], [[1, null], [2, null]]);
  });
  await t.step("fork returns the child and records its parent", () => {
    const s = mapped();
    assert.deepEqual(step(s, fork(2, 3)).ret, { ok: 3 });
    assert.equal(run([fork(2, 3)], s).type1.processes.get(3), 2);
  });
  await t.step("the mappings, pins and locked_vm stay the parent's; the child pins nothing", () => {
    const s = mapped();
    const after = run([fork(2, 3), write(2, 0), write(3, 0)], s);
    assert.deepEqual(after.iommu, s.iommu);
    assert.deepEqual(after.type1.containers, s.type1.containers);
    assert.deepEqual([after.type1.pins, after.type1.lockedVm], [s.type1.pins, s.type1.lockedVm]);
  });
  await t.step("a child forks too", () => {
    assert.equal(run([fork(2, 3), fork(3, 4)], mapped()).type1.processes.get(4), 3);
  });
  await t.step("an unknown process is ENODEV, a child id in use EEXIST, a bad one EINVAL", () => {
    const s = mapped();
    assert.equal(refused(s, fork(3, 4)), "ENODEV");
    assert.equal(refused(s, write(3, 0)), "ENODEV");
    assert.equal(refused(s, fork(2, 1)), "EEXIST");
    assert.equal(refused(run([fork(2, 3)], s), fork(1, 3)), "EEXIST");
    assert.equal(refused(s, fork(2, 0)), "EINVAL");
    assert.equal(refused(s, fork(2, 1.5)), "EINVAL");
  });
  await t.step("a store's address must be page-aligned", () => {
    assert.equal(refused(mapped(), write(2, 1)), "EINVAL");
    assert.equal(refused(mapped(), write(2, -P)), "EINVAL");
  });
  await t.step("the invariant names an IOVA that reaches another process's page", () => {
    const s = run([fork(2, 3)], mapped());
    const id = s.type1.containers.get(2)!.domains[0].domain;
    const domain = s.iommu.domains.get(id)!;
    const moved = {
      ...s,
      iommu: {
        ...s.iommu,
        domains: new Map(s.iommu.domains).set(id, {
          ...domain,
          pages: new Map(domain.pages).set(0, { kind: "user", mm: 3, vaddr: 0 }),
        }),
      },
    };
    assert.deepEqual(violations(s), []);
    assert.deepEqual(violations(moved), [
      "dma-lands-in-mapping-process: iova 0 of container 2 (mm 2, vaddr 0) reaches mm 3's page " +
      `at 0 in domain ${id}`,
    ]);
  });
});
