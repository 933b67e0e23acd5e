/**
 * The char-device design (spec/uacce.ts, impl/uacce/, the QM as its parent): the spec's rules
 * step by step, the implementation following them on hand-written sequences, the invariants
 * failing on the states they forbid, and the race scenarios catching the two race quirks.
 */
import assert from "node:assert/strict";
import {
  checkUacceInvariants,
  initialUacceState,
  stepUacce,
  UACCE_DEV_SVA,
  UACCE_DUS_SIZE,
  UACCE_MMIO_SIZE,
  type UacceCommand,
  type UacceState,
} from "../spec/uacce.ts";
import type { Ret } from "../spec/types.ts";
import { UACCE_PRELUDE, uacceMachine } from "../model/machines/uacce.ts";
import { runSequential } from "../model/runner.ts";
import { runRace } from "../model/race.ts";
import { machineNamed } from "../model/machines.ts";
import { parseTrace } from "../model/trace.ts";
import { prngDriver } from "../impl/sched.ts";

/** Steps `cmds` through the spec from the initial state: the last state and every ret. */
function run(cmds: readonly UacceCommand[], from: UacceState = initialUacceState()) {
  let state = from;
  const rets: Ret[] = [];
  for (const cmd of cmds) {
    const r = stepUacce(state, cmd);
    assert.deepEqual(r.events, [], `${cmd.op} raised events`);
    state = r.state;
    rets.push(r.ret);
  }
  return { state, rets };
}

const mmio = (file: number): UacceCommand => ({
  op: "uacce.mmap",
  file,
  pgoff: 0,
  size: UACCE_MMIO_SIZE,
});
const dus = (file: number): UacceCommand => ({
  op: "uacce.mmap",
  file,
  pgoff: 1,
  size: UACCE_DUS_SIZE,
});

Deno.test("spec: SVA is kept only where the parent's IOMMU does it; one PASID per process", () => {
  const { state, rets } = run([
    { op: "uacce.register", parent: 1, qpNum: 2, sva: true },
    { op: "uacce.register", parent: 2, qpNum: 2, sva: true },
    { op: "uacce.open", parent: 1, by: 7 },
    { op: "uacce.open", parent: 1, by: 7 },
    { op: "uacce.open", parent: 2, by: 7 },
    { op: "uacce.open", parent: 1, by: 8 },
  ]);
  assert.deepEqual(rets.slice(0, 2), [
    { ok: { dev: 1, flags: UACCE_DEV_SVA } },
    { ok: { dev: 2, flags: 0 } },
  ]);
  assert.deepEqual(rets.slice(2), [{ ok: 1 }, { ok: 2 }, { ok: 3 }, { err: "EBUSY" }]);
  assert.deepEqual([...state.files.values()].map((f) => f.pasid), [1, 1, 0]);
  // The refused open bound process 8 first: its PASID stays.
  assert.deepEqual([...state.pasids], [[1, 7], [2, 8]]);
});

Deno.test("spec: a queue from INIT to STARTED to ZOMBIE, its queue pair kept while mapped", () => {
  const setUp: UacceCommand[] = [
    { op: "uacce.register", parent: 1, qpNum: 2, sva: false },
    { op: "uacce.open", parent: 1, by: 1 },
    dus(1),
    { op: "uacce.startQ", file: 1 },
  ];
  const { state, rets } = run([
    ...setUp,
    { op: "uacce.startQ", file: 1 },
    { op: "uacce.putQ", file: 1 },
    { op: "uacce.putQ", file: 1 },
    { op: "uacce.startQ", file: 1 },
    mmio(1),
    { op: "uacce.access", file: 1, map: 1 },
  ]);
  assert.deepEqual(rets.slice(4), [
    { err: "EINVAL" },
    { ok: 0 },
    { err: "ENXIO" },
    { err: "ENXIO" },
    { err: "ENXIO" },
    { ok: 0 },
  ]);
  const f = state.files.get(1)!;
  assert.deepEqual(f.queue, { state: "ZOMBIE", held: true, qn: 0 });
  assert.deepEqual(state.devices.get(1)!.qps.get(0), { file: 1, running: false, dus: true });
  // Released with its last reference: the queue pair is free again.
  const closed = run(
    [{ op: "uacce.close", file: 1 }, { op: "uacce.munmap", file: 1, map: 1 }],
    state,
  );
  assert.deepEqual(closed.rets, [{ ok: 0 }, { ok: 0 }]);
  assert.equal(closed.state.files.size, 0);
  assert.equal(closed.state.devices.get(1)!.available, 2);
  // Unmapped, PUT_Q gives the queue pair back at once.
  const unmapped = run([...setUp, { op: "uacce.munmap", file: 1, map: 1 }, {
    op: "uacce.putQ",
    file: 1,
  }]);
  assert.deepEqual(unmapped.state.files.get(1)!.queue, { state: "ZOMBIE", held: false });
  assert.equal(unmapped.state.devices.get(1)!.available, 2);
});

