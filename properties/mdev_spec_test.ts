/**
 * Tests of the mdev core spec (`spec/mdev.ts`) and the sdmdev spec (`spec/sdmdev.ts`) on their
 * own: one unit test per rule and errno, checks that every invariant can fire, and a property
 * over random command sequences. Seed: the env var WARPSPEC_SEED if set, else a fixed one; it
 * is printed.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkMdevInvariants,
  FIRST_MDEV_GROUP,
  initialMdevState,
  type MdevCommand,
  type MdevDevice,
  mdevInvariants,
  type MdevParent,
  type MdevState,
  type MdevTypeInfo,
  parseUuid,
  stepMdev,
} from "../spec/mdev.ts";
import {
  checkSdmdevInvariants,
  holderOf,
  initialSdmdevWorld,
  mappingsOf,
  RING_SIZE,
  type SdmdevAttrs,
  type SdmdevCommand,
  sdmdevInvariants,
  type SdmdevParent,
  type SdmdevQueue,
  type SdmdevWorld,
  stepSdmdev,
} from "../spec/sdmdev.ts";
import { PAGE_SIZE, type Ret, type StepResult } from "../spec/types.ts";

const SEED = Number(Deno.env.get("WARPSPEC_SEED") ?? "20180903");
console.log(`mdev_spec_test: seed ${SEED} (set WARPSPEC_SEED to change)`);

const U1 = "11111111-2222-3333-4444-555555555555";
const U2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const U3 = "01234567-89ab-cdef-0123-456789abcdef";
const U4 = "fedcba98-7654-3210-fedc-ba9876543210";

const P1 = 1; // a process
const P2 = 2; // another process

// ---------------------------------------------------------------------------------------------
// Helpers

/** A JSON snapshot that sees into Maps, to check that a step never mutates its input. */
function snapshot(x: unknown): string {
  return JSON.stringify(x, (_k, v) => (v instanceof Map ? { map: [...v.entries()] } : v));
}

function okOf<T>(ret: Ret): T {
  assert.ok("ok" in ret, `expected ok, got ${JSON.stringify(ret)}`);
  return ret.ok as T;
}

/** Applies mdev commands in order, checking invariants and purity; returns rets and state. */
function runM(s: MdevState, cmds: readonly MdevCommand[]): { state: MdevState; rets: Ret[] } {
  const rets: Ret[] = [];
  for (const cmd of cmds) {
    const before = snapshot(s);
    const r = stepMdev(s, cmd);
    assert.equal(snapshot(s), before, `${cmd.op} mutated its input`);
    assert.deepEqual(checkMdevInvariants(r.state), [], `after ${JSON.stringify(cmd)}`);
    assert.deepEqual(r.events, []);
    if ("err" in r.ret) assert.equal(r.state, s, `${cmd.op} failed but changed the state`);
    rets.push(r.ret);
    s = r.state;
  }
  return { state: s, rets };
}

function oneM(s: MdevState, cmd: MdevCommand): [MdevState, Ret] {
  const { state, rets } = runM(s, [cmd]);
  return [state, rets[0]];
}

/** Applies sdmdev commands in order, checking invariants and purity. */
function runS(w: SdmdevWorld, cmds: readonly SdmdevCommand[]): { state: SdmdevWorld; rets: Ret[] } {
  const rets: Ret[] = [];
  for (const cmd of cmds) {
    const before = snapshot(w);
    const r = stepSdmdev(w, cmd);
    assert.equal(snapshot(w), before, `${cmd.op} mutated its input`);
    assert.deepEqual(checkSdmdevInvariants(r.state), [], `after ${JSON.stringify(cmd)}`);
    assert.deepEqual(r.events, []);
    if ("err" in r.ret) assert.equal(r.state, w, `${cmd.op} failed but changed the state`);
    rets.push(r.ret);
    w = r.state;
  }
  return { state: w, rets };
}

function oneS(w: SdmdevWorld, cmd: SdmdevCommand): [SdmdevWorld, Ret] {
  const { state, rets } = runS(w, [cmd]);
  return [state, rets[0]];
}

const reg = (
  parent: number,
  over: Partial<Extract<MdevCommand, { op: "mdev.register" }>> = {},
): MdevCommand => ({
  op: "mdev.register",
  parent,
  name: `gpu${parent}`,
  deviceApi: "vfio-pci",
  capacity: 8,
  types: 3,
  create: true,
  remove: true,
  ...over,
});
const mcreate = (parent: number, type: string, uuid: string): MdevCommand => ({
  op: "mdev.create",
  parent,
  type,
  uuid,
});
const mopen = (uuid: string): MdevCommand => ({ op: "mdev.open", uuid });
const mrelease = (uuid: string): MdevCommand => ({ op: "mdev.release", uuid });
const mremove = (uuid: string): MdevCommand => ({ op: "mdev.remove", uuid });

/** A state with parent 1 (`gpu1`, 8 units, types costing 1, 2 and 4) registered. */
function withGpu(): MdevState {
  const { state, rets } = runM(initialMdevState(), [reg(1)]);
  assert.deepEqual(rets, [{ ok: 0 }]);
  return state;
}

function available(s: MdevState, parent: number): number[] {
  const [, ret] = oneM(s, { op: "mdev.readTypes", parent });
  return okOf<MdevTypeInfo[]>(ret).map((t) => t.available_instances);
}

const sreg = (parent: number, qpNum = 4, sva = false): SdmdevCommand => ({
  op: "sdmdev.register",
  parent,
  name: `zip${parent}`,
  qpNum,
  sva,
});
const screate = (uuid: string, parent = 1): SdmdevCommand => ({
  op: "sdmdev.create",
  parent,
  uuid,
});
const sopen = (uuid: string, by = P1): SdmdevCommand => ({ op: "sdmdev.open", uuid, by });
const srelease = (uuid: string, by = P1): SdmdevCommand => ({ op: "sdmdev.release", uuid, by });
const sremove = (uuid: string): SdmdevCommand => ({ op: "sdmdev.remove", uuid });
const smunmap = (uuid: string, map: number, by = P1): SdmdevCommand => ({
  op: "sdmdev.munmap",
  uuid,
  by,
  map,
});
const smmap = (uuid: string, pgoff: number, size: number, by = P1): SdmdevCommand => ({
  op: "sdmdev.mmap",
  uuid,
  by,
  pgoff,
  size,
});
const swait = (uuid: string, timeout: number, updateAt: number, by = P1): SdmdevCommand => ({
  op: "sdmdev.wait",
  uuid,
  by,
  timeout,
  updateAt,
});
const attrs = (parent = 1): SdmdevCommand => ({ op: "sdmdev.readAttrs", parent });

function sd(parent = 1, qpNum = 4, sva = false): SdmdevWorld {
  const { state, rets } = runS(initialSdmdevWorld(), [sreg(parent, qpNum, sva)]);
  assert.deepEqual(rets, [{ ok: 0 }]);
  return state;
}

function queue(w: SdmdevWorld, uuid: string): SdmdevQueue {
  const q = w.sdmdev.queues.get(uuid);
  assert.ok(q, `queue ${uuid} exists`);
  return q;
}

/** A queue's life flattened for assertions: holder, fd, ring, PASID, mappings, update. */
function view(w: SdmdevWorld, uuid: string) {
  const q = queue(w, uuid);
  const l = q.life;
  return {
    state: l.state,
    openedBy: holderOf(q),
    fd: l.state !== "closed" && l.fd,
    ring: l.state === "started" ? l.ring : null,
    pasid: l.state === "started" ? l.pasid : null,
    maps: mappingsOf(q),
    updated: l.state === "started" && l.updated,
  };
}

