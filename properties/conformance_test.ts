/**
 * The correct implementation conforms to the spec: every machine's sequential and race suites
 * (a bounded share of what `check` runs), and the two named races of the foundation issue under
 * fc.scheduler().
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Command, PAGE_SIZE } from "../spec/mod.ts";
import { fcDriver } from "../impl/sched.ts";
import { type RaceScenario, runRace } from "../model/race.ts";
import { testSeed } from "../model/seed.ts";
import { SUITES } from "../model/machines.ts";
import { type1Machine } from "../model/machines/type1.ts";
import { runSuite } from "../model/suites.ts";

const P = PAGE_SIZE;

for (const suite of SUITES.filter((s) => s.machine)) {
  // A fifth of what `check` runs by default, at most 2000: the CI share of the exploration.
  const runs = Math.min(2000, suite.defaultRuns / 5);
  Deno.test(`conformance: ${suite.name}, ${runs} runs`, async () => {
    const r = await runSuite(suite, { seed: testSeed(), runs });
    assert.equal(r.failure?.violation, undefined);
    assert.equal(r.runs, runs);
    assert.ok(r.commands > runs, `too few commands executed: ${r.commands}`);
  });
}

/** Detach of an sdmdev group while the device keeps issuing DMA through the parent's domain. */
const detachVsDma: RaceScenario<Command> = {
  setup: [
    ...(type1Machine.prelude as Command[]),
    { op: "type1.attach", container: 1, group: 2 },
    { op: "type1.attach", container: 1, group: 10 },
    { op: "type1.setIommu", container: 1 },
    { op: "type1.map", container: 1, iova: 0, size: P, vaddr: 0 },
  ],
  actors: [
    {
      name: "process",
      program: [
        { op: "type1.detach", container: 1, group: 10 },
        { op: "type1.unmap", container: 1, iova: 0, size: P },
      ],
    },
    {
      name: "device",
      program: [{ op: "iommu.dma", group: 10, iova: 0 }, { op: "iommu.dma", group: 10, iova: 8 }],
    },
  ],
};

/** Another kernel user shares the parent's domain while a process attaches the parent itself. */
const shareVsAttach: RaceScenario<Command> = {
  setup: [
    ...(type1Machine.prelude as Command[]),
    { op: "type1.attach", container: 2, group: 1 },
  ],
  actors: [
    { name: "kclient", program: [{ op: "iommu.share", group: 1, owner: 1 }] },
    { name: "process", program: [{ op: "type1.setIommu", container: 2 }] },
  ],
};

for (
  const [name, scenario, quirk] of [
    ["detach racing device DMA", detachVsDma, "skipUndoOnDetach"],
    ["share racing attach", shareVsAttach, "shareWithoutGroupLock"],
  ] as const
) {
  Deno.test(`race: ${name}`, async (t) => {
    const check = (quirks: Record<string, boolean>) =>
      fc.check(
        fc.asyncProperty(fc.scheduler(), async (s) => {
          const r = await runRace(type1Machine, scenario, fcDriver(s), { quirks });
          if (r.failure) throw new Error(r.failure);
        }),
        { seed: testSeed(), numRuns: 300 },
      );
    await t.step("holds on the correct implementation for every explored schedule", async () => {
      const r = await check({});
      assert.equal(r.failed, false, String(r.errorInstance));
    });
    await t.step(`is broken by ${quirk}`, async () => {
      const r = await check({ [quirk]: true });
      assert.equal(r.failed, true);
    });
  });
}
