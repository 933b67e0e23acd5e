/**
 * The wd library: its contract (spec/wd.ts), the library on the simulated machine found
 * through sysfs, every failed request leaving nothing behind, the asynchronous API, the
 * recvSync timeout unit, and named races (recvSync vs the device, send vs recv on a full ring,
 * release vs requests in flight, two threads of a process requesting, two processes competing,
 * poll vs recv, a share vs a release and a new request, a call during another thread's request,
 * the parent's removal vs a send and vs the device) under PCT and random schedules, and the
 * parent's removal under a queue on both backends.
 */
import assert from "node:assert/strict";
import { PAGE_SIZE } from "../spec/types.ts";
import {
  checkWdInvariants,
  initialWdState,
  stepWd,
  type WdCommand,
  type WdState,
} from "../spec/wd.ts";
import { COMPLETE_ALL, Platform } from "../impl/platform.ts";
import { pctDriver, prngDriver } from "../impl/sched.ts";
import { WdAsyncQueue } from "../impl/wd/async.ts";
import { bootWdHost, type WdHost } from "../impl/wd/host.ts";
import { WdSys } from "../impl/wd/sys.ts";
import { mdevUuid, msecsToJiffies, WdQueue } from "../impl/wd/wd.ts";
import { wdMachine, wdUacceMachine } from "../model/machines/wd.ts";
import type { Machine } from "../model/machine.ts";
import { type RaceScenario, runRace } from "../model/race.ts";
import { runSequential } from "../model/runner.ts";

/** Steps `cmds` through the spec from a depth-4 machine: the rets, and the last state. */
function spec(cmds: readonly WdCommand[]): { rets: unknown[]; state: WdState } {
  let state = initialWdState({ depth: 4, pids: [1, 2] });
  const rets: unknown[] = [];
  for (const cmd of cmds) {
    const r = stepWd(state, cmd);
    rets.push(r.ret);
    state = r.state;
  }
  return { rets, state };
}

const P1 = { by: 1 } as const;

Deno.test("spec: a queue's life, a full ring, the waits, the release", () => {
  const { rets, state } = spec([
    { op: "wd.requestQueue", ...P1 },
    { op: "wd.requestQueue", by: 2 },
    { op: "wd.send", ...P1 },
    { op: "wd.send", ...P1 },
    { op: "wd.send", ...P1 },
    { op: "wd.send", ...P1 },
    { op: "wd.recv", ...P1 },
    { op: "wd.device", ...P1 },
    { op: "wd.recvSync", ...P1, timeoutMs: 10 },
    { op: "wd.recvSync", ...P1, timeoutMs: 10 },
    { op: "wd.recvSync", ...P1, timeoutMs: 0 },
    { op: "wd.recvSync", ...P1, timeoutMs: 0x10000 },
    { op: "wd.releaseQueue", ...P1 },
  ]);
  assert.deepEqual(rets, [
    { ok: 0 },
    { err: "EBUSY" },
    { ok: 0 },
    { ok: 1 },
    { ok: 2 },
    { err: "EBUSY" },
    { err: "EAGAIN" },
    { ok: 0 },
    { ok: 0 },
    { err: "ETIMEDOUT" },
    { err: "EAGAIN" },
    { err: "EINVAL" },
    { ok: 2 },
  ]);
  assert.deepEqual(checkWdInvariants(state), []);
  assert.equal(state.mdevs, 0);
});

Deno.test("spec: callbacks run once per request, a release runs the rest", () => {
  const { rets, state } = spec([
    { op: "wd.requestQueue", ...P1 },
    { op: "wd.submit", ...P1 },
    { op: "wd.send", ...P1 },
    { op: "wd.submit", ...P1 },
    { op: "wd.device", ...P1 },
    { op: "wd.device", ...P1 },
    { op: "wd.poll", ...P1, max: 4 },
    { op: "wd.releaseQueue", ...P1 },
  ]);
  assert.deepEqual(rets.slice(6), [{ ok: [0, 1] }, { ok: 1 }]);
  assert.equal(state.procs[0].callbacks, 2, "request 0 completed, request 2 dropped");
});

Deno.test("spec: the invariants name what a process kept", () => {
  const s = initialWdState();
  const leaky = { ...s, procs: [{ ...s.procs[0], fds: 1 }, s.procs[1]] };
  assert.match(checkWdInvariants(leaky).join(), /wd\.released: process 1 has no queue but/);
  const pinned = { ...s, procs: [{ ...s.procs[0], pinned: 1 }, s.procs[1]] };
  assert.match(checkWdInvariants(pinned).join(), /wd\.pinned/);
});