function freeOf(w: SdmdevWorld, parent = 1): number {
  return okOf<SdmdevAttrs>(stepSdmdev(w, attrs(parent)).ret).available_instances;
}

// ---------------------------------------------------------------------------------------------
// mdev core

Deno.test("mdev: parent registration", async (t) => {
  await t.step("register succeeds once, EEXIST the second time", () => {
    const s = withGpu();
    assert.ok(s.parents.has(1));
    assert.deepEqual(oneM(s, reg(1))[1], { err: "EEXIST" });
    assert.deepEqual(oneM(s, reg(1, { name: "other" }))[1], { err: "EEXIST" });
  });
  await t.step("EINVAL without the create or the remove callback", () => {
    const s = initialMdevState();
    assert.deepEqual(oneM(s, reg(1, { create: false }))[1], { err: "EINVAL" });
    assert.deepEqual(oneM(s, reg(1, { remove: false }))[1], { err: "EINVAL" });
  });
  await t.step("EINVAL for malformed arguments", () => {
    const s = initialMdevState();
    for (
      const over of [
        { types: 0 },
        { types: 9 },
        { capacity: -1 },
        { capacity: 1.5 },
        { name: "" },
        { name: "a b" },
        { deviceApi: "" },
      ]
    ) {
      assert.deepEqual(oneM(s, reg(1, over))[1], { err: "EINVAL" }, JSON.stringify(over));
    }
    assert.deepEqual(oneM(s, reg(0))[1], { err: "EINVAL" });
  });
  await t.step("types: name, device_api, available_instances from the pool", () => {
    const [, ret] = oneM(withGpu(), { op: "mdev.readTypes", parent: 1 });
    assert.deepEqual(okOf(ret), [
      { id: "gpu1-0", name: "gpu1-0", device_api: "vfio-pci", available_instances: 8 },
      { id: "gpu1-1", name: "gpu1-1", device_api: "vfio-pci", available_instances: 4 },
      { id: "gpu1-2", name: "gpu1-2", device_api: "vfio-pci", available_instances: 2 },
    ]);
    assert.deepEqual(oneM(withGpu(), { op: "mdev.readTypes", parent: 2 })[1], { err: "ENODEV" });
  });
});

Deno.test("mdev: create", async (t) => {
  await t.step("one create changes every type's available_instances", () => {
    let s = withGpu();
    [s] = oneM(s, mcreate(1, "gpu1-2", U1)); // 4 units
    assert.deepEqual(available(s, 1), [4, 2, 1]);
    [s] = oneM(s, mcreate(1, "gpu1-0", U2)); // 1 unit
    assert.deepEqual(available(s, 1), [3, 1, 0]);
    assert.equal(s.parents.get(1)!.used, 5);
  });
  await t.step("create with 0 available fails EBUSY and never goes negative", () => {
    let s = withGpu();
    [s] = oneM(s, mcreate(1, "gpu1-2", U1));
    [s] = oneM(s, mcreate(1, "gpu1-1", U2));
    [s] = oneM(s, mcreate(1, "gpu1-0", U3)); // 7 of 8 used
    assert.deepEqual(available(s, 1), [1, 0, 0]);
    assert.deepEqual(oneM(s, mcreate(1, "gpu1-1", U4))[1], { err: "EBUSY" });
    [s] = oneM(s, mcreate(1, "gpu1-0", U4));
    assert.deepEqual(available(s, 1), [0, 0, 0]);
    assert.deepEqual(oneM(s, mcreate(1, "gpu1-0", "99999999-9999-9999-9999-999999999999"))[1], {
      err: "EBUSY",
    });
  });
  await t.step("ENODEV for an unknown parent or type", () => {
    const s = withGpu();
    assert.deepEqual(oneM(s, mcreate(2, "gpu1-0", U1))[1], { err: "ENODEV" });
    assert.deepEqual(oneM(s, mcreate(1, "gpu1-3", U1))[1], { err: "ENODEV" });
  });
  await t.step("EINVAL for a malformed UUID; the accepted format", () => {
    const s = withGpu();
    for (
      const bad of [
        "",
        "11111111-2222-3333-4444-55555555555", // 35 chars
        "11111111-2222-3333-4444-5555555555555", // 37 chars
        "111111112-222-3333-4444-555555555555", // hyphen misplaced
        "11111111-2222-3333-4444-55555555555g", // not hex
        "{11111111-2222-3333-4444-555555555555}",
        "11111111222233334444555555555555",
        `${U1}:params`,
        `${U1}\n\n`,
        ` ${U1}`,
      ]
    ) {
      assert.equal(parseUuid(bad), undefined, JSON.stringify(bad));
      assert.deepEqual(oneM(s, mcreate(1, "gpu1-0", bad))[1], { err: "EINVAL" }, bad);
    }
    assert.equal(parseUuid(U1.toUpperCase()), U1);
    assert.equal(parseUuid(`${U2}\n`), U2);
    assert.equal(
      parseUuid("00000000-0000-0000-0000-000000000000"),
      "00000000-0000-0000-0000-" +
        "000000000000",
    );
    const [s2, ret] = oneM(s, mcreate(1, "gpu1-0", `${U2.toUpperCase()}\n`));
    assert.equal(okOf(ret), FIRST_MDEV_GROUP);
    assert.ok(s2.devices.has(U2), "stored under the lower-case form");
  });
  await t.step("EEXIST for a live duplicate, in any case and under any parent", () => {
    let s = withGpu();
    [s] = oneM(s, reg(2));
    [s] = oneM(s, mcreate(1, "gpu1-0", U1));
    assert.deepEqual(oneM(s, mcreate(1, "gpu1-0", U1))[1], { err: "EEXIST" });
    assert.deepEqual(oneM(s, mcreate(1, "gpu1-1", U1.toUpperCase()))[1], { err: "EEXIST" });
    assert.deepEqual(oneM(s, mcreate(2, "gpu2-0", U1))[1], { err: "EEXIST" });
    [s] = oneM(s, mremove(U1));
    assert.equal(okOf(oneM(s, mcreate(1, "gpu1-0", U1))[1]), FIRST_MDEV_GROUP);
  });
  await t.step("one iommu group per mdev, the lowest free id from 10", () => {
    let s = withGpu();
    const { state, rets } = runM(s, [
      mcreate(1, "gpu1-0", U1),
      mcreate(1, "gpu1-0", U2),
      mcreate(1, "gpu1-0", U3),
    ]);
    assert.deepEqual(rets.map((r) => okOf(r)), [10, 11, 12]);
    s = state;
    [s] = oneM(s, mremove(U2));
    assert.equal(s.groups.has(11), false);
    const [s2, ret] = oneM(s, mcreate(1, "gpu1-0", U4));
    assert.equal(okOf(ret), 11);
    assert.equal(s2.devices.get(U4)!.group, 11);
    assert.equal(s2.groups.get(11), U4);
  });
});

