/**
 * Failures the main job found in the correct implementation, kept as traces in
 * `fixtures/regressions/` that must replay cleanly; and the checker's rule that an exception
 * inside the implementation is a finding with a counterexample, not a crash of the run.
 */
import assert from "node:assert/strict";
import { type1Machine } from "../model/machines/type1.ts";
import { machineNamed } from "../model/machines.ts";
import type { Cmd, Machine } from "../model/machine.ts";
import { runRace } from "../model/race.ts";
import { replayTrace } from "../model/replay.ts";
import { runSequential } from "../model/runner.ts";
import { parseTrace } from "../model/trace.ts";
import { prngDriver } from "../impl/sched.ts";

const dir = new URL("../fixtures/regressions/", import.meta.url);

for (const entry of Deno.readDirSync(dir)) {
  Deno.test(`regression ${entry.name} replays cleanly`, async () => {
    const trace = parseTrace(await Deno.readTextFile(new URL(entry.name, dir)), machineNamed);
    assert.deepEqual(trace.meta.quirks, [], "a regression trace runs the correct implementation");
    const r = await replayTrace(trace, {}, true);
    assert.equal(r.passed, true, r.lines.join("\n"));
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
