/**
 * CLI inputs that name parts of the model: `--suite` values and trace files. Apart from
 * common.ts so that a CLI needing neither (zip) does not load every machine and fast-check.
 *
 * @module
 */
import { ItfError } from "../itf.ts";
import { machineNamed, type Suite, SUITES } from "../machines.ts";
import { type MachineTrace, parseTrace } from "../trace.ts";
import { UsageError } from "./common.ts";

/** Validates `--suite` values. */
export function suitesNamed(values: readonly string[]): Suite[] {
  return values.map((name) => {
    const suite = SUITES.find((s) => s.name === name);
    if (!suite) {
      const known = SUITES.map((s) => s.name).join(", ");
      throw new UsageError(`unknown suite "${name}" (known: ${known})`);
    }
    return suite;
  });
}

/** Reads and parses a trace file; every problem becomes a one-line {@link UsageError}. */
export async function loadTrace(file: string): Promise<MachineTrace> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`${file}: no such file`);
    if (e instanceof Deno.errors.IsADirectory) throw new UsageError(`${file}: is a directory`);
    throw new UsageError(`${file}: cannot read: ${(e as Error).message}`);
  }
  try {
    return parseTrace(text, machineNamed);
  } catch (e) {
    if (e instanceof ItfError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}
