/**
 * The JSON Schemas of traces in `fixtures/schemas/`: each is what `oracle --schema MACHINE`
 * prints now, every fixture trace validates against its machine's, and a trace with a wrong
 * op, argument or success value does not.
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { MACHINES } from "../model/machines.ts";
import { traceSchema } from "../model/trace_schema.ts";

const root = new URL("../fixtures/", import.meta.url);
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validators = new Map(
  MACHINES.map((m) => [m.name, ajv.compile(traceSchema(m))]),
);

Deno.test("fixtures/schemas/ holds what oracle --schema prints for every machine", async () => {
  for (const m of MACHINES) {
    const file = new URL(`schemas/${m.name}.trace.schema.json`, root);
    const saved = JSON.parse(await Deno.readTextFile(file));
    assert.deepEqual(saved, traceSchema(m), `${m.name}: regenerate the schema file`);
  }
});

/**
 * The schema errors of `trace`, each as the state it is in and the variable, or the JSON path
 * outside the states.
 */
function schemaErrors(trace: { "#meta": { machine: string } }): string[] {
  const validate = validators.get(trace["#meta"].machine)!;
  if (validate(trace)) return [];
  return [
    ...new Set(validate.errors!.map((e) => e.instancePath.split("/").slice(0, 4).join("/"))),
  ];
}

Deno.test("every fixture trace validates against its machine's schema, returns included", async () => {
  let checked = 0;
  let wrongShape = 0;
  for (const dir of ["counterexamples", "regressions", "race-scenarios"]) {
    for (const entry of Deno.readDirSync(new URL(`${dir}/`, root))) {
      const trace = JSON.parse(await Deno.readTextFile(new URL(`${dir}/${entry.name}`, root)));
      const errors = schemaErrors(trace);
      checked++;
      if (errors.length === 0) continue;
      // A counterexample records the defective implementation's answers: its last step may be
      // one whose success value has the wrong shape (that is the defect), and nothing else.
      const last = `/states/${trace.states.length - 1}`;
      assert.ok(
        dir === "counterexamples" &&
          errors.every((e) => e === last || e.startsWith(`${last}/warpspec::ret`)),
        `${dir}/${entry.name}: ${errors.join(", ")}`,
      );
      wrongShape++;
    }
  }
  assert.ok(checked >= 30, `only ${checked} fixtures`);
  assert.equal(wrongShape, 1, "positiveStatusAsError's answer is a number, not {length, crc32}");
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
  const wrongResult = copy();
  const open = wrongResult.states.findIndex((st: Record<string, unknown>) =>
    st["mbt::actionTaken"] === "type1.openGroup"
  );
  assert.ok(open > 0);
  wrongResult.states[open]["warpspec::ret"] = { ok: { "#bigint": "4096" } };
  assert.ok(!validate(wrongResult), "openGroup returns 0 on success, nothing else");
  const otherMachine = copy();
  otherMachine["#meta"].machine = "qm";
  assert.ok(!validate(otherMachine));
});