Deno.test("recvSync's milliseconds become jiffies, rounded up", () => {
  assert.deepEqual([0, 1, 4, 5, 1000, 0xffff].map(msecsToJiffies), [0, 1, 1, 2, 250, 16384]);
});

/** A booted machine with processes 1 and 2. */
async function boot(): Promise<WdHost> {
  return await bootWdHost(new Platform(), {
    config: { qpNum: 2, sqDepth: 4, cqDepth: 4 },
    engine: COMPLETE_ALL,
    pids: [1, 2],
  });
}

const TYPE = "/sys/class/sdmdev/0000:00:01.0/device/mdev_supported_types/hisi_zip-0";

Deno.test("the library finds its device in sysfs, and a release gives everything back", async () => {
  const host = await boot();
  const sys = new WdSys(host, 1);
  assert.deepEqual(sys.list("/sys/class/sdmdev"), ["0000:00:01.0"]);
  assert.equal(sys.readAttr("/sys/class/sdmdev/0000:00:01.0/device/params/iommu_type"), "1");
  assert.equal(sys.readAttr("/sys/class/sdmdev/0000:00:01.0/device/params/dma_flag"), "1");
  assert.equal(sys.readAttr(`${TYPE}/device_api`), "hisi_qm_v1");
  assert.equal(sys.readAttr(`${TYPE}/available_instances`), "2");
  assert.equal(sys.readAttr(`${TYPE}/nosuch`), "ENOENT");
  const q = await WdQueue.request(sys);
  assert.ok(q instanceof WdQueue, String(q));
  const uuid = mdevUuid(1);
  assert.equal(sys.readAttr(`${TYPE}/available_instances`), "1");
  assert.deepEqual(sys.list(`${TYPE}/devices`), [uuid]);
  const group = sys.readAttr(`/sys/bus/mdev/devices/${uuid}/iommu_group`);
  assert.ok((sys.list("/dev/vfio") as string[]).includes(group));
  assert.equal(sys.fds.size, 3);
  assert.equal(sys.maps.size, 2);
  assert.equal(await q.memShare(0x4000_0000, 2 * PAGE_SIZE), undefined);
  assert.equal(sys.mm.lockedVm, 2, "MAP_DMA accounts the pinned pages");
  assert.equal(await q.send(), 0);
  assert.deepEqual(await q.release(), [0], "request 0 never completed");
  assert.deepEqual([sys.fds.size, sys.maps.size, sys.mm.lockedVm], [0, 0, 0]);
  assert.deepEqual(sys.mm.pinned(), []);
  assert.equal(sys.readAttr(`${TYPE}/available_instances`), "2");
  assert.deepEqual(sys.list("/sys/bus/mdev/devices"), []);
});

Deno.test("every failed request leaves nothing open, mapped or created", async (t) => {
  const cases: [string, (h: WdHost) => void, string][] = [
    ["type1 unloaded", (h) => void h.vfio.loadType1(false), "ENODEV"],
    ["group not viable", (h) => void (h.mdev.hostDriver = true), "EPERM"],
    ["no room for the doorbell page", (h) => void (h.platform.kernel.maxMapCount = 1), "ENOMEM"],
    ["no room for the ring", (h) => void (h.platform.kernel.maxMapCount = 0), "ENOMEM"],
  ];
  for (const [name, inject, errno] of cases) {
    await t.step(name, async () => {
      const host = await boot();
      inject(host);
      const sys = new WdSys(host, 1);
      assert.equal(await WdQueue.request(sys), errno);
      assert.deepEqual([sys.fds.size, sys.maps.size, host.mdev.devices.size], [0, 0, 0]);
      assert.equal(host.vfio.containerFds.size + host.vfio.groupFds.size, 0);
    });
  }
  await t.step("another process holds the accelerator", async () => {
    const host = await boot();
    assert.ok(await WdQueue.request(new WdSys(host, 1)) instanceof WdQueue);
    const sys = new WdSys(host, 2);
    assert.equal(await WdQueue.request(sys), "EBUSY");
    assert.deepEqual([sys.fds.size, sys.maps.size, host.mdev.devices.size], [0, 0, 1]);
  });
});

Deno.test("the library names no device path of its own", async () => {
  for (const file of ["wd.ts", "adapter.ts", "async.ts"]) {
    const src = await Deno.readTextFile(new URL(`../impl/wd/${file}`, import.meta.url));
    assert.doesNotMatch(src, /\/dev\/vfio\/\d|0000:|hisi_zip-0/, file);
  }
});

