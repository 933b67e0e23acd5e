/**
 * The composed stack, end to end: the named races of the composed-system issue under
 * fc.scheduler() (each holds on the correct implementation for every explored schedule and
 * is broken by its quirk), each race quirk found by `stack-race` from scratch, the device
 * touching a freed ring or an unpinned page as the seed's defects let it, and a full
 * submission ring from user space across wraps.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { RING_SIZE } from "../spec/sdmdev.ts";
import { STACK_SQ_DEPTH, type StackCommand } from "../spec/stack.ts";
import { PAGE_SIZE } from "../spec/types.ts";
import type { QuirkName } from "../impl/quirks.ts";
import { fcDriver } from "../impl/sched.ts";
import { quirkSuite, suiteNamed } from "../model/machines.ts";
import { STACK_PRELUDE, stackMachine, USER_IOVA } from "../model/machines/stack.ts";
import { type RaceScenario, runRace } from "../model/race.ts";
import { runSequential } from "../model/runner.ts";
import { testSeed } from "../model/seed.ts";
import { runSuite } from "../model/suites.ts";

const U1 = "11111111-2222-3333-4444-555555555555";
const U2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const send = (iova = USER_IOVA): StackCommand => ({ op: "stack.send", uuid: U1, by: 1, iova });
const deviceStep: StackCommand = { op: "stack.deviceStep", parent: 1, qn: 0 };
const recv: StackCommand = { op: "stack.recv", uuid: U1, by: 1 };

/** Process 1 releases its queue and removes its mdev while the device still has two SQEs. */
const releaseVsDevice: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, send(), send()],
  actors: [
    {
      name: "process",
      program: [
        { op: "type1.closeDeviceFd", container: 1, group: 10 },
        { op: "sdmdev.munmap", uuid: U1, by: 1, map: 1 },
        { op: "sdmdev.munmap", uuid: U1, by: 1, map: 2 },
        { op: "type1.closeGroup", container: 1, group: 10 },
        { op: "sdmdev.remove", uuid: U1 },
      ],
    },
    { name: "device", program: [deviceStep, deviceStep, deviceStep] },
  ],
};

/**
 * Process 1 closed its device fd (its mappings of the ring keep the file, so the queue runs
 * on) and detaches the mdev's group and unmaps its buffer while the device has two SQEs.
 */
const detachVsDevice: RaceScenario<StackCommand> = {
  setup: [
    ...STACK_PRELUDE,
    send(),
    send(USER_IOVA + PAGE_SIZE),
    { op: "type1.closeDeviceFd", container: 1, group: 10 },
  ],
  actors: [
    {
      name: "process",
      program: [
        { op: "type1.detach", container: 1, group: 10 },
        { op: "type1.unmap", container: 1, iova: USER_IOVA, size: 2 * PAGE_SIZE },
      ],
    },
    { name: "device", program: [deviceStep, deviceStep] },
  ],
};

/** Process 1 exits while the device still has two of its SQEs. */
const exitVsDevice: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, send(), send()],
  actors: [
    { name: "process", program: [{ op: "stack.exit", by: 1 }] },
    { name: "device", program: [deviceStep, deviceStep, deviceStep] },
  ],
};

/** The admin removes process 1's mdev while it sends and the device runs its SQEs. */
const removeVsRunning: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, send()],
  actors: [
    { name: "admin", program: [{ op: "sdmdev.remove", uuid: U1 }] },
    { name: "process", program: [send(USER_IOVA + PAGE_SIZE)] },
    { name: "device", program: [deviceStep, deviceStep] },
  ],
};

/** A new mdev removed while process 2 opens and attaches its group. */
const removeVsOpen: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, { op: "sdmdev.create", parent: 1, uuid: U2 }],
  actors: [
    { name: "admin", program: [{ op: "sdmdev.remove", uuid: U2 }] },
    {
      name: "process2",
      program: [
        { op: "type1.openGroup", container: 2, group: 12 },
        { op: "type1.attach", container: 2, group: 12 },
        { op: "type1.closeGroup", container: 2, group: 12 },
      ],
    },
  ],
};

const unregister: StackCommand = { op: "sdmdev.unregister", parent: 1 };

/** The QM function's PCI remove while process 1 sends, the device runs, and process 1 exits. */
const pciRemoveVsUse: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, send()],
  actors: [
    { name: "admin", program: [unregister, STACK_PRELUDE[0]] },
    { name: "process", program: [send(USER_IOVA + PAGE_SIZE), { op: "stack.exit", by: 1 }] },
    { name: "device", program: [deviceStep, deviceStep] },
  ],
};