Deno.test("mdev: remove, open, release", async (t) => {
  const base = runM(withGpu(), [mcreate(1, "gpu1-1", U1)]).state;
  await t.step("remove frees the units and the group", () => {
    const [s, ret] = oneM(base, mremove(U1));
    assert.deepEqual(ret, { ok: 0 });
    assert.equal(s.devices.size, 0);
    assert.equal(s.groups.size, 0);
    assert.deepEqual(available(s, 1), [8, 4, 2]);
  });
  await t.step("remove: EBUSY while open, ok after release", () => {
    const [s] = oneM(base, mopen(U1));
    assert.deepEqual(oneM(s, mremove(U1))[1], { err: "EBUSY" });
    const { rets } = runM(s, [mrelease(U1), mremove(U1)]);
    assert.deepEqual(rets, [{ ok: 0 }, { ok: 0 }]);
  });
  await t.step("remove/open/release: ENODEV unknown, EINVAL malformed", () => {
    for (const mk of [mremove, mopen, mrelease]) {
      assert.deepEqual(oneM(base, mk(U2))[1], { err: "ENODEV" });
      assert.deepEqual(oneM(base, mk("nope"))[1], { err: "EINVAL" });
    }
  });
  await t.step("one open per mdev: EBUSY for a second", () => {
    const [s, ret] = oneM(base, mopen(U1.toUpperCase()));
    assert.deepEqual(ret, { ok: 0 });
    assert.equal(s.devices.get(U1)!.open, true);
    assert.deepEqual(oneM(s, mopen(U1))[1], { err: "EBUSY" });
  });
  await t.step("release: EINVAL when not open; reopen after release", () => {
    assert.deepEqual(oneM(base, mrelease(U1))[1], { err: "EINVAL" });
    const { rets, state } = runM(base, [mopen(U1), mrelease(U1), mopen(U1)]);
    assert.deepEqual(rets, [{ ok: 0 }, { ok: 0 }, { ok: 0 }]);
    assert.equal(state.devices.get(U1)!.open, true);
  });
});

Deno.test("mdev: unregister with live and open devices", async (t) => {
  const base = runM(withGpu(), [
    mcreate(1, "gpu1-0", U1),
    mcreate(1, "gpu1-0", U2),
    mcreate(1, "gpu1-0", U3),
    mopen(U2),
    mopen(U3),
  ]).state;
  const [during, ret] = oneM(base, { op: "mdev.unregister", parent: 1 });
  await t.step("returns the open devices it waits for; closed ones go at once", () => {
    assert.deepEqual(ret, { ok: 2 });
    assert.deepEqual([...during.devices.keys()].sort(), [U2, U3].sort());
    assert.equal(during.groups.has(10), false);
    assert.ok(during.parents.has(1));
  });
  await t.step("from the moment it starts no create succeeds", () => {
    assert.deepEqual(oneM(during, mcreate(1, "gpu1-0", U4))[1], { err: "ENODEV" });
    assert.deepEqual(oneM(during, { op: "mdev.readTypes", parent: 1 })[1], { err: "ENODEV" });
    assert.deepEqual(oneM(during, { op: "mdev.unregister", parent: 1 })[1], { err: "ENODEV" });
    assert.deepEqual(oneM(during, reg(1))[1], { err: "EEXIST" });
  });
  await t.step("devices are removed as soon as they are closed; then the parent goes", () => {
    const [s1] = oneM(during, mrelease(U2));
    assert.equal(s1.devices.has(U2), false);
    assert.ok(s1.parents.has(1));
    const [s2] = oneM(s1, mrelease(U3));
    assert.equal(s2.devices.size, 0);
    assert.equal(s2.parents.has(1), false);
    assert.deepEqual(oneM(s2, reg(1))[1], { ok: 0 });
  });
  await t.step("an open device of an unregistering parent cannot be removed", () => {
    assert.deepEqual(oneM(during, mremove(U2))[1], { err: "EBUSY" });
  });
  await t.step("without open devices it completes at once; unknown parent ENODEV", () => {
    const [s, r] = oneM(withGpu(), { op: "mdev.unregister", parent: 1 });
    assert.deepEqual(r, { ok: 0 });
    assert.equal(s.parents.size, 0);
    assert.deepEqual(oneM(s, { op: "mdev.unregister", parent: 1 })[1], { err: "ENODEV" });
  });
});

Deno.test("mdev: ops refuse a parent registered by sdmdev (EPERM)", () => {
  let w = sd();
  [w] = oneS(w, screate(U1));
  const s = w.mdev;
  assert.deepEqual(stepMdev(s, mcreate(1, "zip1-0", U2)).ret, { err: "EPERM" });
  assert.deepEqual(stepMdev(s, mopen(U1)).ret, { err: "EPERM" });
  assert.deepEqual(stepMdev(s, mremove(U1)).ret, { err: "EPERM" });
  assert.deepEqual(stepMdev(s, { op: "mdev.unregister", parent: 1 }).ret, { err: "EPERM" });
  assert.deepEqual(stepMdev(s, reg(1)).ret, { err: "EEXIST" });
});

Deno.test("mdev: every invariant can fire", async (t) => {
  const s = runM(withGpu(), [mcreate(1, "gpu1-1", U1), mopen(U1)]).state;
  const p = s.parents.get(1)!;
  const d = s.devices.get(U1)!;
  const withP = (x: Partial<MdevParent>): MdevState => ({
    ...s,
    parents: new Map([[1, { ...p, ...x }]]),
  });
  const withD = (x: Partial<MdevDevice>): MdevState => ({
    ...s,
    devices: new Map([[U1, { ...d, ...x }]]),
  });
  const cases: [string, MdevState][] = [
    ["mdev.available-nonnegative", withP({ capacity: 1 })],
    ["mdev.one-group-per-mdev", withD({ group: 12 })],
    ["mdev.one-group-per-mdev", { ...s, groups: new Map() }],
    ["mdev.no-create-after-unregister", withP({ unregisterFrom: 0 })],
    ["mdev.units-balance", withP({ used: 1 })],
    ["mdev.units-balance", withD({ type: "gpu1-9" })],
  ];
  assert.deepEqual(checkMdevInvariants(s), []);
  for (const [name, bad] of cases) {
    await t.step(name, () => {
      const inv = mdevInvariants.find((i) => i.name === name)!;
      assert.notEqual(inv.check(bad), undefined);
    });
  }
  await t.step("closed device of an unregistering parent", () => {
    const closed = {
      ...withP({ unregisterFrom: 1 }),
      devices: new Map([[U1, { ...d, open: false }]]),
    };
    assert.match(checkMdevInvariants(closed).join(), /mdev.no-create-after-unregister/);
  });
});

// ---------------------------------------------------------------------------------------------
// sdmdev

Deno.test("sdmdev: register and sysfs attributes", async (t) => {
  await t.step("attributes of a parent without and with PASID support", () => {
    assert.deepEqual(okOf(stepSdmdev(sd(1, 4, false), attrs()).ret), {
      iommu_type: 1,
      dma_flag: 1,
      flags: 0,
      name: "zip1",
      device_api: "hisi_qm_v1",
      available_instances: 4,
    });
    assert.equal(okOf<SdmdevAttrs>(stepSdmdev(sd(1, 2, true), attrs()).ret).dma_flag, 2);
  });
  await t.step("EEXIST twice, also against a plain mdev parent; EINVAL malformed", () => {
    assert.deepEqual(oneS(sd(), sreg(1))[1], { err: "EEXIST" });
    const w: SdmdevWorld = { ...initialSdmdevWorld(), mdev: withGpu() };
    assert.deepEqual(oneS(w, sreg(1))[1], { err: "EEXIST" });
    const e = initialSdmdevWorld();
    assert.deepEqual(oneS(e, sreg(1, 0))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(e, { ...sreg(1), name: "" } as SdmdevCommand)[1], { err: "EINVAL" });
  });
  await t.step("sysfs of a device that is not an sdmdev: ENODEV", () => {
    assert.deepEqual(oneS(sd(), attrs(2))[1], { err: "ENODEV" });
    const w: SdmdevWorld = { ...initialSdmdevWorld(), mdev: withGpu() };
    assert.deepEqual(oneS(w, attrs(1))[1], { err: "ENODEV" });
  });
});

