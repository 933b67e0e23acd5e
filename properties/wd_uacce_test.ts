/**
 * The wd library's uacce backend: the contract's backend-specific parts (spec/wd.ts), the
 * device found through `/sys/class/uacce`, a queue's life through the char device (one file, the
 * DUS and MMIO mappings, START_Q, PUT_Q), failed requests leaving nothing, a device without SVA
 * not taken, the `wd-uacce` machine conforming on a queue at work, and a process's exit on
 * both backends.
 */
import assert from "node:assert/strict";
import { PAGE_SIZE } from "../spec/types.ts";
import { UACCE_DEV_SVA } from "../spec/uacce.ts";
import { checkWdInvariants, initialWdState, stepWd, type WdCommand } from "../spec/wd.ts";
import { COMPLETE_ALL, Platform } from "../impl/platform.ts";
import { bootWdUacceHost, type WdUacceHost } from "../impl/wd/host.ts";
import { WdSys } from "../impl/wd/sys.ts";
import { WdQueue } from "../impl/wd/wd.ts";
import { wdMachine, wdUacceMachine } from "../model/machines/wd.ts";
import { runSequential } from "../model/runner.ts";
import { suiteNamed } from "../model/machines.ts";
import { runSuite } from "../model/suites.ts";

const P1 = { by: 1 } as const;

Deno.test("spec on uacce: many processes, shares pin nothing, no VFIO to inject into", () => {
  let state = initialWdState({ backend: "uacce", depth: 4, pids: [1, 2] });
  const rets: unknown[] = [];
  const cmds: WdCommand[] = [
    { op: "wd.requestQueue", ...P1 },
    { op: "wd.requestQueue", by: 2 },
    { op: "wd.memShare", ...P1, vaddr: 0x4000_0000, size: 2 * PAGE_SIZE },
    { op: "wd.memShare", ...P1, vaddr: 0x4000_1000, size: PAGE_SIZE },
    { op: "wd.loadType1", loaded: false },
    { op: "wd.hostDriver", bound: true },
  ];
  for (const cmd of cmds) {
    const r = stepWd(state, cmd);
    rets.push(r.ret);
    state = r.state;
  }
  assert.deepEqual(rets, [
    { ok: 0 },
    { ok: 0 },
    { ok: 0 },
    { err: "EEXIST" },
    { err: "ENODEV" },
    { err: "ENODEV" },
  ]);
  assert.deepEqual(state.procs.map((p) => [p.fds, p.maps, p.pinned]), [[1, 2, 0], [1, 2, 0]]);
  assert.deepEqual([state.mdevs, state.qps], [0, 2]);
  assert.deepEqual(checkWdInvariants(state), []);
  assert.throws(() => initialWdState({ backend: "vfio" as never }), RangeError);
});

Deno.test("spec invariants per backend: files, queue pairs, pins, one process", () => {
  const open = { state: "open", sent: 0, done: 0, received: 0, awaiting: [] } as const;
  const u = initialWdState({ backend: "uacce" });
  const holding = { ...u.procs[0], queue: open, fds: 1, maps: 2 };
  const one = { ...u, procs: [holding, u.procs[1]], qps: 1 };
  assert.deepEqual(checkWdInvariants(one), []);
  assert.match(checkWdInvariants({ ...one, qps: 0 }).join(), /wd\.qps: 0 queue pairs/);
  const threeFiles = { ...one, procs: [{ ...holding, fds: 3 }, u.procs[1]] };
  assert.match(checkWdInvariants(threeFiles).join(), /wd\.files: process 1/);
  const pinned = { ...one, procs: [{ ...holding, pinned: 1, lockedVm: 1 }, u.procs[1]] };
  assert.match(checkWdInvariants(pinned).join(), /wd\.pinned/);
  const two = { ...one, procs: [holding, { ...holding, pid: 2 }], qps: 2 };
  assert.deepEqual(checkWdInvariants(two), [], "uacce serves two processes at once");
  const procs = two.procs.map((p) => ({ ...p, fds: 3 }));
  const sdmdevTwo = { ...two, backend: "sdmdev" as const, procs, mdevs: 2 };
  assert.match(checkWdInvariants(sdmdevTwo).join(), /wd\.one-process/);
  assert.equal(initialWdState().backend, "sdmdev", "the default backend");
});