/** The device completes two requests (the IRQ thread passing each time) while the user receives. */
const twoCqReaders: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, send(), send(USER_IOVA + PAGE_SIZE)],
  actors: [
    { name: "device", program: [deviceStep, deviceStep] },
    { name: "process", program: [recv, recv, recv] },
  ],
};

const U3 = "33333333-4444-5555-6666-777777777777";

/** Process 2 binds its PASID again while the device runs its queue's two SQEs. */
const rebindVsDevice: RaceScenario<StackCommand> = {
  setup: [
    ...STACK_PRELUDE,
    { op: "stack.send", uuid: U3, by: 2, iova: USER_IOVA },
    { op: "stack.send", uuid: U3, by: 2, iova: USER_IOVA + PAGE_SIZE },
  ],
  actors: [
    { name: "process2", program: [{ op: "sdmdev.bindPasid", uuid: U3, by: 2, pasid: 1 }] },
    {
      name: "device",
      program: [{ op: "stack.deviceStep", parent: 3, qn: 0 }, {
        op: "stack.deviceStep",
        parent: 3,
        qn: 0,
      }],
    },
  ],
};

const send3 = (iova: number): StackCommand => ({ op: "stack.send", uuid: U3, by: 2, iova });
const step3: StackCommand = { op: "stack.deviceStep", parent: 3, qn: 0 };

/** Process 2's use of function 3 undone: unbind, unmap the queue, close the device fd. */
const unbindAndRelease3: StackCommand[] = [
  { op: "sva.unbind", container: 2 },
  { op: "sdmdev.munmap", uuid: U3, by: 2, map: 1 },
  { op: "sdmdev.munmap", uuid: U3, by: 2, map: 2 },
  { op: "type1.closeDeviceFd", container: 2, group: 11 },
];

/**
 * Process 2 unbinds its container and releases its SVA queue while the device runs two of its
 * PASID-tagged requests (one at an address only its page table maps): stop, drain, unbind, free.
 */
const unbindVsDevice: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, send3(0x5000_0000), send3(USER_IOVA)],
  actors: [
    {
      name: "process2",
      program: unbindAndRelease3,
    },
    { name: "device", program: [step3, step3, step3] },
  ],
};

/**
 * Process 2 exits (`exit_mm`, then the closes of `exit_files`) while the device runs its
 * PASID-tagged requests: they fault once its mm has no users; the PASID stays until the closes.
 */
const exitVsSvaDevice: RaceScenario<StackCommand> = {
  setup: [...STACK_PRELUDE, send3(USER_IOVA), send3(0x5000_0000)],
  actors: [
    {
      name: "process2",
      program: [
        { op: "stack.exitMm", by: 2 },
        { op: "type1.closeDeviceFd", container: 2, group: 11 },
        { op: "type1.closeGroup", container: 2, group: 11 },
      ],
    },
    { name: "device", program: [step3, step3, step3] },
  ],
};

/**
 * Two SVA processes: process 2 tears its use of function 3 down (unbind, release, close) while
 * process 1 takes a new mdev of function 3 (its attach EBUSY while process 2's container still
 * shares the function), binds and starts with whatever PASID it got, and the device runs
 * process 2's requests: an id freed by one address space goes to the other only once nothing
 * of the first refers to it.
 */
const svaHandover: RaceScenario<StackCommand> = {
  setup: [
    ...STACK_PRELUDE,
    send3(USER_IOVA),
    { op: "sdmdev.create", parent: 3, uuid: U2 },
    { op: "type1.openGroup", container: 1, group: 12 },
  ],
  actors: [
    {
      name: "process2",
      program: [...unbindAndRelease3, { op: "type1.closeGroup", container: 2, group: 11 }],
    },
    {
      name: "process1",
      program: [
        { op: "type1.attach", container: 1, group: 12 },
        { op: "type1.getDeviceFd", container: 1, group: 12 },
        { op: "sva.bind", container: 1 },
        { op: "sdmdev.bindPasid", uuid: U2, by: 1, pasid: 1 },
      ],
    },
    { name: "device", program: [step3, step3] },
  ],
};

function explore(scenario: RaceScenario<StackCommand>, quirks: Record<string, boolean>) {
  return fc.check(
    fc.asyncProperty(fc.scheduler(), async (s) => {
      const r = await runRace(stackMachine, scenario, fcDriver(s), { quirks });
      if (r.failure) throw new Error(r.failure);
    }),
    { seed: testSeed(), numRuns: 200 },
  );
}