Deno.test("async API: poll runs the callbacks of what completed, release the others", async () => {
  const host = await boot();
  const q = await WdQueue.request(new WdSys(host, 1));
  assert.ok(q instanceof WdQueue);
  const a = new WdAsyncQueue(q);
  const got: (number | string)[] = [];
  const cb = (r: { readonly seq: number } | string) => got.push(typeof r === "string" ? r : r.seq);
  for (let i = 0; i < 3; i++) assert.equal(await a.submit(cb), i);
  assert.equal(await a.submit(cb), "EBUSY");
  for (let i = 0; i < 2; i++) await host.fn.device.step(q.qn);
  assert.deepEqual(await a.poll(1), [0]);
  assert.deepEqual(await a.poll(4), [1]);
  assert.deepEqual(await a.poll(4), []);
  assert.deepEqual(a.awaiting(), [2]);
  assert.deepEqual(await a.release(), [2]);
  assert.deepEqual(got, [0, 1, "EIO"]);
  await assert.rejects(() => a.poll(0), RangeError);
});

Deno.test("the machine: a queue at work conforms, recvSync waits in vain sequentially", async () => {
  const records = await runSequential(wdMachine, [
    { op: "wd.requestQueue", ...P1 },
    { op: "wd.memShare", ...P1, vaddr: 0x4000_0000, size: PAGE_SIZE },
    { op: "wd.send", ...P1 },
    { op: "wd.recvSync", ...P1, timeoutMs: 10 },
    { op: "wd.device", ...P1 },
    { op: "wd.recvSync", ...P1, timeoutMs: 10 },
    { op: "wd.memUnshare", ...P1, vaddr: 0x4000_0000 },
    { op: "wd.releaseQueue", ...P1 },
  ]);
  assert.equal(records.at(-1)?.failure, undefined, records.at(-1)?.failure);
  assert.deepEqual(records.map((r) => r.impl.ret), [
    { ok: 0 },
    { ok: 0 },
    { ok: 0 },
    { err: "ETIMEDOUT" },
    { ok: 0 },
    { ok: 0 },
    { ok: 0 },
    { ok: 0 },
  ]);
});

const req = (by: number): WdCommand => ({ op: "wd.requestQueue", by });
const of = (op: WdCommand["op"], by = 1, extra = {}) => ({ op, by, ...extra }) as WdCommand;

/** Both backends' machines: the one contract checked on each. */
const BACKENDS: readonly Machine<WdState, WdCommand>[] = [wdMachine, wdUacceMachine];

/**
 * Runs `scenario` on `machine` under `schedules` PCT and as many random schedules: none may
 * fail; the outcomes of `actor`'s first command, as `ok`/errno, are returned.
 */
async function races(
  machine: Machine<WdState, WdCommand>,
  scenario: RaceScenario<WdCommand>,
  actor: string,
  schedules = 100,
): Promise<Set<string>> {
  const outcomes = new Set<string>();
  for (let seed = 1; seed <= schedules; seed++) {
    const priorities = scenario.actors.map((_, i) => (seed * 7919 + i * 104729) % 97);
    const plan = { priorities, changes: [(seed * 31) % 12] };
    for (const driver of [pctDriver(plan), prngDriver(seed)]) {
      const r = await runRace(machine, scenario, driver);
      assert.equal(r.failure, undefined, `seed ${seed}: ${r.failure}`);
      const h = r.history.find((e) => e.actor === actor && e.index === 0)!;
      outcomes.add("ok" in h.ret ? "ok" : h.ret.err);
    }
  }
  return outcomes;
}