Deno.test("sdmdev: create takes a qp, remove puts it back", async (t) => {
  await t.step("get_queue at create: lowest free qp, available_instances drops", () => {
    const { state, rets } = runS(sd(1, 3), [screate(U1), screate(U2)]);
    assert.deepEqual(rets, [{ ok: 10 }, { ok: 11 }]);
    assert.equal(queue(state, U1).qn, 0);
    assert.equal(queue(state, U2).qn, 1);
    assert.equal(freeOf(state), 1);
    assert.deepEqual(state.sdmdev.parents.get(1)!.pool.owners.get(1), { mdev: U2 });
    assert.equal(state.sdmdev.parents.get(1)!.refs, 2);
  });
  await t.step("EBUSY when no qp is free; nothing changes", () => {
    const { state } = runS(sd(1, 2), [screate(U1), screate(U2)]);
    assert.equal(freeOf(state), 0);
    assert.deepEqual(oneS(state, screate(U3))[1], { err: "EBUSY" });
  });
  await t.step("create errnos: ENODEV, EINVAL, EEXIST", () => {
    const [w] = oneS(sd(), screate(U1));
    assert.deepEqual(oneS(w, screate(U2, 7))[1], { err: "ENODEV" });
    assert.deepEqual(oneS(w, screate("bad"))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(w, screate(U1.toUpperCase()))[1], { err: "EEXIST" });
  });
  await t.step("put_queue at remove: the qp is free again, exactly once", () => {
    const { state } = runS(sd(1, 2), [screate(U1), screate(U2), sremove(U1)]);
    assert.equal(freeOf(state), 1);
    assert.equal(state.sdmdev.parents.get(1)!.pool.owners.has(0), false);
    assert.equal(state.sdmdev.parents.get(1)!.refs, 1);
    assert.deepEqual(oneS(state, sremove(U1))[1], { err: "ENODEV" });
    const [again, ret] = oneS(state, screate(U3));
    assert.deepEqual(ret, { ok: 10 });
    assert.equal(queue(again, U3).qn, 0);
  });
  await t.step("remove while open: EBUSY, the ring stays allocated and mapped", () => {
    const { state } = runS(sd(), [screate(U1), sopen(U1), smmap(U1, 1, RING_SIZE)]);
    const [after, ret] = oneS(state, sremove(U1));
    assert.deepEqual(ret, { err: "EBUSY" });
    assert.equal(view(after, U1).ring, view(state, U1).ring);
    assert.equal(view(after, U1).maps.length, 1);
  });
});

Deno.test("sdmdev: open and release", async (t) => {
  const made = runS(sd(1, 4, false), [screate(U1), screate(U2)]).state;
  await t.step("open without PASID starts the queue with PASID 0 and a fresh ring", () => {
    const [w, ret] = oneS(made, sopen(U1));
    assert.deepEqual(ret, { ok: 0 });
    const q = view(w, U1);
    assert.equal(q.openedBy, P1);
    assert.equal(q.pasid, 0);
    assert.equal(q.ring, 1);
    assert.equal(w.mdev.devices.get(U1)!.open, true);
  });
  await t.step("a second open of the same mdev: EBUSY (no restart under live hardware)", () => {
    const [w] = oneS(made, sopen(U1));
    assert.deepEqual(oneS(w, sopen(U1))[1], { err: "EBUSY" });
    assert.deepEqual(oneS(w, sopen(U1, P2))[1], { err: "EBUSY" });
  });
  await t.step("single process without PASID: another process gets EBUSY on any sdmdev", () => {
    const [w] = oneS(made, sopen(U1, P1));
    assert.deepEqual(oneS(w, sopen(U2, P2))[1], { err: "EBUSY" });
    assert.deepEqual(oneS(w, sopen(U2, P1))[1], { ok: 0 });
    const [closed] = oneS(w, srelease(U1, P1));
    assert.deepEqual(oneS(closed, sopen(U2, P2))[1], { ok: 0 });
  });
  await t.step("with PASID support several processes may open; the queue waits for bind", () => {
    const { state, rets } = runS(sd(1, 4, true), [
      screate(U1),
      screate(U2),
      sopen(U1, P1),
      sopen(U2, P2),
    ]);
    assert.deepEqual(rets.slice(2), [{ ok: 0 }, { ok: 0 }]);
    assert.equal(view(state, U1).ring, null);
    assert.equal(view(state, U1).pasid, null);
  });
  await t.step("open errnos: ENODEV unknown, EINVAL malformed or bad caller", () => {
    assert.deepEqual(oneS(made, sopen(U3))[1], { err: "ENODEV" });
    assert.deepEqual(oneS(made, sopen("x"))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(made, sopen(U1, 0))[1], { err: "EINVAL" });
  });
  await t.step("close with mappings left: the file stays open and the queue runs", () => {
    const { state } = runS(made, [sopen(U1), smmap(U1, 0, PAGE_SIZE), smmap(U1, 1, RING_SIZE)]);
    const [w, ret] = oneS(state, srelease(U1));
    assert.deepEqual(ret, { ok: 0 });
    const q = view(w, U1);
    assert.deepEqual([q.state, q.openedBy, q.fd, q.ring, q.maps.length], [
      "started",
      P1,
      false,
      1,
      2,
    ]);
    assert.equal(w.mdev.devices.get(U1)!.open, true);
    assert.deepEqual(oneS(w, srelease(U1))[1], { err: "EINVAL" }, "the fd is closed already");
    assert.deepEqual(oneS(w, smmap(U1, 0, PAGE_SIZE))[1], { err: "EPERM" }, "no fd to mmap");
    assert.deepEqual(oneS(w, sopen(U1))[1], { err: "EBUSY" }, "the file is still open");
    assert.deepEqual(oneS(w, smunmap(U1, 1, P2))[1], { err: "EPERM" });
    assert.deepEqual(oneS(w, sremove(U1))[1], { err: "EBUSY" });
  });
  await t.step("the last munmap after close releases: queue stopped, ring freed", () => {
    const { state } = runS(made, [
      sopen(U1),
      smmap(U1, 0, PAGE_SIZE),
      smmap(U1, 1, RING_SIZE),
      srelease(U1),
      smunmap(U1, 2),
    ]);
    assert.equal(view(state, U1).state, "started", "one mapping still holds the file");
    const qn = queue(state, U1).qn;
    const [w, ret] = oneS(state, smunmap(U1, 1));
    assert.deepEqual(ret, { ok: 0 });
    const q = view(w, U1);
    assert.deepEqual([q.openedBy, q.ring, q.pasid, q.maps, q.updated], [
      null,
      null,
      null,
      [],
      false,
    ]);
    assert.equal(w.mdev.devices.get(U1)!.open, false);
    assert.deepEqual(oneS(w, { op: "sdmdev.notify", parent: 1, qn })[1], { err: "EINVAL" });
    assert.equal(freeOf(w), 2, "release keeps the qp; only remove puts it back");
  });
  await t.step("reopen allocates a new ring, never the freed one", () => {
    const { state } = runS(made, [sopen(U1), srelease(U1), sopen(U1)]);
    assert.equal(view(state, U1).ring, 2);
    assert.equal(state.sdmdev.nextRing, 3);
  });
  await t.step("release errnos: EINVAL not open, EPERM another process, ENODEV", () => {
    assert.deepEqual(oneS(made, srelease(U1))[1], { err: "EINVAL" });
    const [w] = oneS(made, sopen(U1, P1));
    assert.deepEqual(oneS(w, srelease(U1, P2))[1], { err: "EPERM" });
    assert.deepEqual(oneS(w, srelease(U3))[1], { err: "ENODEV" });
  });
});