for (
  const [name, scenario, quirks] of [
    ["release and remove while the device holds SQEs", releaseVsDevice, ["stopQueueNoop"]],
    [
      "detach and unmap while the device holds SQEs",
      detachVsDevice,
      ["skipUndoOnDetach", "unshareBeforeUndo"],
    ],
    ["exit while the device holds SQEs", exitVsDevice, ["stopQueueNoop"]],
    [
      "remove of an open mdev while the device runs its SQEs",
      removeVsRunning,
      ["removeWhileOpenFreesRing"],
    ],
    ["remove vs open of the mdev's group", removeVsOpen, []],
    ["the PCI remove while a process uses its mdev", pciRemoveVsUse, ["stopQueueNoop"]],
    ["the IRQ thread and the user driver on one CQ", twoCqReaders, ["kernelConsumesUserCq"]],
    ["a second BIND_PASID while the device runs the queue", rebindVsDevice, [
      "reopenRestartsQueue",
    ]],
    ["SVA: unbind and release while the device runs PASID-tagged requests", unbindVsDevice, [
      "freeBeforeUnbind",
      "stopQueueNoop",
    ]],
    ["SVA: two processes hand function 3 over while the device runs", svaHandover, [
      "freeBeforeUnbind",
    ]],
    ["SVA: exit while the device runs PASID-tagged requests", exitVsSvaDevice, [
      "pasidFreedAtMmExitWhileBound",
      "stopQueueNoop",
    ]],
  ] as const
) {
  Deno.test(`stack race: ${name}`, async (t) => {
    await t.step("holds on the correct implementation for every explored schedule", async () => {
      const r = await explore(scenario, {});
      assert.equal(r.failed, false, String(r.errorInstance));
    });
    for (const quirk of quirks) {
      await t.step(`is broken by ${quirk}`, async () => {
        assert.equal((await explore(scenario, { [quirk]: true })).failed, true);
      });
    }
  });
}

/** Runs allowed for `stack-race` to find each quirk of the view from scratch (seen: 1 to 188). */
const BUDGET = 10_000;

// The quirks the catalogue gives to the stack's sequential suite are checked by quirks_test.
for (const quirk of stackMachine.quirks.filter((q) => quirkSuite(q).name !== "stack")) {
  Deno.test(`stack-race finds ${quirk} from scratch within ${BUDGET} runs`, async () => {
    const r = await runSuite(suiteNamed("stack-race")!, { seed: 1, runs: BUDGET, quirks: [quirk] });
    assert.ok(r.failure, `not found in ${r.runs} runs`);
    console.log(`  ${quirk}: found after ${r.runs} runs: ${r.failure.violation}`);
  });
}

/** The events the implementation logged over `cmds`, with `quirk` on (spec comparison aside). */
async function implEvents(cmds: readonly StackCommand[], quirk?: QuirkName) {
  const impl = stackMachine.implementation(quirk ? { [quirk]: true } : {});
  const events = [];
  for (const cmd of cmds) events.push(...(await impl.exec(cmd)).events);
  return events;
}

Deno.test("stopQueueNoop: the device fetches SQEs from the ring the remove freed", async () => {
  const cmds: StackCommand[] = [
    ...STACK_PRELUDE,
    send(),
    { op: "type1.closeDeviceFd", container: 1, group: 10 },
    { op: "sdmdev.munmap", uuid: U1, by: 1, map: 1 },
    { op: "sdmdev.munmap", uuid: U1, by: 1, map: 2 },
    { op: "type1.closeGroup", container: 1, group: 10 },
    { op: "sdmdev.remove", uuid: U1 },
    deviceStep,
  ];
  assert.deepEqual(await implEvents(cmds), []);
  const faults = await implEvents(cmds, "stopQueueNoop");
  assert.equal(faults.length, 1);
  assert.match(JSON.stringify(faults[0]), /"fault":"iommu","group":1/);
  const records = await runSequential(stackMachine, cmds, { stopQueueNoop: true });
  assert.ok(records.some((r) => r.failure), "the checker reports it");
});

Deno.test("removeWhileOpenFreesRing: the device fetches SQEs from the ring put_queue freed", async () => {
  const cmds: StackCommand[] = [...STACK_PRELUDE, send(), { op: "sdmdev.remove", uuid: U1 }];
  assert.deepEqual(await implEvents([...cmds, deviceStep]), []);
  const faults = await implEvents([...cmds, deviceStep], "removeWhileOpenFreesRing");
  assert.equal(faults.length, 1);
  assert.match(JSON.stringify(faults[0]), /"fault":"iommu","group":1/);
  const records = await runSequential(stackMachine, cmds, { removeWhileOpenFreesRing: true });
  assert.ok(records.some((r) => r.failure), "the checker reports it at the remove");
});