for (const machine of BACKENDS) {
  Deno.test(`${machine.name} race: recvSync vs the device completing — woken, or timed out`, async () => {
    const outcomes = await races(machine, {
      setup: [req(1), of("wd.send")],
      actors: [
        { name: "process", program: [of("wd.recvSync", 1, { timeoutMs: 10 })] },
        { name: "device", program: [of("wd.device")] },
      ],
    }, "process");
    assert.deepEqual([...outcomes].sort(), ["ETIMEDOUT", "ok"]);
  });

  Deno.test(`${machine.name} race: send vs recv on a full ring — nothing lost`, async () => {
    const outcomes = await races(machine, {
      setup: [req(1), of("wd.send"), of("wd.send"), of("wd.send"), of("wd.device")],
      actors: [
        { name: "sender", program: [of("wd.send"), of("wd.device")] },
        { name: "receiver", program: [of("wd.recv"), of("wd.poll", 1, { max: 4 })] },
      ],
    }, "sender");
    assert.deepEqual([...outcomes].sort(), ["EBUSY", "ok"]);
  });

  Deno.test(`${machine.name} race: release vs requests in flight — nothing remains`, async () => {
    const outcomes = await races(machine, {
      setup: [
        req(1),
        of("wd.memShare", 1, { vaddr: 0x4000_0000, size: PAGE_SIZE }),
        of("wd.send"),
      ],
      actors: [
        { name: "releaser", program: [of("wd.releaseQueue")] },
        { name: "worker", program: [of("wd.recvSync", 1, { timeoutMs: 10 }), of("wd.send")] },
        { name: "device", program: [of("wd.device")] },
      ],
    }, "worker");
    assert.ok(outcomes.has("ok") && outcomes.has("EINVAL"), [...outcomes].join());
  });

  Deno.test(`${machine.name} race: two threads of a process request, two processes compete`, async () => {
    const threads = await races(
      machine,
      {
        setup: [],
        actors: [
          { name: "t1", program: [req(1), of("wd.send")] },
          {
            name: "t2",
            program: [req(1), of("wd.memShare", 1, { vaddr: 0x4000_0000, size: 4096 })],
          },
        ],
      },
      "t1",
      40,
    );
    assert.deepEqual([...threads].sort(), ["EEXIST", "ok"]);
    const procs = await races(
      machine,
      {
        setup: [],
        actors: [{ name: "p1", program: [req(1)] }, { name: "p2", program: [req(2)] }],
      },
      "p1",
      40,
    );
    // sdmdev without PASIDs serves one process at a time; uacce with SVA serves both.
    const expected = machine === wdMachine ? ["EBUSY", "ok"] : ["ok"];
    assert.deepEqual([...procs].sort(), expected);
  });
}

for (const machine of BACKENDS) {
  Deno.test(`${machine.name} race: the parent's removal vs a send, vs the device — nothing reaches a removed device`, async () => {
    const remover = { name: "remover", program: [{ op: "wd.remove" } as WdCommand] };
    const setup = [req(1), of("wd.submit")];
    const sends = await races(machine, {
      setup,
      actors: [
        remover,
        { name: "sender", program: [of("wd.send"), of("wd.recvSync", 1, { timeoutMs: 0 })] },
      ],
    }, "sender");
    const steps = await races(machine, {
      setup,
      actors: [remover, { name: "device", program: [of("wd.device")] }],
    }, "device");
    // sdmdev's remove waits for the open mdev: the queue works on; uacce's zaps the mappings
    // and stops the queue.
    const sdmdev = machine === wdMachine;
    assert.deepEqual([...sends].sort(), sdmdev ? ["ok"] : ["EFAULT", "ok"]);
    assert.deepEqual([...steps].sort(), sdmdev ? ["ok"] : ["EINVAL", "ok"]);
  });
}

for (const machine of BACKENDS) {
  Deno.test(`${machine.name} race: poll vs recv and send on one queue — a poll takes effect at one point`, async () => {
    const outcomes = await races(machine, {
      setup: [req(1), of("wd.send"), of("wd.send"), of("wd.send"), of("wd.device")],
      actors: [
        { name: "poller", program: [of("wd.poll", 1, { max: 3 })] },
        { name: "receiver", program: [of("wd.recv"), of("wd.recv")] },
        { name: "sender", program: [of("wd.device"), of("wd.send"), of("wd.device")] },
      ],
    }, "poller");
    assert.deepEqual([...outcomes], ["ok"]);
  });

  Deno.test(`${machine.name} race: a share vs the release and a new request — it goes with the old queue`, async () => {
    const share = { vaddr: 0x4000_1000, size: 2 * PAGE_SIZE };
    const outcomes = await races(machine, {
      setup: [req(2)],
      actors: [
        { name: "releaser", program: [of("wd.releaseQueue", 2), req(2)] },
        {
          name: "sharer",
          program: [of("wd.memShare", 2, share), of("wd.memUnshare", 2, { vaddr: share.vaddr })],
        },
      ],
    }, "sharer");
    assert.deepEqual([...outcomes].sort(), ["EINVAL", "ok"]);
  });

  Deno.test(`${machine.name} race: a thread's call while another thread requests the queue waits for it`, async () => {
    const outcomes = await races(machine, {
      setup: [],
      actors: [
        { name: "t1", program: [req(1)] },
        {
          // Process 2 requests (on sdmdev it fails to share the parent's domain with process
          // 1's container), then a thread of process 1 calls on the queue being set up.
          name: "p2-then-t2",
          program: [req(2), of("wd.memShare", 1, { vaddr: 0x4000_1000, size: PAGE_SIZE })],
        },
      ],
    }, "t1");
    const expected = machine === wdMachine ? ["EBUSY", "ok"] : ["ok"];
    assert.deepEqual([...outcomes].sort(), expected);
  });
}