Deno.test("spec: mmap's errnos come in upstream's order", () => {
  const base = run([
    { op: "uacce.register", parent: 1, qpNum: 1, sva: false },
    { op: "uacce.open", parent: 1, by: 1 },
    mmio(1),
  ]).state;
  const ret = (cmd: UacceCommand, s = base) => stepUacce(s, cmd).ret;
  assert.deepEqual(ret({ op: "uacce.mmap", file: 9, pgoff: 5, size: 0 }), { err: "EBADF" });
  assert.deepEqual(ret({ op: "uacce.mmap", file: 1, pgoff: 2, size: 4096 }), { err: "EINVAL" });
  assert.deepEqual(ret(mmio(1)), { err: "EEXIST" });
  assert.deepEqual(ret({ op: "uacce.mmap", file: 1, pgoff: 0, size: 1 }), { err: "EEXIST" });
  assert.deepEqual(ret({ op: "uacce.mmap", file: 1, pgoff: 1, size: 4096 }), { err: "EINVAL" });
  assert.deepEqual(ret(dus(1)), { ok: 2 });
  const zombie = run([{ op: "uacce.putQ", file: 1 }], base).state;
  assert.deepEqual(ret(mmio(1), zombie), { err: "ENXIO" });
  const closed = run([{ op: "uacce.close", file: 1 }], base).state;
  assert.deepEqual(ret(dus(1), closed), { err: "EBADF" });
});

Deno.test("spec: the parent's removal zombifies, zaps and frees; the files stay until let go", () => {
  const { state, rets } = run([
    ...UACCE_PRELUDE,
    { op: "uacce.remove", parent: 1 },
    { op: "uacce.remove", parent: 1 },
    { op: "uacce.open", parent: 1, by: 1 },
    { op: "uacce.access", file: 1, map: 2 },
    { op: "uacce.startQ", file: 1 },
    { op: "uacce.readAttrs", parent: 1 },
    { op: "uacce.register", parent: 1, qpNum: 1, sva: true },
  ]);
  assert.deepEqual(rets.slice(UACCE_PRELUDE.length), [
    { ok: 0 },
    { err: "ENODEV" },
    { err: "ENODEV" },
    { err: "EFAULT" },
    { err: "ENXIO" },
    { err: "ENODEV" },
    { ok: { dev: 3, flags: UACCE_DEV_SVA } },
  ]);
  const f = state.files.get(1)!;
  assert.deepEqual(f.queue, { state: "ZOMBIE", held: false });
  assert.ok(f.maps.every((m) => m.zapped));
  assert.equal(state.devices.get(1)!.dev, 3);
  assert.deepEqual(checkUacceInvariants(state), []);
  const gone = run([
    { op: "uacce.munmap", file: 1, map: 1 },
    { op: "uacce.munmap", file: 1, map: 2 },
    { op: "uacce.close", file: 1 },
  ], state).state;
  assert.equal(gone.files.has(1), false);
});