Deno.test("skipUndoOnDetach: the device reads a page its process unmapped and unpinned", async () => {
  const cmds: StackCommand[] = [
    ...STACK_PRELUDE,
    send(),
    { op: "type1.closeDeviceFd", container: 1, group: 10 },
    { op: "type1.detach", container: 1, group: 10 },
    { op: "type1.unmap", container: 1, iova: USER_IOVA, size: 2 * PAGE_SIZE },
    deviceStep,
  ];
  const blocked = await implEvents(cmds);
  assert.deepEqual(blocked, [{ fault: "iommu", group: 1, iova: USER_IOVA }]);
  const touched = await implEvents(cmds, "skipUndoOnDetach");
  assert.deepEqual(touched, [{ fault: "dma-to-unpinned-page", mm: 1, vaddr: 0x10000 }]);
});

Deno.test("after a process exits nothing it opened, mapped, pinned or shared remains", async () => {
  const cmds: StackCommand[] = [...STACK_PRELUDE, send(), { op: "stack.exit", by: 1 }];
  const records = await runSequential(stackMachine, cmds);
  assert.equal(records.find((r) => r.failure)?.failure, undefined);
  const s = records.at(-1)!.observed;
  assert.equal(s.type1.pins.has(1), false, "no page of process 1 pinned");
  assert.deepEqual([...s.type1.groupFds.values()].filter((c) => c === 1), []);
  assert.deepEqual(s.type1.containers.get(1)?.dmas, []);
  assert.equal(s.sdmdev.queues.get(U1)?.life.state, "closed");
  assert.equal(s.rings.size, 1, "only process 2's ring is left");
  const user = [...s.iommu.domains.values()].flatMap((d) => [...d.pages.values()])
    .filter((t) => t.kind === "user" && t.mm === 1);
  assert.deepEqual(user, []);
});

Deno.test("a full submission ring from user space, across wraps, conforms", async () => {
  const cmds: StackCommand[] = [...STACK_PRELUDE];
  let sent = 0;
  for (let round = 0; round < 2; round++) {
    while (sent - round * (STACK_SQ_DEPTH - 8) < STACK_SQ_DEPTH - 1) {
      cmds.push(send(USER_IOVA + (sent++ % 2) * PAGE_SIZE));
    }
    cmds.push(send()); // EBUSY: one slot stays empty
    for (let i = 0; i < STACK_SQ_DEPTH - 8; i++) cmds.push(deviceStep);
    cmds.push(send()); // EBUSY still: completed, not yet received
    for (let i = 0; i < STACK_SQ_DEPTH - 8; i++) cmds.push(recv);
  }
  const records = await runSequential(stackMachine, cmds);
  const failed = records.find((r) => r.failure);
  assert.equal(failed?.failure, undefined);
  const busy = records.filter((r) => r.cmd.op === "stack.send" && "err" in r.impl.ret);
  assert.deepEqual(busy.map((r) => r.impl.ret), Array(4).fill({ err: "EBUSY" }));
  assert.ok(sent > STACK_SQ_DEPTH, `the ring wrapped: ${sent} requests`);
  assert.equal(RING_SIZE, (128 + 16) * STACK_SQ_DEPTH);
});

Deno.test("a ring allocation whose IOVA a user mapping holds fails the open with ENOMEM", async () => {
  const cmds: StackCommand[] = [
    ...STACK_PRELUDE,
    { op: "sdmdev.munmap", uuid: U1, by: 1, map: 1 },
    { op: "sdmdev.munmap", uuid: U1, by: 1, map: 2 },
    { op: "type1.closeDeviceFd", container: 1, group: 10 },
    // The freed ring's first page, which the next ring would take.
    { op: "type1.map", container: 1, iova: 6 * PAGE_SIZE, size: PAGE_SIZE, vaddr: 0x20000 },
    { op: "type1.getDeviceFd", container: 1, group: 10 },
  ];
  const records = await runSequential(stackMachine, cmds);
  assert.equal(records.find((r) => r.failure)?.failure, undefined);
  const last = records.at(-1)!;
  assert.deepEqual(last.specRet, { err: "ENOMEM" });
  assert.deepEqual(last.specEvents, [{ warn: "iova-collision", group: 1, iova: 6 * PAGE_SIZE }]);
});

