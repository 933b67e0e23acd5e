/**
 * `deno task fixtures` — regenerates `fixtures/schemas/<machine>.trace.schema.json` (what
 * `oracle --schema` prints) and `fixtures/counterexamples/<quirk>.itf.json`: for each quirk, the
 * suite of its machine in the catalogue's mode is run with the quirk on and a fixed seed until
 * it fails, and the shrunk counterexample is saved. Deterministic: the same code gives the same
 * files.
 *
 * @module
 */
import { QUIRK_NAMES } from "../../impl/quirks.ts";
import { MACHINES, quirkSuite } from "../machines.ts";
import { traceSchema } from "../trace_schema.ts";
import { runSuite } from "../suites.ts";
import { parseArgs, printLines, runCli, UsageError } from "./common.ts";

const USAGE = `usage: deno task fixtures [--out DIR]
  regenerates fixtures/schemas/ and, in DIR (default fixtures/counterexamples), each quirk's
  counterexample, found with seed 20180903`;

/** The seed the saved counterexamples were found with. */
export const FIXTURE_SEED = 20180903;

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, { out: "string", help: "bool" });
  if (flags.help) {
    await printLines(USAGE);
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const out = (flags.out as string | undefined) ?? "fixtures/counterexamples";
  await Deno.mkdir(out, { recursive: true });
  for (const m of MACHINES) {
    await Deno.writeTextFile(
      `fixtures/schemas/${m.name}.trace.schema.json`,
      JSON.stringify(traceSchema(m, m.schema), null, 1) + "\n",
    );
  }
  for (const quirk of QUIRK_NAMES) {
    const suite = quirkSuite(quirk);
    const r = await runSuite(suite, { seed: FIXTURE_SEED, runs: 100_000, quirks: [quirk] });
    if (!r.failure) {
      throw new Error(`${quirk}: the ${suite.name} suite did not find it in ${r.runs} runs`);
    }
    await Deno.writeTextFile(
      `${out}/${quirk}.itf.json`,
      JSON.stringify(r.failure.trace, null, 1) + "\n",
    );
    await printLines(
      `${quirk}: ${suite.name}, ${r.runs} runs, ${r.failure.length} steps: ${r.failure.violation}`,
    );
  }
  return 0;
}

if (import.meta.main) await runCli("fixtures", main);