Deno.test("spec invariants fail on the states they forbid", () => {
  const s = run(UACCE_PRELUDE).state;
  assert.deepEqual(checkUacceInvariants(s), []);
  const f = s.files.get(1)!;
  const freed: UacceState = {
    ...s,
    files: new Map([...s.files, [1, { ...f, queue: { state: "ZOMBIE", held: false } }]]),
  };
  assert.match(checkUacceInvariants(freed, "always")[0], /^uacce\.noMappingOfFreedMemory: file 1/);
  const removed: UacceState = { ...s, devices: new Map([...s.devices].filter(([p]) => p !== 1)) };
  assert.ok(
    checkUacceInvariants(removed).some((m) => m.startsWith("uacce.removedDeviceHasOnlyZombies")),
  );
  const leaked: UacceState = { ...s, leaks: ["qp 0 of a removed parent"] };
  assert.deepEqual(checkUacceInvariants(leaked), ["uacce.nothingLeaked: qp 0 of a removed parent"]);
});

const LIFE: UacceCommand[] = [
  ...UACCE_PRELUDE,
  { op: "uacce.readAttrs", parent: 1 },
  { op: "uacce.putQ", file: 1 },
  { op: "uacce.access", file: 1, map: 2 },
  { op: "uacce.open", parent: 1, by: 3 },
  { op: "uacce.remove", parent: 2 },
  { op: "uacce.access", file: 2, map: 1 },
  { op: "uacce.close", file: 2 },
  { op: "uacce.close", file: 1 },
  { op: "uacce.munmap", file: 1, map: 1 },
  { op: "uacce.munmap", file: 1, map: 2 },
];

Deno.test("the implementation follows the spec through a queue's whole life", async () => {
  const records = await runSequential(uacceMachine, LIFE);
  assert.equal(records.length, LIFE.length);
  for (const r of records) assert.equal(r.failure, undefined, `${r.cmd.op}: ${r.failure}`);
  const attrs = records[UACCE_PRELUDE.length].impl.ret;
  assert.deepEqual(attrs, {
    ok: {
      api: "hisi_qm_v2",
      flags: UACCE_DEV_SVA,
      available_instances: 2,
      algorithms: "zlib\ngzip",
      region_mmio_size: UACCE_MMIO_SIZE,
      region_dus_size: UACCE_DUS_SIZE,
    },
  });
  assert.equal(records.at(-1)!.observed.devices.get(1)!.qps.size, 1);
});

Deno.test("putQueueFreesMapped: the process's DUS mapping reaches the freed pages", async () => {
  const records = await runSequential(uacceMachine, LIFE.slice(0, UACCE_PRELUDE.length + 3), {
    putQueueFreesMapped: true,
  });
  const put = records[UACCE_PRELUDE.length + 1];
  assert.match(put.failure ?? "", /available: spec 2, impl 3/);
  // Past the divergence, the same run on: the access through the mapping is a use-after-free.
  const adapter = uacceMachine.implementation({ putQueueFreesMapped: true });
  for (const cmd of LIFE.slice(0, UACCE_PRELUDE.length + 2)) await adapter.exec(cmd);
  const access = await adapter.exec({ op: "uacce.access", file: 1, map: 2 });
  assert.deepEqual(access.events.map((e) => e.fault), ["use-after-free"]);
  assert.match(checkUacceInvariants(adapter.observe(), "always")[0], /noMappingOfFreedMemory/);
});

for (
  const [scenario, quirk, finding] of [
    ["uacce-race-open-during-remove", "removeVsOpenNoLock", /removedDeviceHasOnlyZombies|NULL/],
    ["uacce-race-release-during-remove", "releaseVsRemoveRace", /use-after-free|NULL/],
  ] as const
) {
  Deno.test(`race scenario ${scenario} fails with ${quirk} under some of 100 schedules`, async () => {
    const url = new URL(`../fixtures/race-scenarios/${scenario}.itf.json`, import.meta.url);
    const trace = parseTrace(await Deno.readTextFile(url), machineNamed);
    const failures: string[] = [];
    for (let seed = 1; seed <= 100; seed++) {
      const r = await runRace(trace.machine, trace.meta.race!, prngDriver(seed), {
        quirks: { [quirk]: true },
      });
      if (r.failure) failures.push(r.failure);
    }
    assert.ok(failures.length > 0, `no schedule of 100 shows ${quirk}`);
    for (const f of failures) assert.match(f, finding);
  });
}