/** The spec's and the implementation's results of `cmds`, checked step by step. */
async function conforming(cmds: readonly StackCommand[]) {
  const records = await runSequential(stackMachine, cmds);
  assert.equal(records.find((r) => r.failure)?.failure, undefined);
  return records;
}

Deno.test("the PCI remove waits for the open mdev; the queue runs on until its file goes", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    send(),
    unregister,
    { op: "sdmdev.create", parent: 1, uuid: U2 },
    deviceStep,
    STACK_PRELUDE[0],
    { op: "stack.exit", by: 1 },
    STACK_PRELUDE[0],
    { op: "sdmdev.create", parent: 1, uuid: U2 },
  ]);
  const rets = records.slice(STACK_PRELUDE.length + 1).map((r) => r.specRet);
  assert.deepEqual(rets, [
    { ok: 1 }, // one open mdev waited for
    { err: "ENODEV" }, // no create once the remove began
    { ok: 0 }, // the open queue still runs
    { err: "EEXIST" }, // the parent is not gone yet
    { ok: 0 },
    { ok: 0 }, // the exit released the last user: the function binds again
    { ok: 10 },
  ]);
  const gone = records.at(-3)!.observed;
  assert.deepEqual([...gone.iommu.groups.keys()].sort((a, b) => a - b), [1, 2, 3, 11]);
  assert.equal(gone.rings.size, 1, "process 2's queue on function 3 runs on");
});

Deno.test("an mdev the PCI remove took while its group file was open leaves a retained group", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    { op: "stack.exit", by: 1 },
    { op: "sdmdev.create", parent: 1, uuid: U2 },
    { op: "type1.openGroup", container: 1, group: 12 },
    { op: "type1.attach", container: 1, group: 12 },
    { op: "type1.setIommu", container: 1 },
    { op: "type1.map", container: 1, iova: USER_IOVA, size: PAGE_SIZE, vaddr: 0x10000 },
    unregister,
    { op: "type1.getDeviceFd", container: 1, group: 12 },
    STACK_PRELUDE[0],
    { op: "sdmdev.create", parent: 1, uuid: U1 },
    { op: "sdmdev.create", parent: 1, uuid: U2 },
    { op: "type1.closeGroup", container: 1, group: 12 },
    { op: "sdmdev.remove", uuid: U2 },
    { op: "sdmdev.create", parent: 1, uuid: U2 },
  ]);
  const rets = records.slice(STACK_PRELUDE.length + 6).map((r) => r.specRet);
  assert.deepEqual(rets, [
    { ok: 0 }, // both mdevs of function 1 were closed: removed at once, the parent with them
    { err: "ENODEV" }, // the retained group has no device
    { ok: 0 },
    { ok: 10 },
    { ok: 13 }, // 11 is U3's, 12 still the retained group's
    { ok: 0 }, // its last close: unset (the mappings undone), then gone
    { ok: 0 },
    { ok: 12 },
  ]);
  const retained = records[STACK_PRELUDE.length + 7].observed;
  assert.equal(retained.iommu.groups.get(12)?.kind, "mdev");
  assert.equal(retained.mdev.groups.has(12), false);
  const closed = records.at(-3)!.observed;
  assert.equal(closed.iommu.groups.has(12), false);
  assert.deepEqual(closed.type1.containers.get(1)?.dmas, []);
});

Deno.test("the user driver receives every completion in order, a faulted read with status 1", async () => {
  const records = await conforming([
    ...STACK_PRELUDE,
    recv,
    send(),
    send(USER_IOVA + 3 * PAGE_SIZE), // not mapped: the device's read faults
    send(USER_IOVA + PAGE_SIZE),
    deviceStep,
    deviceStep,
    recv,
    deviceStep,
    recv,
    recv,
    recv,
  ]);
  const rets = records.slice(STACK_PRELUDE.length).filter((r) => r.cmd.op === "stack.recv")
    .map((r) => r.impl.ret);
  assert.deepEqual(rets, [
    { err: "EAGAIN" },
    { ok: { iova: USER_IOVA, status: 0 } },
    { ok: { iova: USER_IOVA + 3 * PAGE_SIZE, status: 1 } },
    { ok: { iova: USER_IOVA + PAGE_SIZE, status: 0 } },
    { err: "EAGAIN" },
  ]);
});

Deno.test("kernelConsumesUserCq: the IRQ thread releases a CQE the user has not read", async () => {
  const cmds: StackCommand[] = [...STACK_PRELUDE, send(), deviceStep];
  await conforming(cmds);
  const records = await runSequential(stackMachine, cmds, { kernelConsumesUserCq: true });
  assert.match(records.at(-1)?.failure ?? "", /completions/);
});
