/**
 * The mdev core, sdmdev and QM glue implementation beyond the `sdmdev` suites: the generator
 * reaches every interesting outcome, and three named races (remove vs open, parent unregister
 * vs create, release vs hardware still using the queue) hold on the correct implementation for
 * every explored schedule and break under the quirk they are about. Quirk detection from
 * scratch is in quirks_test.ts (the `sdmdev` machine lists them).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { RING_SIZE } from "../spec/sdmdev.ts";
import { PAGE_SIZE } from "../spec/types.ts";
import type { QuirkName, Quirks } from "../impl/quirks.ts";
import { fcDriver } from "../impl/sched.ts";
import { type Cmd, sdmdevMachine } from "../model/machines/sdmdev.ts";
import { type RaceScenario, runRace } from "../model/race.ts";
import { runSequential } from "../model/runner.ts";
import { testSeed } from "../model/seed.ts";

const U1 = "11111111-2222-3333-4444-555555555555";
const U2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

Deno.test("sdmdev: generated sequences conform and reach every interesting outcome", async () => {
  const seen = new Set<string>();
  const arb = fc.array(sdmdevMachine.commands(), { maxLength: 40, size: "max" });
  for (const cmds of fc.sample(arb, { numRuns: 600, seed: testSeed() })) {
    const records = await runSequential(sdmdevMachine, [...sdmdevMachine.prelude, ...cmds]);
    assert.equal(records.at(-1)?.failure, undefined);
    for (const r of records) seen.add(`${r.cmd.op}:${"ok" in r.specRet ? "ok" : r.specRet.err}`);
  }
  const wanted = [
    "mdev.register:ok",
    "mdev.register:EINVAL",
    "mdev.register:EEXIST",
    "mdev.create:ok",
    "mdev.create:EBUSY",
    "mdev.create:EPERM",
    "mdev.remove:EBUSY",
    "mdev.unregister:ok",
    "mdev.release:ok",
    "sdmdev.create:ok",
    "sdmdev.create:EBUSY",
    "sdmdev.create:EEXIST",
    "sdmdev.remove:ok",
    "sdmdev.remove:EBUSY",
    "sdmdev.open:ok",
    "sdmdev.open:EBUSY",
    "sdmdev.release:ok",
    "sdmdev.release:EPERM",
    "sdmdev.mmap:ok",
    "sdmdev.mmap:EINVAL",
    "sdmdev.munmap:ok",
    "sdmdev.wait:ok",
    "sdmdev.wait:EAGAIN",
    "sdmdev.notify:ok",
    "sdmdev.bindPasid:ok",
    "sdmdev.bindPasid:EBUSY",
    "sdmdev.readAttrs:ok",
    "sdmdev.readAttrs:ENODEV",
    "sdmdev.unregister:ok",
    "sdmdev.tfmInit:ok",
    "sdmdev.tfmExit:ok",
  ];
  for (const key of wanted) assert.ok(seen.has(key), `the generator never reached ${key}`);
});

const SD3: Cmd = { op: "sdmdev.register", parent: 3, name: "zip", qpNum: 3, sva: false };

const RACES: readonly (readonly [string, RaceScenario<Cmd>, QuirkName])[] = [
  ["remove vs open", {
    setup: [SD3, { op: "sdmdev.create", parent: 3, uuid: U1 }],
    actors: [
      {
        name: "process",
        program: [
          { op: "sdmdev.open", uuid: U1, by: 1 },
          { op: "sdmdev.mmap", uuid: U1, by: 1, pgoff: 1, size: PAGE_SIZE },
        ],
      },
      { name: "admin", program: [{ op: "sdmdev.remove", uuid: U1 }] },
    ],
  }, "removeWhileOpenDestroys"],
  ["parent unregister vs create", {
    setup: [SD3, { op: "sdmdev.create", parent: 3, uuid: U1 }, {
      op: "sdmdev.open",
      uuid: U1,
      by: 1,
    }],
    actors: [
      { name: "driver", program: [{ op: "sdmdev.unregister", parent: 3 }] },
      { name: "admin", program: [{ op: "sdmdev.create", parent: 3, uuid: U2 }] },
      {
        name: "process",
        program: [
          { op: "sdmdev.release", uuid: U1, by: 1 },
          { op: "sdmdev.munmap", uuid: U1, by: 1, map: 1 },
        ],
      },
    ],
  }, "unregisterLoopDoubleDestroy"],
  ["release vs hardware still using the queue", {
    setup: [
      SD3,
      { op: "sdmdev.create", parent: 3, uuid: U1 },
      { op: "sdmdev.open", uuid: U1, by: 1 },
      { op: "sdmdev.mmap", uuid: U1, by: 1, pgoff: 1, size: RING_SIZE },
    ],
    actors: [
      {
        name: "process",
        program: [
          { op: "sdmdev.release", uuid: U1, by: 1 },
          { op: "sdmdev.munmap", uuid: U1, by: 1, map: 1 },
        ],
      },
      {
        name: "device",
        program: [{ op: "sdmdev.notify", parent: 3, qn: 0 }, {
          op: "sdmdev.notify",
          parent: 3,
          qn: 0,
        }],
      },
    ],
  }, "stopQueueNoop"],
];

for (const [name, scenario, quirk] of RACES) {
  Deno.test(`sdmdev race: ${name}`, async (t) => {
    const outcomes = new Set<string>();
    const check = (quirks: Quirks) =>
      fc.check(
        fc.asyncProperty(fc.scheduler(), async (s) => {
          const r = await runRace(sdmdevMachine, scenario, fcDriver(s), { quirks });
          outcomes.add(JSON.stringify(r.history.map((h) => [h.actor, h.ret])));
          if (r.failure) throw new Error(r.failure);
        }),
        { seed: testSeed(), numRuns: 200 },
      );
    await t.step("holds on the correct implementation for every explored schedule", async () => {
      const r = await check({});
      assert.equal(r.failed, false, fc.defaultReportMessage(r));
      assert.ok(outcomes.size > 1, "one outcome only: the schedules never interleave");
    });
    await t.step(`is broken by ${quirk}`, async () => {
      assert.equal((await check({ [quirk]: true })).failed, true);
    });
  });
}

Deno.test("a second register with a malformed name is EINVAL, as the spec checks arguments first", async () => {
  const reg = (name: string): Cmd => ({
    op: "sdmdev.register",
    parent: 4,
    name,
    qpNum: 2,
    sva: false,
  });
  const records = await runSequential(sdmdevMachine, [reg("zip4"), reg("not a name"), reg("zip4")]);
  assert.equal(records.at(-1)?.failure, undefined, records.at(-1)?.failure);
  assert.deepEqual(records.map((r) => r.impl.ret), [{ ok: 0 }, { err: "EINVAL" }, {
    err: "EEXIST",
  }]);
});
