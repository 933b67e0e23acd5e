/**
 * The race generator's contention: later actors meet the first actor's object in the steps
 * drawn to, and keep their own arguments in the others.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { contend, raceScenario } from "../model/race.ts";

type Op = { op: string; uuid?: string; by?: number; size?: number | string };

Deno.test("contend: a marked command takes the fields it shares with actor 1's first command", () => {
  const first: Op = { op: "a.open", uuid: "u1", by: 1, size: 4096 };
  const programs = [
    [{ cmd: first, meet: true }, { cmd: { op: "a.close", uuid: "u9" }, meet: true }],
    [
      { cmd: { op: "a.close", uuid: "u2", by: 2 }, meet: true },
      { cmd: { op: "a.mmap", uuid: "u3", size: "big" }, meet: true },
      { cmd: { op: "a.mmap", uuid: "u4", size: 8 }, meet: false },
    ],
  ];
  const [a1, a2] = contend<Op>(programs);
  assert.deepEqual(a1, [first, { op: "a.close", uuid: "u9" }], "actor 1 is unchanged");
  assert.deepEqual(a2, [
    { op: "a.close", uuid: "u1", by: 1 },
    { op: "a.mmap", uuid: "u1", size: "big" }, // a string size is not the number's field
    { op: "a.mmap", uuid: "u4", size: 8 }, // not marked
  ]);
});

Deno.test("raceScenario: later actors meet actor 1's object in some commands, not in all", () => {
  const step = fc.constantFrom<Op[]>(
    [{ op: "a.open", uuid: "u1" }],
    [{ op: "a.open", uuid: "u2" }],
    [{ op: "a.open", uuid: "u3" }],
  );
  let met = 0;
  let apart = 0;
  for (const s of fc.sample(raceScenario(step, step), { numRuns: 300, seed: 1 })) {
    const target = s.actors[0].program[0].uuid;
    for (const a of s.actors.slice(1)) {
      for (const c of a.program) c.uuid === target ? met++ : apart++;
    }
  }
  // Independent draws meet one time in three; the marked half of the steps always does.
  const share = met / (met + apart);
  assert.ok(share > 0.5 && share < 0.9, `share of later commands on actor 1's object: ${share}`);
});
