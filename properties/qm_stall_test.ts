/**
 * The `qm-stall` view reaches the device's full-CQ stall, which rings of equal depths cannot: its
 * generator drives the device into a full CQ and a full EQ within a few hundred runs, and the
 * implementation stalls exactly where the spec does.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { QmCommand, QmQp, QmState } from "../spec/qm.ts";
import { qmStallMachine } from "../model/machines/qm.ts";
import { runSequential } from "../model/runner.ts";
import { testSeed } from "../model/seed.ts";

/** Which of the CQ and the EQ were full when a device step stalled in `state`. */
function stalls(state: QmState): string[] {
  const { cqDepth, eqDepth } = state.config;
  const out: string[] = [];
  const full = (qp: QmQp | null) =>
    qp?.state === "started" && qp.cqTail - qp.cqDoorbell >= cqDepth - 1;
  if (state.qps.some(full)) {
    out.push("cq");
  }
  if (state.eqTail - state.eqDoorbell >= eqDepth - 1) out.push("eq");
  return out;
}

Deno.test("qm-stall: generated runs stall the device on a full CQ and on a full EQ, as the spec does", async () => {
  const seen = new Set<string>();
  const runs = fc.sample(fc.array(qmStallMachine.commands(), { maxLength: 80 }), {
    numRuns: 300,
    seed: testSeed(),
  });
  for (const cmds of runs) {
    const records = await runSequential(qmStallMachine, [...qmStallMachine.prelude, ...cmds]);
    assert.equal(records.find((r) => r.failure)?.failure, undefined);
    let before = qmStallMachine.initial();
    for (const r of records) {
      const cmd = r.cmd as QmCommand;
      if (cmd.op === "qm.deviceStep" && "err" in r.specRet && r.specRet.err === "EBUSY") {
        for (const ring of stalls(before)) seen.add(ring);
      }
      before = r.specState;
    }
    if (seen.size === 2) break;
  }
  assert.deepEqual([...seen].sort(), ["cq", "eq"]);
});