Deno.test("sdmdev: mmap regions", async (t) => {
  const opened = runS(sd(), [screate(U1), sopen(U1)]).state;
  await t.step("region 0: the MMIO page, at most one page", () => {
    const [w, ret] = oneS(opened, smmap(U1, 0, PAGE_SIZE));
    assert.deepEqual(ret, { ok: 1 });
    assert.deepEqual(view(w, U1).maps, [{ id: 1, region: 0, size: PAGE_SIZE, ring: null }]);
    assert.deepEqual(oneS(opened, smmap(U1, 0, 100))[1], { ok: 1 });
    assert.deepEqual(oneS(opened, smmap(U1, 0, PAGE_SIZE + 1))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(opened, smmap(U1, 16, PAGE_SIZE))[1], { ok: 1 }, "pgoff 16 is region 0");
  });
  await t.step("region 1: the ring, at most its size", () => {
    const [w, ret] = oneS(opened, smmap(U1, 1, RING_SIZE));
    assert.deepEqual(ret, { ok: 1 });
    assert.deepEqual(view(w, U1).maps, [{ id: 1, region: 1, size: RING_SIZE, ring: 1 }]);
    assert.deepEqual(oneS(opened, smmap(U1, 1, RING_SIZE + 1))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(opened, smmap(U1, 0x11, PAGE_SIZE))[1], { ok: 1 }, "pgoff 17");
  });
  await t.step("region 1 only after start", () => {
    const w = runS(sd(1, 2, true), [screate(U1), sopen(U1)]).state;
    assert.deepEqual(oneS(w, smmap(U1, 1, PAGE_SIZE))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(w, smmap(U1, 0, PAGE_SIZE))[1], { ok: 1 });
  });
  await t.step("other regions and sizes: EINVAL; other processes: EPERM", () => {
    for (const pgoff of [2, 3, 15, 0x12]) {
      assert.deepEqual(oneS(opened, smmap(U1, pgoff, PAGE_SIZE))[1], { err: "EINVAL" });
    }
    assert.deepEqual(oneS(opened, smmap(U1, 0, 0))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(opened, smmap(U1, -1, PAGE_SIZE))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(opened, smmap(U1, 0, PAGE_SIZE, P2))[1], { err: "EPERM" });
    const closed = runS(sd(), [screate(U1)]).state;
    assert.deepEqual(oneS(closed, smmap(U1, 0, PAGE_SIZE))[1], { err: "EPERM" });
  });
  await t.step("munmap and mapping ids", () => {
    const { state, rets } = runS(opened, [
      smmap(U1, 0, PAGE_SIZE),
      smmap(U1, 1, PAGE_SIZE),
      { op: "sdmdev.munmap", uuid: U1, by: P1, map: 1 },
      smmap(U1, 1, 2 * PAGE_SIZE),
    ]);
    assert.deepEqual(rets, [{ ok: 1 }, { ok: 2 }, { ok: 0 }, { ok: 1 }]);
    assert.deepEqual(view(state, U1).maps.map((m) => [m.id, m.region]), [[2, 1], [1, 1]]);
    const munmap = (map: number, by = P1): SdmdevCommand => ({
      op: "sdmdev.munmap",
      uuid: U1,
      by,
      map,
    });
    assert.deepEqual(oneS(state, munmap(3))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(state, munmap(1, P2))[1], { err: "EPERM" });
  });
});

Deno.test("sdmdev: WAIT", async (t) => {
  const opened = runS(sd(), [screate(U1), sopen(U1)]).state;
  const qn = queue(opened, U1).qn;
  const notified = oneS(opened, { op: "sdmdev.notify", parent: 1, qn })[0];
  await t.step("an update in time returns the remaining time (at least 1)", () => {
    assert.deepEqual(oneS(opened, swait(U1, 100, 30))[1], { ok: 70 });
    assert.deepEqual(oneS(opened, swait(U1, 100, 100))[1], { ok: 1 });
    assert.deepEqual(oneS(opened, swait(U1, 100, 0))[1], { ok: 100 });
  });
  await t.step("timeout: 0; a late update stays pending for the next WAIT", () => {
    const [w, ret] = oneS(opened, swait(U1, 100, -1));
    assert.deepEqual(ret, { ok: 0 });
    assert.equal(view(w, U1).updated, false);
    const [late, r2] = oneS(opened, swait(U1, 100, 150));
    assert.deepEqual(r2, { ok: 0 });
    assert.equal(view(late, U1).updated, true);
    assert.deepEqual(oneS(late, swait(U1, 10, -1))[1], { ok: 10 });
  });
  await t.step("a pending notification is consumed by the WAIT", () => {
    assert.equal(view(notified, U1).updated, true);
    const [w, ret] = oneS(notified, swait(U1, 50, -1));
    assert.deepEqual(ret, { ok: 50 });
    assert.equal(view(w, U1).updated, false);
    assert.deepEqual(oneS(w, swait(U1, 50, -1))[1], { ok: 0 });
  });
  await t.step("timeout 0 waits forever: 0 on update, EAGAIN (signal) without", () => {
    assert.deepEqual(oneS(opened, swait(U1, 0, 5000))[1], { ok: 0 });
    assert.deepEqual(oneS(notified, swait(U1, 0, -1))[1], { ok: 0 });
    assert.deepEqual(oneS(opened, swait(U1, 0, -1))[1], { err: "EAGAIN" });
  });
  await t.step("errnos: EINVAL not running or malformed, EPERM other process", () => {
    const sva = runS(sd(1, 2, true), [screate(U1), sopen(U1)]).state;
    assert.deepEqual(oneS(sva, swait(U1, 10, 1))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(opened, swait(U1, -1, 1))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(opened, swait(U1, 10, -2))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(opened, swait(U1, 10, 1, P2))[1], { err: "EPERM" });
  });
  await t.step("notify: only for a running sdmdev queue", () => {
    assert.deepEqual(oneS(opened, { op: "sdmdev.notify", parent: 2, qn })[1], { err: "ENODEV" });
    assert.deepEqual(oneS(opened, { op: "sdmdev.notify", parent: 1, qn: 3 })[1], {
      err: "EINVAL",
    });
    const [k] = oneS(opened, { op: "sdmdev.tfmInit", parent: 1, tfm: 1 });
    const kqn = k.sdmdev.parents.get(1)!.tfms.get(1)![0];
    assert.deepEqual(oneS(k, { op: "sdmdev.notify", parent: 1, qn: kqn })[1], { err: "EINVAL" });
  });
});

Deno.test("sdmdev: BIND_PASID", async (t) => {
  const base = runS(sd(1, 4, true), [
    screate(U1),
    screate(U2),
    sopen(U1, P1),
    sopen(U2, P2),
    { op: "sdmdev.svaBind", by: P1 },
    { op: "sdmdev.svaBind", by: P2 },
  ]);
  const [pasid1, pasid2] = base.rets.slice(4).map((r) => okOf<number>(r));
  const w = base.state;
  const bind = (uuid: string, by: number, pasid: number): SdmdevCommand => ({
    op: "sdmdev.bindPasid",
    uuid,
    by,
    pasid,
  });
  await t.step("svaBind gives each process its own PASID, the same on every call", () => {
    assert.deepEqual([pasid1, pasid2], [1, 2]);
    assert.deepEqual(oneS(w, { op: "sdmdev.svaBind", by: P1 })[1], { ok: 1 });
  });
  await t.step("bind with the caller's PASID starts the queue with it", () => {
    const [s, ret] = oneS(w, bind(U1, P1, pasid1));
    assert.deepEqual(ret, { ok: 0 });
    assert.equal(view(s, U1).pasid, pasid1);
    assert.notEqual(view(s, U1).ring, null);
    assert.deepEqual(oneS(s, smmap(U1, 1, RING_SIZE))[1], { ok: 1 });
  });
  await t.step("EINVAL unless the PASID belongs to the caller's mm", () => {
    assert.deepEqual(oneS(w, bind(U1, P1, pasid2))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(w, bind(U1, P1, 99))[1], { err: "EINVAL" });
  });
  await t.step("EBUSY when the queue already runs (no restart under live hardware)", () => {
    const [s] = oneS(w, bind(U1, P1, pasid1));
    assert.deepEqual(oneS(s, bind(U1, P1, pasid1))[1], { err: "EBUSY" });
  });
  await t.step("EINVAL without PASID support; EPERM for a process not holding it", () => {
    const plain = runS(sd(1, 2, false), [screate(U1), sopen(U1), {
      op: "sdmdev.svaBind",
      by: P1,
    }]).state;
    assert.deepEqual(oneS(plain, bind(U1, P1, 1))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(w, bind(U1, P2, pasid2))[1], { err: "EPERM" });
  });
});

