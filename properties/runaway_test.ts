/**
 * A hang is a finding: a consumer defect that keeps the IRQ thread walking the EQ (its head's
 * phase never flips on a wrap, so last lap's entries look new) would spin forever and exhaust
 * the heap; the loop guard turns it into an exception the checker shrinks and saves like any
 * other counterexample.
 */
import assert from "node:assert/strict";
import { loopGuard, RunawayLoopError } from "../impl/runaway.ts";
import type { Machine } from "../model/machine.ts";
import { QmAdapter } from "../model/adapters/qm.ts";
import { qmMachine } from "../model/machines/qm.ts";
import { runSuite } from "../model/suites.ts";
import { testSeed } from "../model/seed.ts";

Deno.test("loopGuard throws past its limit, naming the loop", () => {
  const spin = loopGuard("some_loop", 3);
  spin(), spin(), spin();
  assert.throws(
    spin,
    (e) => e instanceof RunawayLoopError && /some_loop: 3 iterations/.test(e.message),
  );
});

Deno.test("an EQ head that never flips its phase is a saved counterexample, not a hang", async () => {
  const broken: Machine = {
    ...(qmMachine as unknown as Machine),
    implementation(quirks, sched) {
      const impl = qmMachine.implementation(quirks, sched);
      assert.ok(impl instanceof QmAdapter);
      const head = impl.qm.eqHead;
      head.step = () => {
        head.index = (head.index + 1) % head.depth; // the defect: no phase flip on a wrap
      };
      return impl as unknown as ReturnType<Machine["implementation"]>;
    },
  };
  const r = await runSuite(
    { name: "qm", machine: broken, mode: "sequential", defaultRuns: 2000 },
    { seed: testSeed(), runs: 2000 },
  );
  assert.ok(r.failure, `not found in ${r.runs} runs`);
  assert.match(r.failure.violation, /RunawayLoopError: qm_irq_thread: 1000000 iterations/);
  assert.ok(r.failure.length <= 20, `shrunk to ${r.failure.length} steps`);
});
