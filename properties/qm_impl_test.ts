/**
 * Conformance of the simulated QM (model/adapters/qm.ts) to its spec (spec/qm.ts) beyond the
 * `qm` suite's fixed configuration: random configurations (depths 2-16, one to three queue
 * pairs), a hand-written ring lifecycle, and a long run at the default depth of 1024.
 * Quirk detection is in quirks_test.ts (the `qm` machine lists them).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { DEFAULT_QM_CONFIG, type QmCommand, type QmConfig } from "../spec/qm.ts";
import { qmMachineWith } from "../model/machines/qm.ts";
import { Conformance, runSequential } from "../model/runner.ts";
import { testSeed } from "../model/seed.ts";

const depth = fc.oneof(
  { arbitrary: fc.integer({ min: 2, max: 4 }), weight: 4 },
  { arbitrary: fc.integer({ min: 5, max: 16 }), weight: 1 },
);

const config: fc.Arbitrary<QmConfig> = fc.record({
  qpNum: fc.integer({ min: 1, max: 3 }),
  sqDepth: depth,
  cqDepth: depth,
  eqDepth: depth,
});

Deno.test("qm conforms at random configurations", async () => {
  const scenario = config.chain((c) => {
    const machine = qmMachineWith(c);
    return fc.tuple(fc.constant(machine), fc.array(machine.commands(), { maxLength: 60 }));
  });
  await fc.assert(
    fc.asyncProperty(scenario, async ([machine, cmds]) => {
      const records = await runSequential(machine, [...machine.prelude, ...cmds]);
      assert.equal(records.at(-1)?.failure, undefined);
    }),
    { seed: testSeed(), numRuns: 1000 },
  );
});

/** Runs `cmds` on spec and implementation, asserting every step conforms. */
async function conforms(
  c: QmConfig,
  cmds: readonly QmCommand[],
): Promise<Conformance<unknown, QmCommand>> {
  const conf = new Conformance(qmMachineWith(c));
  for (const cmd of cmds) {
    const r = await conf.step(cmd);
    assert.equal(r.failure, undefined, `${JSON.stringify(cmd)}: ${r.failure}`);
  }
  return conf as Conformance<unknown, QmCommand>;
}

Deno.test("a hand-written ring lifecycle conforms (kernel and user queues)", async () => {
  const cmds: QmCommand[] = [
    { op: "qm.alloc", owner: "kernel" },
    { op: "qm.alloc", owner: 7 },
    { op: "qm.start", qn: 0 },
    { op: "qm.start", qn: 1 },
  ];
  for (let i = 0; i < 9; i++) {
    cmds.push(
      { op: "qm.send", qn: 0, tag: i },
      { op: "qm.userSend", qn: 1, by: 7, tag: 100 + i },
      { op: "qm.deviceStep", qn: 0 },
      { op: "qm.irq" },
      { op: "qm.deviceStep", qn: 1, status: i % 2 === 0 ? 0 : 5 },
      { op: "qm.irq" },
      { op: "qm.poll", qn: 1, by: 7 },
    );
  }
  cmds.push({ op: "qm.release", qn: 1 }, { op: "qm.release", qn: 0 });
  const conf = await conforms({ qpNum: 2, sqDepth: 3, cqDepth: 2, eqDepth: 2 }, cmds);
  const spec = conf.spec as { qps: unknown[]; eqTail: number };
  assert.equal(spec.qps[0], null);
  assert.equal(spec.eqTail, 18, "every request went through the EQ");
});

Deno.test("qm at the default depth of 1024: wraps, full rings, phase flips", async () => {
  const cmds: QmCommand[] = [
    { op: "qm.alloc", owner: "kernel" },
    { op: "qm.alloc", owner: 3 },
    { op: "qm.start", qn: 0 },
    { op: "qm.start", qn: 1 },
  ];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 1023; i++) {
      cmds.push({ op: "qm.send", qn: 0, tag: i }, { op: "qm.userSend", qn: 1, by: 3, tag: i });
    }
    cmds.push({ op: "qm.send", qn: 0, tag: -1 }, { op: "qm.userSend", qn: 1, by: 3, tag: -1 });
    for (let i = 0; i < 1023; i++) {
      cmds.push({ op: "qm.deviceStep", qn: 0 });
      if (i % 2 === 1) cmds.push({ op: "qm.irq" });
      cmds.push({ op: "qm.deviceStep", qn: 1 }, { op: "qm.irq" }, { op: "qm.poll", qn: 1, by: 3 });
    }
    cmds.push({ op: "qm.irq" });
  }
  const conf = await conforms({ ...DEFAULT_QM_CONFIG, qpNum: 2 }, cmds);
  const spec = conf.spec as { eqTail: number; qps: { cqHead: number; lastCompleted: number }[] };
  assert.ok(spec.eqTail > 2 * 1024, "the EQ wrapped");
  assert.equal(spec.qps[1].cqHead, 3 * 1023, "every user request completed");
  assert.equal(spec.qps[0].lastCompleted, 3 * 1023 - 1, "every kernel request completed");
});