Deno.test("sdmdev: kernel users share the qp pool", async (t) => {
  const tfm = (op: "sdmdev.tfmInit" | "sdmdev.tfmExit", id: number): SdmdevCommand => ({
    op,
    parent: 1,
    tfm: id,
  });
  await t.step("a transform takes two qps; available_instances drops by two", () => {
    const [w, ret] = oneS(runS(sd(1, 4), [screate(U1)]).state, tfm("sdmdev.tfmInit", 7));
    assert.deepEqual(ret, { ok: [1, 2] });
    assert.equal(freeOf(w), 1);
    assert.deepEqual(w.sdmdev.parents.get(1)!.pool.owners.get(2), { tfm: 7 });
    assert.deepEqual(oneS(w, screate(U2))[1], { ok: 11 });
    assert.deepEqual(oneS(oneS(w, screate(U2))[0], screate(U3))[1], { err: "EBUSY" });
  });
  await t.step("all or nothing: EBUSY with one free qp, nothing taken", () => {
    const w = runS(sd(1, 3), [screate(U1), screate(U2)]).state;
    assert.deepEqual(oneS(w, tfm("sdmdev.tfmInit", 1))[1], { err: "EBUSY" });
  });
  await t.step("exit gives both back; errnos", () => {
    const [w] = oneS(sd(1, 2), tfm("sdmdev.tfmInit", 1));
    assert.deepEqual(oneS(w, tfm("sdmdev.tfmInit", 1))[1], { err: "EEXIST" });
    assert.deepEqual(oneS(w, tfm("sdmdev.tfmInit", 0))[1], { err: "EINVAL" });
    const [back, ret] = oneS(w, tfm("sdmdev.tfmExit", 1));
    assert.deepEqual(ret, { ok: 0 });
    assert.equal(freeOf(back), 2);
    assert.deepEqual(oneS(back, tfm("sdmdev.tfmExit", 1))[1], { err: "EINVAL" });
    assert.deepEqual(oneS(back, { op: "sdmdev.tfmInit", parent: 5, tfm: 1 })[1], {
      err: "ENODEV",
    });
  });
  await t.step(
    "unregister cannot fail: it waits for a transform to exit, then the parent goes",
    () => {
      const [w] = oneS(sd(), tfm("sdmdev.tfmInit", 1));
      const [during, r] = oneS(w, { op: "sdmdev.unregister", parent: 1 });
      assert.deepEqual(r, { ok: 1 }, "one user waited for");
      assert.equal(during.sdmdev.parents.has(1), true);
      assert.deepEqual(oneS(during, tfm("sdmdev.tfmInit", 2))[1], { err: "ENODEV" });
      assert.deepEqual(oneS(during, screate(U1))[1], { err: "ENODEV" });
      const [after, e] = oneS(during, tfm("sdmdev.tfmExit", 1));
      assert.deepEqual(e, { ok: 0 });
      assert.equal(after.sdmdev.parents.size, 0);
      assert.equal(after.mdev.parents.size, 0);
      assert.deepEqual(oneS(after, tfm("sdmdev.tfmExit", 1))[1], { err: "ENODEV" });
    },
  );
});

Deno.test("sdmdev: unregister", async (t) => {
  const base = runS(sd(1, 4), [screate(U1), screate(U2), sopen(U2), smmap(U2, 1, PAGE_SIZE)])
    .state;
  const [during, ret] = oneS(base, { op: "sdmdev.unregister", parent: 1 });
  await t.step("closed sdmdevs go at once with their qps; open ones are waited for", () => {
    assert.deepEqual(ret, { ok: 1 });
    assert.equal(during.sdmdev.queues.has(U1), false);
    assert.equal(during.sdmdev.parents.get(1)!.pool.owners.size, 1);
    assert.equal(during.sdmdev.parents.get(1)!.refs, 1);
    assert.notEqual(view(during, U2).ring, null, "the open queue keeps running");
  });
  await t.step("no create, transform, attribute read or second unregister meanwhile", () => {
    assert.deepEqual(oneS(during, screate(U3))[1], { err: "ENODEV" });
    assert.deepEqual(oneS(during, { op: "sdmdev.tfmInit", parent: 1, tfm: 1 })[1], {
      err: "ENODEV",
    });
    assert.deepEqual(oneS(during, attrs())[1], { err: "ENODEV" });
    assert.deepEqual(oneS(during, { op: "sdmdev.unregister", parent: 1 })[1], { err: "ENODEV" });
    assert.deepEqual(oneS(during, sremove(U2))[1], { err: "EBUSY" });
  });
  await t.step("the release of the last sdmdev's file removes it, and the parent with it", () => {
    const [closed, r] = oneS(during, srelease(U2));
    assert.deepEqual(r, { ok: 0 });
    assert.equal(closed.sdmdev.queues.size, 1, "its mapping still holds the file");
    const [w, u] = oneS(closed, smunmap(U2, 1));
    assert.deepEqual(u, { ok: 0 });
    assert.equal(w.sdmdev.queues.size, 0);
    assert.equal(w.sdmdev.parents.size, 0);
    assert.equal(w.mdev.parents.size, 0);
    assert.deepEqual(oneS(w, sreg(1))[1], { ok: 0 });
  });
  await t.step("unknown parent: ENODEV; nothing open: completes at once", () => {
    assert.deepEqual(oneS(sd(), { op: "sdmdev.unregister", parent: 2 })[1], { err: "ENODEV" });
    const [w, r] = oneS(runS(sd(), [screate(U1)]).state, { op: "sdmdev.unregister", parent: 1 });
    assert.deepEqual(r, { ok: 0 });
    assert.equal(w.sdmdev.parents.size + w.sdmdev.queues.size + w.mdev.devices.size, 0);
  });
});