/** A machine whose QM function (`qpNum` queue pairs) is registered with uacce, processes 1, 2. */
function boot(svaCapable?: boolean, qpNum = 2): WdUacceHost {
  return bootWdUacceHost(new Platform(), {
    config: { qpNum, sqDepth: 4, cqDepth: 4 },
    engine: COMPLETE_ALL,
    pids: [1, 2],
    svaCapable,
  });
}

const DEV = "/sys/class/uacce/hisi_zip-1";

Deno.test("uacce: the library finds the device in sysfs; a release gives everything back", async () => {
  const host = boot();
  const sys = new WdSys(host, 1);
  assert.deepEqual(sys.list("/sys/class/uacce"), ["hisi_zip-1"]);
  assert.equal(sys.readAttr(`${DEV}/api`), "hisi_qm_v2");
  assert.equal(sys.readAttr(`${DEV}/flags`), String(UACCE_DEV_SVA));
  assert.equal(sys.readAttr(`${DEV}/region_mmio_size`), String(PAGE_SIZE));
  assert.equal(sys.readAttr(`${DEV}/region_dus_size`), String(PAGE_SIZE), "depth 4 fits a page");
  assert.equal(sys.readAttr(`${DEV}/available_instances`), "2");
  const q = await WdQueue.request(sys);
  assert.ok(q instanceof WdQueue, String(q));
  assert.equal(sys.readAttr(`${DEV}/available_instances`), "1");
  assert.deepEqual([sys.fds.size, sys.maps.size], [1, 2], "one context file, DUS and MMIO");
  const [file] = host.uacce.files.values();
  assert.equal(file.q.state, "STARTED");
  assert.equal(await q.memShare(0x4000_0000, 2 * PAGE_SIZE), undefined);
  assert.equal(await q.memShare(0x4000_1000, PAGE_SIZE), "EEXIST");
  assert.equal(await q.memShare(0x4000_0800, PAGE_SIZE), "EINVAL");
  assert.deepEqual([sys.mm.lockedVm, sys.mm.pinned().length], [0, 0], "SVA: nothing pinned");
  assert.equal(await q.send(), 0);
  assert.equal(await q.send(), 1);
  assert.notEqual(typeof await host.fn.device.step(q.qn), "string");
  await host.fn.qm.irqThread();
  const got = await q.recvSync(10);
  assert.equal(typeof got === "string" ? got : got.seq, 0);
  assert.equal(await q.recvSync(10), "ETIMEDOUT", "request 1 is still in flight");
  assert.deepEqual(await q.release(), [1], "request 1 never completed");
  assert.deepEqual([sys.fds.size, sys.maps.size, host.uacce.files.size], [0, 0, 0]);
  assert.equal(sys.readAttr(`${DEV}/available_instances`), "2");
  assert.equal(host.fn.qm.freeQps, 2);
  assert.equal(WdQueue.of(sys), undefined);
});

Deno.test("uacce: every failed request leaves nothing open, mapped or held", async (t) => {
  for (const [name, maps] of [["no room for the doorbell page", 1], ["no room for the ring", 0]]) {
    await t.step(name as string, async () => {
      const host = boot();
      host.platform.kernel.maxMapCount = maps as number;
      const sys = new WdSys(host, 1);
      assert.equal(await WdQueue.request(sys), "ENOMEM");
      assert.deepEqual([sys.fds.size, sys.maps.size, host.uacce.files.size], [0, 0, 0]);
      assert.equal(host.fn.qm.freeQps, 2);
    });
  }
  await t.step("no instance left: no device to use", async () => {
    const host = boot(undefined, 1);
    assert.ok(await WdQueue.request(new WdSys(host, 1)) instanceof WdQueue);
    const sys = new WdSys(host, 2);
    assert.equal(sys.readAttr(`${DEV}/available_instances`), "0");
    assert.equal(await WdQueue.request(sys), "ENODEV");
    assert.deepEqual([sys.fds.size, sys.maps.size, host.uacce.files.size], [0, 0, 1]);
  });
  await t.step("a device without SVA is not taken", async () => {
    const host = boot(false);
    const sys = new WdSys(host, 1);
    assert.equal(sys.readAttr(`${DEV}/flags`), "0", "SVA dropped at register");
    assert.equal(await WdQueue.request(sys), "ENODEV");
    assert.deepEqual([sys.fds.size, sys.maps.size, host.uacce.files.size], [0, 0, 0]);
    assert.equal(host.fn.qm.freeQps, 2);
  });
});