Deno.test("the parent's removal under a queue: sdmdev waits for the release, uacce zaps at once", async () => {
  const cmds: WdCommand[] = [
    req(1),
    of("wd.memShare", 1, { vaddr: 0x4000_0000, size: PAGE_SIZE }),
    of("wd.submit"),
    of("wd.send"),
    of("wd.device"),
    { op: "wd.remove" },
    of("wd.send"),
    of("wd.recv"),
    of("wd.device"),
    req(2),
    { op: "wd.remove" },
    of("wd.releaseQueue"),
    req(1),
  ];
  const rets: Record<string, string[]> = {
    "wd": [
      "ok",
      "ok",
      "ok",
      "ok",
      "ok",
      "ok",
      "ok",
      "ok",
      "ok",
      "ENODEV",
      "ENODEV",
      "ok",
      "ENODEV",
    ],
    "wd-uacce": [
      ...["ok", "ok", "ok", "ok", "ok", "ok", "EFAULT", "EFAULT", "EINVAL", "ENODEV", "ENODEV"],
      ...["ok", "ENODEV"],
    ],
  };
  for (const machine of BACKENDS) {
    const records = await runSequential(machine, cmds);
    assert.equal(records.at(-1)?.failure, undefined, records.at(-1)?.failure);
    const got = records.map((r) => "ok" in r.impl.ret ? "ok" : r.impl.ret.err);
    assert.deepEqual(got, rets[machine.name], machine.name);
    const removed = records[5];
    const sdmdev = machine === wdMachine;
    // sdmdev waits for the one open queue; uacce waits for none.
    assert.deepEqual(removed.impl.ret, { ok: sdmdev ? 1 : 0 });
    const p1 = removed.observed!.procs[0];
    assert.equal(removed.observed!.accelerator, sdmdev ? "removing" : "removed");
    assert.deepEqual([p1.queue.state, p1.maps], sdmdev ? ["open", 2] : ["zombie", 0]);
    // The release: two requests outstanding (sdmdev: the device completed one, unreceived).
    assert.deepEqual(records[11].impl.ret, { ok: 2 });
    const last = records.at(-1)!.observed!;
    assert.equal(last.accelerator, "removed");
    assert.deepEqual([last.qps, last.mdevs, ...last.procs.map((p) => p.fds + p.maps)], [
      0,
      0,
      0,
      0,
    ]);
  }
  const state = spec([req(1), { op: "wd.remove" }]).state;
  assert.deepEqual(checkWdInvariants({ ...state, accelerator: "removed" }), [
    "wd.removed: process 1 maps or holds an open queue of a removed device",
  ]);
});

Deno.test("sysfs: mounts, directories above them, attributes that refuse", async () => {
  const host = await boot();
  const fs = host.platform.kernel.sysfs;
  assert.throws(() => fs.mount("sys/x", { kind: "dir", entries: () => new Map() }), /bad mount/);
  assert.ok((fs.list("/sys/class") as string[]).includes("sdmdev"), "a directory above a mount");
  assert.ok((fs.list("/sys") as string[]).includes("bus"));
  assert.equal(fs.list("/sys/nosuch"), "ENOENT");
  assert.equal(fs.list("/proc/sys/vm/max_map_count"), "EINVAL", "an attribute is no directory");
  assert.deepEqual(fs.read("/dev/vfio/vfio"), { errno: "EINVAL" }, "a device node is no attribute");
  assert.equal(await fs.write(`${TYPE}/device_api`, "x"), "EINVAL", "read-only");
  assert.equal(await fs.write("/proc/sys/vm/max_map_count", "-1"), "EINVAL");
  assert.equal(await fs.write("/proc/sys/vm/max_map_count", "7\n"), undefined);
  assert.equal(host.platform.kernel.maxMapCount, 7);
  assert.equal(await fs.write(`${TYPE}/create`, "not-a-uuid"), "EINVAL");
});
