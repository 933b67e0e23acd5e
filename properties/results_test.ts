/**
 * Result tables: every op of every spec record and machine has one, and every success value
 * the spec returns in generated runs has the shape its table gives. The TypeScript types a
 * typed `step` returns are the named interfaces the modules document (checked at compile
 * time below).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MACHINES } from "../model/machines.ts";
import { testSeed } from "../model/seed.ts";
import {
  hasResultShape,
  type ioasid,
  type mdevResults,
  type MdevTypeInfo,
  qm,
  type ResultsOf,
  type SdmdevAttrs,
  type sdmdevResults,
  SPECS,
  type stack,
  type Target,
  type Type1Results,
  type wdzip,
  type zipcrypto,
} from "../spec/mod.ts";

/** True when `A` and `B` are the same type (each assignable to the other). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** Compiles only when `T` is `true`. */
function sameType<T extends true>(_proof?: T): void {}

Deno.test("the result types are the named interfaces the modules document", () => {
  type Qm = ResultsOf<typeof qm.qmResults>;
  sameType<Same<Qm["qm.poll"], qm.QmCompletion>>();
  sameType<Same<Qm["qm.irq"], qm.QmIrqOk>>();
  sameType<Same<Qm["qm.deviceStep"], qm.QmDeviceStepOk>>();
  sameType<Same<Type1Results["iommu.dma"], Target>>();
  sameType<Same<Type1Results["type1.unmap"], number>>();
  sameType<Same<ResultsOf<typeof mdevResults>["mdev.readTypes"], readonly MdevTypeInfo[]>>();
  sameType<Same<ResultsOf<typeof sdmdevResults>["sdmdev.readAttrs"], SdmdevAttrs>>();
  sameType<
    Same<ResultsOf<typeof zipcrypto.zipCryptoResults>["zipc.compress"], zipcrypto.ZipContent>
  >();
  sameType<Same<ResultsOf<typeof wdzip.wdzipResults>["wd.decompress"], zipcrypto.ZipContent>>();
  sameType<Same<ResultsOf<typeof stack.stackResults>["stack.recv"], stack.StackCompletion>>();
  sameType<Same<ResultsOf<typeof ioasid.ioasidResults>["ioasid.find"], number | null>>();
  // @ts-expect-error: a completion is not an irq pass
  sameType<Same<Qm["qm.poll"], qm.QmIrqOk>>();
  const r = qm.step(qm.initialQmState(), { op: "qm.poll", qn: 0, by: 1 });
  if ("ok" in r.ret) {
    const tag: number = r.ret.ok.tag;
    assert.equal(typeof tag, "number");
  }
});

Deno.test("every SPECS record and machine has a result for each op of its schema, and no other", () => {
  const tables = [
    ...Object.entries(SPECS).map(([name, s]) => [name, s.schema, s.results] as const),
    ...MACHINES.map((m) => [`machine ${m.name}`, m.schema, m.results] as const),
  ];
  for (const [name, schema, results] of tables) {
    assert.deepEqual(Object.keys(results).sort(), Object.keys(schema).sort(), name);
  }
});

Deno.test("hasResultShape: exact records, lists, unions, constants", () => {
  const completion = { record: { qn: "int", tag: "int" } } as const;
  assert.ok(hasResultShape(completion, { qn: 1, tag: 2 }));
  assert.ok(!hasResultShape(completion, { qn: 1 }), "a missing field");
  assert.ok(!hasResultShape(completion, { qn: 1, tag: 2, extra: 0 }), "an extra field");
  assert.ok(!hasResultShape(completion, [1, 2]));
  assert.ok(hasResultShape({ list: "int" }, []));
  assert.ok(!hasResultShape({ list: "int" }, [1, "2"]));
  assert.ok(hasResultShape({ oneOf: ["int", "null"] }, null));
  assert.ok(!hasResultShape({ oneOf: ["int", "null"] }, "x"));
  assert.ok(hasResultShape("zero", 0) && !hasResultShape("zero", 1));
  assert.ok(!hasResultShape("int", 1.5) && !hasResultShape("int", 2 ** 53));
  assert.ok(hasResultShape({ const: "user" }, "user") && !hasResultShape({ const: 1 }, 0));
});

Deno.test("every success value in generated runs has its op's shape", async (t) => {
  for (const m of MACHINES) {
    await t.step(m.name, () => {
      const seen = new Set<string>();
      let checked = 0;
      const runs = fc.sample(fc.array(m.commands(), { maxLength: m.maxCommands ?? 40 }), {
        // the slow machines (those with fewer default runs) get fewer here too
        numRuns: m.runs === undefined ? 1000 : Math.min(m.runs, 100),
        seed: testSeed(),
      });
      for (const cmds of runs) {
        let s = m.initial();
        for (const generated of [...m.prelude, ...cmds]) {
          const cmd = m.resolve ? m.resolve(s, generated) : generated;
          const r = m.step(s, cmd);
          if ("ok" in r.ret) {
            assert.ok(
              hasResultShape(m.results[cmd.op], r.ret.ok),
              `${cmd.op} returned ${JSON.stringify(r.ret.ok)}, not ${
                JSON.stringify(m.results[cmd.op])
              }`,
            );
            seen.add(cmd.op);
            checked++;
          }
          s = r.state;
        }
      }
      const never = Object.keys(m.schema).filter((op) => !seen.has(op));
      if (never.length > 0) console.log(`${m.name}: never ok in these runs: ${never.join(", ")}`);
      assert.ok(seen.size >= Object.keys(m.schema).length / 2, `${m.name}: ${seen.size} ops ok`);
      assert.ok(checked > 100, `${m.name}: only ${checked} successes`);
    });
  }
});
