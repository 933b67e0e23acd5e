/**
 * The IOASID allocator: its edges (ranges of one id, the inclusive max, the last PASID,
 * exhaustion), typed lookups, reference counts and allocator precedence, each run on the spec
 * and the correct implementation in lockstep; the occupancy tree over the whole PASID space;
 * what each quirk breaks; the invariants; and conformance runs of the `ioasid` machine.
 */
import assert from "node:assert/strict";
import {
  checkIoasidInvariants,
  initialIoasidState,
  IOASID_MAX,
  type IoasidCommand,
  type IoasidEntry,
  type IoasidState,
} from "../spec/ioasid.ts";
import type { Ret } from "../spec/types.ts";
import { IdTree } from "../impl/ioasid/idtree.ts";
import { IoasidSpace } from "../impl/ioasid/ioasid.ts";
import type { Quirks } from "../impl/quirks.ts";
import { Coverage, summarize } from "../model/coverage.ts";
import { suiteNamed } from "../model/machines.ts";
import { ioasidMachine } from "../model/machines/ioasid.ts";
import { runSequential } from "../model/runner.ts";
import { testSeed } from "../model/seed.ts";
import { runSuite } from "../model/suites.ts";

const alloc = (set: number, min: number, max: number, priv?: number): IoasidCommand => ({
  op: "ioasid.alloc",
  set,
  min,
  max,
  ...(priv === undefined ? {} : { private: priv }),
});
const free = (id: number): IoasidCommand => ({ op: "ioasid.free", id });
const get = (set: number, id: number): IoasidCommand => ({ op: "ioasid.get", set, id });
const put = (id: number): IoasidCommand => ({ op: "ioasid.put", id });
const find = (set: number, id: number): IoasidCommand => ({ op: "ioasid.find", set, id });
const setData = (id: number, priv: number): IoasidCommand => ({
  op: "ioasid.setData",
  id,
  private: priv,
});
const register = (name: string): IoasidCommand => ({ op: "ioasid.registerAllocator", name });
const unregister = (name: string): IoasidCommand => ({ op: "ioasid.unregisterAllocator", name });

const OK = (v: unknown): Ret => ({ ok: v });
const ERR = (e: string): Ret => ({ err: e }) as Ret;

/**
 * Runs `steps` on the spec and the correct implementation in lockstep: every step must conform
 * and return what the test expects. Returns the final (spec) state.
 */
async function expectRun(steps: readonly [IoasidCommand, Ret][]): Promise<IoasidState> {
  const records = await runSequential(ioasidMachine, steps.map(([c]) => c));
  assert.equal(records.length, steps.length);
  records.forEach((r, i) => {
    assert.equal(r.failure, undefined, `step ${i}: ${r.failure}`);
    assert.deepEqual(r.specRet, steps[i][1], `step ${i} ${r.cmd.op}`);
  });
  return records.at(-1)!.specState;
}

/** Where the first non-conforming step of `cmds` with `quirks` is, and why. */
async function firstFailure(cmds: readonly IoasidCommand[], quirks: Quirks) {
  const records = await runSequential(ioasidMachine, cmds, quirks);
  const last = records.at(-1)!;
  return last.failure === undefined ? undefined : { step: records.length - 1, why: last.failure };
}

Deno.test("alloc: a range of one id, max inclusive, both edges of the PASID space", async () => {
  await expectRun([
    [alloc(1, 5, 5), OK(5)],
    [alloc(1, 5, 5), ERR("ENOSPC")],
    [alloc(1, 1, 2), OK(1)],
    [alloc(1, 1, 2), OK(2)],
    [alloc(1, 1, 2), ERR("ENOSPC")],
    [alloc(1, 1, 6), OK(3)],
    [alloc(2, IOASID_MAX, IOASID_MAX), OK(IOASID_MAX)],
    [alloc(2, IOASID_MAX - 1, IOASID_MAX), OK(IOASID_MAX - 1)],
    [alloc(2, IOASID_MAX - 1, IOASID_MAX), ERR("ENOSPC")],
    [alloc(1, IOASID_MAX, IOASID_MAX + 1), ERR("EINVAL")],
    [alloc(1, 0, 3), ERR("EINVAL")],
    [alloc(1, 4, 3), ERR("EINVAL")],
    [alloc(-1, 4, 4), ERR("EINVAL")],
  ]);
});

