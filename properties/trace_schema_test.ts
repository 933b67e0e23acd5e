/**
 * The JSON Schemas of traces in `fixtures/schemas/`: each is what `oracle --schema MACHINE`
 * prints now, every fixture trace validates against its machine's, and a trace with a wrong
 * op or argument does not.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { MACHINES } from "../model/machines.ts";
import { traceSchema } from "../model/trace_schema.ts";

const root = new URL("../fixtures/", import.meta.url);
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validators = new Map(
  MACHINES.map((m) => [m.name, ajv.compile(traceSchema(m, m.schema))]),
);

Deno.test("fixtures/schemas/ holds what oracle --schema prints for every machine", async () => {
  for (const m of MACHINES) {
    const file = new URL(`schemas/${m.name}.trace.schema.json`, root);
    const saved = JSON.parse(await Deno.readTextFile(file));
    assert.deepEqual(saved, traceSchema(m, m.schema), `${m.name}: regenerate the schema file`);
  }
});

Deno.test("every fixture trace validates against its machine's schema", async () => {
  let checked = 0;
  for (const dir of ["counterexamples", "regressions", "race-scenarios"]) {
    for (const entry of Deno.readDirSync(new URL(`${dir}/`, root))) {
      const trace = JSON.parse(await Deno.readTextFile(new URL(`${dir}/${entry.name}`, root)));
      const validate = validators.get(trace["#meta"].machine)!;
      assert.ok(validate(trace), `${dir}/${entry.name}: ${ajv.errorsText(validate.errors)}`);
      checked++;
    }
  }
  assert.ok(checked >= 30, `only ${checked} fixtures`);
});

Deno.test("a trace with an unknown op or a mistyped argument does not validate", async () => {
  const file = new URL("counterexamples/skipUndoOnDetach.itf.json", root);
  const good = JSON.parse(await Deno.readTextFile(file));
  // deno-lint-ignore no-explicit-any -- a JSON document edited in place
  const copy = (): any => JSON.parse(JSON.stringify(good));
  const validate = validators.get("type1")!;
  assert.ok(validate(good));
  const unknownOp = copy();
  unknownOp.states[1]["mbt::actionTaken"] = "type1.nosuch";
  assert.ok(!validate(unknownOp));
  const mistyped = copy();
  const picks = mistyped.states[1]["mbt::nondetPicks"];
  picks[Object.keys(picks)[0]] = "seven";
  assert.ok(!validate(mistyped));
  const otherMachine = copy();
  otherMachine["#meta"].machine = "qm";
  assert.ok(!validate(otherMachine));
});