Deno.test("sdmdev: every invariant can fire", async (t) => {
  const w = runS(sd(1, 4, false), [
    screate(U1),
    screate(U2),
    sopen(U1),
    smmap(U1, 1, PAGE_SIZE),
    { op: "sdmdev.tfmInit", parent: 1, tfm: 1 },
  ]).state;
  assert.deepEqual(checkSdmdevInvariants(w), []);
  const p = w.sdmdev.parents.get(1)!;
  const q1 = queue(w, U1);
  const withQ = (x: Partial<SdmdevQueue>, uuid = U1): SdmdevWorld => ({
    ...w,
    sdmdev: {
      ...w.sdmdev,
      queues: new Map([...w.sdmdev.queues, [uuid, { ...queue(w, uuid), ...x }]]),
    },
  });
  const withP = (x: Partial<SdmdevParent>): SdmdevWorld => ({
    ...w,
    sdmdev: { ...w.sdmdev, parents: new Map([[1, { ...p, ...x }]]) },
  });
  const owners = (f: (m: Map<number, unknown>) => void) => {
    const m = new Map(p.pool.owners) as Map<number, unknown>;
    f(m);
    return withP({ pool: { ...p.pool, owners: m as SdmdevParent["pool"]["owners"] } });
  };
  const cases: [string, SdmdevWorld][] = [
    ["sdmdev.qp-single-owner", withP({ tfms: new Map([[1, [0, 2] as const]]) })],
    ["sdmdev.qp-single-owner", withQ({ qn: 0 }, U2)],
    ["sdmdev.qp-single-owner", owners((m) => m.set(3, { mdev: U3 }))],
    ["sdmdev.qp-single-owner", owners((m) => m.delete(0))],
    ["sdmdev.available-instances", {
      ...w,
      mdev: { ...w.mdev, parents: new Map([[1, { ...w.mdev.parents.get(1)!, reserved: 0 }]]) },
    }],
    ["sdmdev.one-open-per-mdev", withQ({ life: { state: "closed" } })],
    ["sdmdev.one-open-per-mdev", {
      ...withQ({ life: { state: "opened", by: P2, fd: true, maps: [] } }, U2),
      mdev: {
        ...w.mdev,
        devices: new Map([...w.mdev.devices, [U2, { ...w.mdev.devices.get(U2)!, open: true }]]),
      },
    }],
    [
      "sdmdev.no-freed-ring-mapped",
      withQ({
        life: { state: "opened", by: P1, fd: true, maps: mappingsOf(q1) },
      }),
    ],
    [
      "sdmdev.no-freed-ring-mapped",
      withQ({ life: { ...q1.life, maps: [] } as SdmdevQueue["life"] }, U2),
    ],
    ["sdmdev.running-owner", withQ({ life: { ...q1.life, pasid: 3 } as SdmdevQueue["life"] })],
    ["sdmdev.refcounts", withP({ refs: -1 })],
    ["sdmdev.refcounts", withP({ refs: 3 })],
    ["sdmdev.no-create-after-unregister", {
      ...w,
      mdev: {
        ...w.mdev,
        parents: new Map([[1, { ...w.mdev.parents.get(1)!, unregisterFrom: 0 }]]),
      },
    }],
    ["sdmdev.world-consistent", withP({ tfms: new Map() })],
    ["sdmdev.world-consistent", {
      ...w,
      sdmdev: { ...w.sdmdev, queues: new Map([[U1, q1]]) },
    }],
  ];
  for (const [name, bad] of cases) {
    await t.step(name, () => {
      const inv = sdmdevInvariants.find((i) => i.name === name)!;
      assert.ok(inv, `${name} exists`);
      assert.notEqual(inv.check(bad), undefined, `${name} should fire`);
    });
  }
  await t.step("every sdmdev invariant named in the brief has a scope", () => {
    const names = sdmdevInvariants.map((i) => `${i.name}:${i.scope}`);
    for (
      const n of [
        "sdmdev.qp-single-owner:always",
        "sdmdev.available-instances:between-ops",
        "sdmdev.one-open-per-mdev:always",
        "sdmdev.no-freed-ring-mapped:always",
        "sdmdev.refcounts:always",
        "sdmdev.no-create-after-unregister:always",
      ]
    ) {
      assert.ok(names.includes(n), n);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random command sequences keep every invariant

const UUIDS = [U1, U2, U3, U4, U1.toUpperCase()];
const PROCS = [P1, P2, 3];
/** In generated commands, `by: HOLDER` means "the process holding the device open, if any". */
const HOLDER = -1;
/** In generated `sdmdev.bindPasid`, `pasid: OWN` means "the caller's PASID, if it has one". */
const OWN = -1;

/** Resolves {@link HOLDER} and {@link OWN} against the current world. */
function resolve(w: SdmdevWorld, cmd: SdmdevCommand): SdmdevCommand {
  if (!("by" in cmd) || !("uuid" in cmd)) return cmd;
  let c = cmd;
  if (c.by === HOLDER) {
    const canon = parseUuid(c.uuid);
    const q = canon === undefined ? undefined : w.sdmdev.queues.get(canon);
    c = { ...c, by: (q && holderOf(q)) ?? P1 };
  }
  if (c.op === "sdmdev.bindPasid" && c.pasid === OWN) {
    const own = [...w.sdmdev.pasids].find(([, mm]) => mm === c.by);
    c = { ...c, pasid: own ? own[0] : 0 };
  }
  return c;
}

/** A command over a small universe: sdmdev parents 1 (no PASID, 3 qps) and 2 (PASID, 2 qps). */
const sdmdevCmdArb: fc.Arbitrary<SdmdevCommand> = (() => {
  const parent = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(1, 2) },
    { weight: 1, arbitrary: fc.constant(3) },
  );
  const uuid = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...UUIDS) },
    { weight: 1, arbitrary: fc.constant("bad-uuid") },
  );
  const by = fc.oneof(
    { weight: 3, arbitrary: fc.constant(HOLDER) },
    { weight: 2, arbitrary: fc.constantFrom(...PROCS) },
  );
  return fc.oneof(
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.register" as const),
        parent,
        name: fc.constant("zip"),
        qpNum: fc.integer({ min: 1, max: 3 }),
        sva: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("sdmdev.unregister" as const), parent }) },
    {
      weight: 6,
      arbitrary: fc.record({ op: fc.constant("sdmdev.create" as const), parent, uuid }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("sdmdev.remove" as const), uuid }) },
    { weight: 6, arbitrary: fc.record({ op: fc.constant("sdmdev.open" as const), uuid, by }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("sdmdev.release" as const), uuid, by }) },
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.mmap" as const),
        uuid,
        by,
        pgoff: fc.constantFrom(0, 1, 2, 15, 16, 17, 0x22),
        size: fc.constantFrom(0, 1, PAGE_SIZE, 2 * PAGE_SIZE, RING_SIZE, RING_SIZE + 1),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.munmap" as const),
        uuid,
        by,
        map: fc.integer({ min: 1, max: 3 }),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.wait" as const),
        uuid,
        by,
        timeout: fc.integer({ min: 0, max: 20 }),
        updateAt: fc.integer({ min: -1, max: 25 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.notify" as const),
        parent,
        qn: fc.integer({ min: 0, max: 3 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.svaBind" as const),
        by: fc.constantFrom(...PROCS),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.bindPasid" as const),
        uuid,
        by,
        pasid: fc.oneof(
          { weight: 3, arbitrary: fc.constant(OWN) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }) },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("sdmdev.readAttrs" as const), parent }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.tfmInit" as const),
        parent,
        tfm: fc.integer({ min: 1, max: 2 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("sdmdev.tfmExit" as const),
        parent,
        tfm: fc.integer({ min: 1, max: 2 }),
      }),
    },
  );
})();

const mdevCmdArb: fc.Arbitrary<MdevCommand> = (() => {
  const parent = fc.constantFrom(1, 2);
  const uuid = fc.constantFrom(...UUIDS, "bad-uuid");
  return fc.oneof(
    { weight: 1, arbitrary: parent.map((p) => reg(p, { capacity: 2 + p, types: 1 + p })) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("mdev.unregister" as const), parent }) },
    {
      weight: 4,
      arbitrary: fc.record({ parent, i: fc.integer({ min: 0, max: 2 }), uuid }).map((
        { parent, i, uuid },
      ): MdevCommand => mcreate(parent, `gpu${parent}-${i}`, uuid)),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("mdev.remove" as const), uuid }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("mdev.open" as const), uuid }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("mdev.release" as const), uuid }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("mdev.readTypes" as const), parent }) },
  );
})();

const coverage = new Map<string, number>();

function tally(op: string, r: StepResult<unknown>): void {
  const key = `${op}:${"ok" in r.ret ? "ok" : r.ret.err}`;
  coverage.set(key, (coverage.get(key) ?? 0) + 1);
}

type SdStep = (w: SdmdevWorld, cmd: SdmdevCommand) => StepResult<SdmdevWorld>;

/**
 * The sdmdev property: random sequences after a prelude that registers parents 1 (no PASID,
 * 3 qps) and 2 (PASID, 2 qps) and opens one sdmdev of each
 * keep every invariant, a failed command leaves the state alone, and `available_instances`
 * reads as the free qps. Returns fast-check's report (failed or not).
 */