Deno.test("alloc: exhaustion across bitmap words, and a freed id is reused at once", async () => {
  const fill = Array.from({ length: 70 }, (_, i): [IoasidCommand, Ret] => [
    alloc(1, 1, 70),
    OK(i + 1),
  ]);
  const s = await expectRun([
    ...fill,
    [alloc(1, 1, 70), ERR("ENOSPC")],
    [free(33), OK(0)],
    [free(64), OK(0)],
    [alloc(2, 1, 70), OK(33)],
    [alloc(2, 40, 70), OK(64)],
    [alloc(2, 1, 70), ERR("ENOSPC")],
  ]);
  assert.deepEqual(s.sets.get(2), [33, 64]);
  assert.equal(s.sets.get(1)?.length, 68);
});

Deno.test("the occupancy tree: the whole PASID space fills, then frees and refills one id", () => {
  const space = new IoasidSpace();
  for (let id = 1; id <= IOASID_MAX; id++) {
    assert.deepEqual(space.alloc(1, 1, IOASID_MAX, null), { ok: id });
  }
  assert.deepEqual(space.alloc(1, 1, IOASID_MAX, null), { err: "ENOSPC" });
  for (const id of [1, 31, 32, 1023, 1024, 32768, 777_777, IOASID_MAX]) {
    assert.deepEqual(space.free(id), { ok: 0 });
    assert.deepEqual(space.alloc(2, 1, IOASID_MAX, null), { ok: id });
  }
  const tree = new IdTree(64);
  tree.set(0);
  tree.set(2);
  assert.equal(tree.findFree(0, 64), 1);
  assert.equal(tree.findFree(2, 3), undefined);
  assert.equal(tree.findFree(2, 64), 3);
});

Deno.test("find and get are typed by the set; private data may come later", async () => {
  await expectRun([
    [alloc(1, 1, 10), OK(1)],
    [alloc(2, 1, 10, 8), OK(2)],
    [find(1, 1), OK(null)],
    [find(2, 1), ERR("ENOENT")],
    [get(2, 1), ERR("ENOENT")],
    [find(2, 2), OK(8)],
    [find(1, 2), ERR("ENOENT")],
    [setData(1, 7), OK(0)],
    [find(1, 1), OK(7)],
    [find(1, 3), ERR("ENOENT")],
    [setData(3, 7), ERR("ENOENT")],
  ]);
});

Deno.test("references: free drops the allocation's, put a get's; at zero the id is unused", async () => {
  const s = await expectRun([
    [alloc(1, 1, 10, 7), OK(1)],
    [put(1), ERR("EINVAL")],
    [get(1, 1), OK(2)],
    [get(1, 1), OK(3)],
    [free(1), OK(2)],
    [free(1), ERR("EINVAL")],
    [find(1, 1), OK(7)],
    [alloc(1, 1, 1), ERR("ENOSPC")],
    [put(1), OK(1)],
    [put(1), OK(0)],
    [put(1), ERR("ENOENT")],
    [free(1), ERR("ENOENT")],
    [find(1, 1), ERR("ENOENT")],
    [alloc(2, 1, 1), OK(1)],
  ]);
  assert.deepEqual(s.ids.get(1), entry(2, 1, 1, "default"));
});

function entry(set: number, min: number, max: number, allocator: string): IoasidEntry {
  return { set, min, max, private: null, refs: 1, allocRef: true, allocator };
}

Deno.test("allocators: the last registered serves, each id goes back to its own", async () => {
  const s = await expectRun([
    [register("vcmd"), OK(0)],
    [alloc(1, 1, 10), OK(1)],
    [register("vcmd"), ERR("EEXIST")],
    [register("vcmd2"), OK(0)],
    [alloc(1, 1, 10), OK(2)],
    [unregister("vcmd"), ERR("EBUSY")],
    [free(1), OK(0)],
    [unregister("vcmd"), OK(0)],
    [alloc(1, 1, 10), OK(1)],
    [unregister("vcmd"), ERR("ENOENT")],
  ]);
  assert.deepEqual(s.allocators, ["vcmd2"]);
  assert.deepEqual(s.ids.get(1)?.allocator, "vcmd2");
  assert.deepEqual(s.ids.get(2)?.allocator, "vcmd2");
});

Deno.test("allocators: refused while the default one owns ids, and bad names", async () => {
  const s = await expectRun([
    [register(""), ERR("EINVAL")],
    [register("default"), ERR("EINVAL")],
    [alloc(1, 1, 10), OK(1)],
    [register("vcmd"), ERR("EBUSY")],
    [alloc(1, 1, 10), OK(2)],
    [free(1), OK(0)],
    [free(2), OK(0)],
    [register("vcmd"), OK(0)],
    [alloc(1, 1, 10), OK(1)],
    [unregister("vcmd"), ERR("EBUSY")],
  ]);
  assert.deepEqual(s.ids.get(1), entry(1, 1, 10, "vcmd"));
});

