/**
 * The PCT driver: one plan, one schedule; depth 1 never preempts; plans differ in their
 * interleavings; a depth-2 race is found and a depth-1 search never finds it; a PCT
 * counterexample of a race suite replays under its recorded schedule.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ControlledSched, type Driver, pctDriver, type PctPlan } from "../impl/sched.ts";
import { machineNamed, suiteNamed } from "../model/machines.ts";
import { pctPlan } from "../model/race.ts";
import { replayTrace } from "../model/replay.ts";
import { runSuite } from "../model/suites.ts";
import { parseTrace } from "../model/trace.ts";

/** Three tasks of three ticks each, the last one waiting until the first has finished. */
async function ticks(driver: Driver): Promise<string[]> {
  const sched = new ControlledSched();
  let firstDone = false;
  for (const name of ["a", "b", "c"]) {
    sched.spawn(name, async () => {
      if (name === "c") await sched.waitUntil("first-done", () => firstDone);
      for (let i = 0; i < 3; i++) await sched.point("tick");
      if (name === "a") firstDone = true;
    });
  }
  return [...(await sched.run(driver)).schedule];
}

/** Two tasks incrementing a shared counter with a preemption point between read and write. */
async function lostUpdate(driver: Driver): Promise<number> {
  const sched = new ControlledSched();
  let x = 0;
  for (const name of ["a", "b"]) {
    sched.spawn(name, async () => {
      const read = x;
      await sched.point("after-read");
      x = read + 1;
    });
  }
  await sched.run(driver);
  return x;
}

const plan = (depth: number, seed: number): PctPlan =>
  fc.sample(pctPlan(depth, 10), { seed, numRuns: 1 })[0];

Deno.test("pct: a seed's plan gives one schedule", async () => {
  for (let seed = 0; seed < 10; seed++) {
    assert.deepEqual(plan(3, seed), plan(3, seed));
    assert.deepEqual(await ticks(pctDriver(plan(3, seed))), await ticks(pctDriver(plan(3, seed))));
  }
});

Deno.test("pct: with depth 1 the highest-priority eligible task runs until it blocks or ends", async () => {
  await fc.assert(
    fc.asyncProperty(pctPlan(1, 10), async (p) => {
      const key = (task: number) => [p.priorities[task - 1] ?? 0, -task];
      const above = (x: number[], y: number[]) => x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]);
      const inner = pctDriver(p);
      const spy: Driver = {
        async choose(eligible) {
          const chosen = await inner.choose(eligible);
          for (const q of eligible) assert.ok(!above(key(q.task), key(chosen.task)), q.name);
          return chosen;
        },
      };
      const schedule = await ticks(spy);
      const runs = schedule.map((n) => n[0]).filter((t, i, all) => t !== all[i - 1]);
      const switches = runs.length - 3;
      assert.ok(switches <= 1, `${switches} switches beyond one per task: ${schedule}`);
    }),
    { seed: 1, numRuns: 200 },
  );
});

Deno.test("pct: different plans interleave differently", async () => {
  const seen = new Set<string>();
  for (let seed = 0; seed < 30; seed++) seen.add((await ticks(pctDriver(plan(3, seed)))).join());
  assert.ok(seen.size >= 5, `only ${seen.size} distinct interleavings`);
});

Deno.test("pct: a lost update (depth 2) is found within 60 runs and never at depth 1", async () => {
  const lost = (depth: number) =>
    fc.check(
      fc.asyncProperty(pctPlan(depth, 6), async (p) => {
        assert.equal(await lostUpdate(pctDriver(p)), 2);
      }),
      { seed: 7, numRuns: 500 },
    );
  const deep = await lost(2);
  assert.ok(deep.failed, "depth 2 missed the lost update");
  assert.ok(deep.numRuns <= 60, `found only after ${deep.numRuns} runs`);
  assert.equal((await lost(1)).failed, false, "depth 1 cannot preempt between read and write");
});

Deno.test("pct: a race suite's counterexample replays under its recorded schedule", async () => {
  const r = await runSuite(suiteNamed("type1-race")!, {
    seed: 2,
    runs: 5000,
    quirks: ["shareWithoutGroupLock"],
    sched: "pct",
  });
  assert.ok(r.failure, `not found in ${r.runs} runs`);
  const trace = parseTrace(JSON.stringify(r.failure.trace), machineNamed);
  const withQuirk = await replayTrace(trace, { shareWithoutGroupLock: true }, true);
  assert.equal(withQuirk.passed, false, withQuirk.lines.join("\n"));
  assert.ok(withQuirk.lines.at(-1)?.includes(r.failure.violation), withQuirk.lines.join("\n"));
  const correct = await replayTrace(trace, {}, false);
  assert.equal(correct.passed, true, correct.lines.join("\n"));
});