function sdmdevProperty(step: SdStep, numRuns: number): fc.RunDetails<[SdmdevCommand[]]> {
  // Prelude: both parents registered, one sdmdev of each open, so traffic starts at once.
  const prelude: SdmdevCommand[] = [
    sreg(1, 3, false),
    sreg(2, 2, true),
    screate(U1, 1),
    screate(U2, 2),
    sopen(U1, P1),
    sopen(U2, P2),
    { op: "sdmdev.svaBind", by: P2 },
  ];
  return fc.check(
    fc.property(fc.array(sdmdevCmdArb, { minLength: 1, maxLength: 60, size: "max" }), (cmds) => {
      let w = initialSdmdevWorld();
      for (const generated of [...prelude, ...cmds]) {
        const cmd = resolve(w, generated);
        const r = step(w, cmd);
        tally(cmd.op, r);
        const bad = checkSdmdevInvariants(r.state);
        if (bad.length > 0) throw new Error(`after ${JSON.stringify(cmd)}: ${bad.join("; ")}`);
        if ("err" in r.ret && r.state !== w) throw new Error(`${cmd.op} failed and changed state`);
        if (cmd.op === "sdmdev.readAttrs" && "ok" in r.ret) {
          const a = r.ret.ok as SdmdevAttrs;
          const p = r.state.sdmdev.parents.get(cmd.parent)!;
          assert.equal(a.available_instances, p.pool.qpNum - p.pool.owners.size);
          assert.ok(a.available_instances >= 0);
        }
        w = r.state;
      }
    }),
    { seed: SEED, numRuns },
  );
}

Deno.test("sdmdev + mdev random command sequences keep every invariant", () => {
  const start = performance.now();
  const details = sdmdevProperty(stepSdmdev, 1000);
  assert.equal(details.failed, false, fc.defaultReportMessage(details));
  fc.assert(
    fc.property(fc.array(mdevCmdArb, { minLength: 1, maxLength: 50, size: "max" }), (cmds) => {
      let s = initialMdevState();
      for (const cmd of cmds) {
        const r = stepMdev(s, cmd);
        tally(cmd.op, r);
        const bad = checkMdevInvariants(r.state);
        if (bad.length > 0) throw new Error(`after ${JSON.stringify(cmd)}: ${bad.join("; ")}`);
        if ("err" in r.ret && r.state !== s) throw new Error(`${cmd.op} failed and changed state`);
        if (cmd.op === "mdev.readTypes" && "ok" in r.ret) {
          for (const t of r.ret.ok as MdevTypeInfo[]) assert.ok(t.available_instances >= 0);
        }
        s = r.state;
      }
    }),
    { seed: SEED, numRuns: 500 },
  );
  console.log(`coverage: ${JSON.stringify(Object.fromEntries([...coverage].sort()))}`);
  console.log(`property runs took ${Math.round(performance.now() - start)} ms`);
  // The generators must reach the interesting rules, or the property proves little.
  for (
    const key of [
      "sdmdev.create:ok",
      "sdmdev.create:EBUSY",
      "sdmdev.create:EEXIST",
      "sdmdev.create:ENODEV",
      "sdmdev.remove:ok",
      "sdmdev.remove:EBUSY",
      "sdmdev.open:ok",
      "sdmdev.open:EBUSY",
      "sdmdev.release:ok",
      "sdmdev.mmap:ok",
      "sdmdev.mmap:EINVAL",
      "sdmdev.wait:ok",
      "sdmdev.notify:ok",
      "sdmdev.bindPasid:ok",
      "sdmdev.unregister:ok",
      "sdmdev.tfmInit:ok",
      "sdmdev.tfmInit:EBUSY",
      "mdev.create:ok",
      "mdev.create:EBUSY",
      "mdev.create:EEXIST",
      "mdev.remove:EBUSY",
      "mdev.open:EBUSY",
      "mdev.unregister:ok",
      "mdev.release:ok",
    ]
  ) {
    assert.ok((coverage.get(key) ?? 0) > 0, `the generator never produced ${key}`);
  }
});

// ---------------------------------------------------------------------------------------------
// The property can fail: seeded defects (DOMAIN.md §4 quirks, written as spec mutants) are found

function mutate(
  op: SdmdevCommand["op"],
  f: (w: SdmdevWorld, cmd: SdmdevCommand, good: StepResult<SdmdevWorld>) => StepResult<SdmdevWorld>,
): SdStep {
  return (w, cmd) => {
    const good = stepSdmdev(w, cmd);
    return cmd.op === op ? f(w, cmd, good) : good;
  };
}

function patchQueue(w: SdmdevWorld, uuid: string, x: Partial<SdmdevQueue>): SdmdevWorld {
  const canon = parseUuid(uuid)!;
  const q = w.sdmdev.queues.get(canon)!;
  return {
    ...w,
    sdmdev: { ...w.sdmdev, queues: new Map([...w.sdmdev.queues, [canon, { ...q, ...x }]]) },
  };
}

Deno.test("the property finds seeded sdmdev defects", async (t) => {
  const mutants: [string, SdStep, RegExp][] = [
    [
      "stopQueueNoop: release leaves the hardware queue running",
      mutate("sdmdev.release", (w, cmd, good) => {
        if (!("ok" in good.ret) || !("uuid" in cmd)) return good;
        const q = w.sdmdev.queues.get(parseUuid(cmd.uuid)!)!;
        if (q.life.state !== "started" || !good.state.sdmdev.queues.has(q.uuid)) return good;
        const life = { ...q.life, fd: false, maps: [] };
        return { ...good, state: patchQueue(good.state, q.uuid, { life }) };
      }),
      /sdmdev\.one-open-per-mdev/,
    ],
    [
      "reopenRestartsQueue: a second BIND_PASID allocates a new ring under the old mappings",
      mutate("sdmdev.bindPasid", (w, cmd, good) => {
        if (!("err" in good.ret) || good.ret.err !== "EBUSY" || cmd.op !== "sdmdev.bindPasid") {
          return good;
        }
        const q = w.sdmdev.queues.get(parseUuid(cmd.uuid)!)!;
        const life = { ...q.life, ring: w.sdmdev.nextRing } as SdmdevQueue["life"];
        const next = patchQueue(w, cmd.uuid, { life });
        return {
          ...good,
          ret: { ok: 0 },
          state: { ...next, sdmdev: { ...next.sdmdev, nextRing: w.sdmdev.nextRing + 1 } },
        };
      }),
      /./,
    ],
    [
      "availableInstancesAlwaysZero: the attribute reads 0",
      mutate(
        "sdmdev.readAttrs",
        (_w, _cmd, good) =>
          "ok" in good.ret
            ? { ...good, ret: { ok: { ...(good.ret.ok as SdmdevAttrs), available_instances: 0 } } }
            : good,
      ),
      /available_instances|Expected values to be strictly equal/,
    ],
    [
      "double put_queue: remove drops the parent reference twice",
      mutate("sdmdev.remove", (_w, cmd, good) => {
        if (!("ok" in good.ret) || !("uuid" in cmd)) return good;
        const parents = new Map(good.state.sdmdev.parents);
        for (const [id, p] of parents) parents.set(id, { ...p, refs: p.refs - 1 });
        return { ...good, state: { ...good.state, sdmdev: { ...good.state.sdmdev, parents } } };
      }),
      /sdmdev\.refcounts/,
    ],
  ];
  for (const [name, step, expected] of mutants) {
    await t.step(name, () => {
      const details = sdmdevProperty(step, 5000);
      assert.equal(details.failed, true, `${name} was not found`);
      assert.match(String(details.errorInstance), expected);
    });
  }
});