Deno.test("each quirk breaks the step its mechanism says", async (t) => {
  await t.step("findIgnoresSet: another set's private data", async () => {
    const f = await firstFailure([alloc(1, 1, 1, 7), find(2, 1)], { findIgnoresSet: true });
    assert.equal(f?.step, 1);
    assert.match(f!.why, /spec \{"err":"ENOENT"\}, impl \{"ok":7\}/);
  });
  await t.step("rangeMaxOffByOne: max is never handed out", async () => {
    const cmds = [alloc(1, 1, 2), alloc(1, 1, 2)];
    const f = await firstFailure(cmds, { rangeMaxOffByOne: true });
    assert.equal(f?.step, 1);
    assert.match(f!.why, /spec \{"ok":2\}, impl \{"err":"ENOSPC"\}/);
    const last = await firstFailure([alloc(1, IOASID_MAX, IOASID_MAX)], { rangeMaxOffByOne: true });
    assert.equal(last?.step, 0);
  });
  await t.step("allocatorSwitchOrphans: ids left to an allocator that is gone", async () => {
    const space = new IoasidSpace({ allocatorSwitchOrphans: true });
    assert.deepEqual(space.registerAllocator("vcmd"), { ok: 0 });
    assert.deepEqual(space.alloc(1, 1, 10, null), { ok: 1 });
    assert.deepEqual(space.unregisterAllocator("vcmd"), { ok: 0 });
    const orphan = space.data.get(1)!;
    assert.equal(orphan.allocator?.name, "vcmd");
    assert.ok(!space.allocators.includes(orphan.allocator!));
    const cmds = [alloc(1, 1, 10), register("vcmd")];
    const f = await firstFailure(cmds, { allocatorSwitchOrphans: true });
    assert.equal(f?.step, 1);
    assert.match(f!.why, /spec \{"err":"EBUSY"\}, impl \{"ok":0\}/);
  });
});

Deno.test("every invariant names what a broken state breaks", () => {
  const s0 = initialIoasidState();
  const e = entry(1, 1, 10, "default");
  const bad = (ids: [number, IoasidEntry][], sets: [number, number[]][], allocators: string[]) =>
    checkIoasidInvariants({ ids: new Map(ids), sets: new Map(sets), allocators });
  assert.deepEqual(checkIoasidInvariants(s0), []);
  assert.deepEqual(bad([[1, e]], [[1, [1]]], []), []);
  assert.match(bad([[11, e]], [[1, [11]]], []).join(), /^ioasid\.inRange: id 11/);
  assert.match(bad([[1, { ...e, refs: 0 }]], [[1, [1]]], []).join(), /^ioasid\.referenced/);
  const orphan = { ...e, allocator: "vcmd" };
  assert.match(bad([[1, orphan]], [[1, [1]]], []).join(), /^ioasid\.ownerRegistered/);
  assert.match(bad([[1, e]], [[1, [1]], [2, [1]]], []).join(), /^ioasid\.allocatedOnce/);
  assert.match(bad([[1, e]], [], []).join(), /^ioasid\.allocatedOnce: id 1 is allocated/);
  assert.match(bad([], [[1, [1]]], []).join(), /^ioasid\.allocatedOnce: set 1 lists/);
});

Deno.test("conformance: the ioasid machine on the correct implementation reaches every errno", async () => {
  const coverage = new Coverage();
  const r = await runSuite(suiteNamed("ioasid")!, { seed: testSeed(), runs: 2000, coverage });
  assert.equal(r.failure?.violation, undefined);
  assert.equal(r.runs, 2000);
  const ops = summarize(ioasidMachine, coverage).ops;
  const expected: Record<string, string[]> = {
    "ioasid.alloc": ["ok", "EINVAL", "ENOSPC"],
    "ioasid.free": ["ok", "ENOENT", "EINVAL"],
    "ioasid.get": ["ok", "ENOENT"],
    "ioasid.put": ["ok", "ENOENT", "EINVAL"],
    "ioasid.find": ["ok", "ENOENT"],
    "ioasid.setData": ["ok", "ENOENT"],
    "ioasid.registerAllocator": ["ok", "EINVAL", "EEXIST", "EBUSY"],
    "ioasid.unregisterAllocator": ["ok", "ENOENT", "EBUSY"],
  };
  for (const [op, results] of Object.entries(expected)) {
    assert.deepEqual(Object.keys(ops[op] ?? {}).sort(), [...results].sort(), op);
  }
});
