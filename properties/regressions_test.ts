/**
 * Failures the main job found in the correct implementation, kept as traces in
 * `fixtures/regressions/` that must replay cleanly and pass the oracle (the fixtures task
 * records them again when the state's shape changes); and the checker's rule that an exception
 * inside the implementation is a finding with a counterexample, not a crash of the run.
 */
import assert from "node:assert/strict";
import { type1Machine } from "../model/machines/type1.ts";
import { machineNamed } from "../model/machines.ts";
import type { Cmd, Machine } from "../model/machine.ts";
import { runRace } from "../model/race.ts";
import { checkTrace } from "../model/oracle/mod.ts";
import { replayTrace } from "../model/replay.ts";
import { runSequential } from "../model/runner.ts";
import { parseTrace } from "../model/trace.ts";
import { pctDriver, prngDriver } from "../impl/sched.ts";

const dir = new URL("../fixtures/regressions/", import.meta.url);

for (const entry of Deno.readDirSync(dir)) {
  Deno.test(`regression ${entry.name} replays cleanly, and the oracle accepts it`, async () => {
    const trace = parseTrace(await Deno.readTextFile(new URL(entry.name, dir)), machineNamed);
    assert.deepEqual(trace.meta.quirks, [], "a regression trace runs the correct implementation");
    const r = await replayTrace(trace, {}, true);
    assert.equal(r.passed, true, r.lines.join("\n"));
    const judged = checkTrace(trace);
    assert.equal(judged.passed, true, judged.report().join("\n"));
  });
}

const scenarios = new URL("../fixtures/race-scenarios/", import.meta.url);

// Race traces whose schedule the implementation can no longer follow (its scheduling points
// changed with the fix), and races written to kill mutants of bench/mutants.json (their
// `violation` says what the mutant gives): their scenario (set-up and actors) must hold under
// many schedules.
for (const entry of Deno.readDirSync(scenarios)) {
  Deno.test(`race scenario ${entry.name} holds under 300 PCT and 300 random schedules`, async () => {
    const trace = parseTrace(await Deno.readTextFile(new URL(entry.name, scenarios)), machineNamed);
    assert.deepEqual(trace.meta.quirks, [], "a regression trace runs the correct implementation");
    const race = trace.meta.race!;
    for (let seed = 1; seed <= 300; seed++) {
      const priorities = race.actors.map((_, i) => (seed * 7919 + i * 104729) % 97);
      const plan = { priorities, changes: [(seed * 31) % 12] };
      for (const driver of [pctDriver(plan), prngDriver(seed)]) {
        const r = await runRace(trace.machine, race, driver, {});
        assert.equal(r.failure, undefined, `seed ${seed}: ${r.failure}`);
      }
    }
  });
}

/** type1 whose implementation throws on every `type1.map`, as a buggy kernel path would. */
const throwing: Machine = {
  ...(type1Machine as unknown as Machine),
  implementation(quirks, sched) {
    const impl = type1Machine.implementation(quirks, sched);
    return {
      exec: (cmd) => {
        if (cmd.op === "type1.map") throw new TypeError("boom in map");
        return impl.exec(cmd as never);
      },
      observe: () => impl.observe(),
    };
  },
};

const map = { op: "type1.map", container: 1, iova: 0, size: 4096, vaddr: 0 } as Cmd;

Deno.test("an exception in the implementation is a finding (sequential)", async () => {
  const records = await runSequential(throwing, [map]);
  assert.match(records.at(-1)?.failure ?? "", /^exception in the implementation: TypeError: boom/);
  assert.deepEqual(records.at(-1)?.impl.ret, { err: "EFAULT" });
});

Deno.test("an exception in the implementation is a finding (race)", async () => {
  const r = await runRace(
    throwing,
    { setup: [], actors: [{ name: "a", program: [map] }, { name: "b", program: [map] }] },
    prngDriver(1),
  );
  assert.match(r.failure ?? "", /^exception in the implementation \((a|b)\): TypeError: boom/);
});