Deno.test("the wd-uacce machine: a queue at work conforms to the one contract", async () => {
  const records = await runSequential(wdUacceMachine, [
    { op: "wd.requestQueue", ...P1 },
    { op: "wd.requestQueue", by: 2 },
    { op: "wd.memShare", ...P1, vaddr: 0x4000_0000, size: PAGE_SIZE },
    { op: "wd.send", ...P1 },
    { op: "wd.recvSync", ...P1, timeoutMs: 10 },
    { op: "wd.device", ...P1 },
    { op: "wd.recvSync", ...P1, timeoutMs: 0 },
    { op: "wd.memUnshare", ...P1, vaddr: 0x4000_0000 },
    { op: "wd.loadType1", loaded: false },
    { op: "wd.releaseQueue", ...P1 },
    { op: "wd.releaseQueue", by: 2 },
  ]);
  assert.equal(records.at(-1)?.failure, undefined, records.at(-1)?.failure);
  assert.deepEqual(records.map((r) => r.impl.ret), [
    { ok: 0 },
    { ok: 0 },
    { ok: 0 },
    { ok: 0 },
    { err: "ETIMEDOUT" },
    { ok: 0 },
    { ok: 0 },
    { ok: 0 },
    { err: "ENODEV" },
    { ok: 0 },
    { ok: 0 },
  ]);
  const last = records.at(-1)!.observed!;
  assert.deepEqual([last.qps, ...last.procs.map((p) => p.fds)], [0, 0, 0]);
});

Deno.test("exit: nothing left on uacce; on sdmdev the mdev and its queue pair stay", async () => {
  const cmds: WdCommand[] = [
    { op: "wd.requestQueue", ...P1 },
    { op: "wd.memShare", ...P1, vaddr: 0x4000_0000, size: PAGE_SIZE },
    { op: "wd.submit", ...P1 },
    { op: "wd.exit", ...P1 },
    { op: "wd.requestQueue", ...P1 },
    { op: "wd.requestQueue", by: 2 },
    { op: "wd.exit", by: 2 },
    { op: "wd.requestQueue", by: 2 },
  ];
  const rets: Record<string, string[]> = {
    "wd": ["ok", "ok", "ok", "ok", "EEXIST", "ok", "ok", "ENODEV"],
    "wd-uacce": ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"],
  };
  for (const machine of [wdMachine, wdUacceMachine]) {
    const records = await runSequential(machine, cmds);
    assert.equal(records.at(-1)?.failure, undefined, records.at(-1)?.failure);
    const got = records.map((r) => "ok" in r.impl.ret ? "ok" : r.impl.ret.err);
    assert.deepEqual(got, rets[machine.name], machine.name);
    const exited = records[3].observed!;
    assert.deepEqual(exited.procs[0].queue, { state: "none" });
    assert.deepEqual([exited.procs[0].fds, exited.procs[0].maps, exited.procs[0].pinned], [
      0,
      0,
      0,
    ]);
    const orphaned = machine === wdMachine;
    assert.deepEqual(
      [exited.qps, exited.mdevs, exited.orphans],
      orphaned ? [1, 1, [1]] : [0, 0, []],
      machine.name,
    );
  }
  assert.throws(() => initialWdState({ queuePairs: 0 }), RangeError);
});

// The quirks the uacce backend can exercise too (the catalogue's fixture and detection test run
// them on `wd`, their first machine): found from scratch on `wd-uacce` as well.
for (const quirk of ["recvSyncNeverWaits", "mmapFailureUnchecked"] as const) {
  Deno.test(`wd-uacce finds ${quirk} from scratch`, async () => {
    const r = await runSuite(suiteNamed("wd-uacce")!, { seed: 1, runs: 2000, quirks: [quirk] });
    assert.ok(r.failure, `not found in ${r.runs} runs`);
  });
}
