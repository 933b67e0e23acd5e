/**
 * `deno task fixtures` — regenerates `fixtures/schemas/<machine>.trace.schema.json` (what
 * `oracle --schema` prints), `fixtures/counterexamples/<quirk>.itf.json` (for each quirk, the
 * suite of its machine in the catalogue's mode is run with the quirk on and a fixed seed until
 * it fails, and the shrunk counterexample is saved) and `fixtures/regressions/` (each trace
 * replayed on the correct implementation, under its schedule for a race, and recorded again,
 * so its states have the shape the machine has now). Deterministic: the same code gives the
 * same files.
 *
 * @module
 */
import { QUIRK_NAMES } from "../../impl/quirks.ts";
import { machineNamed, MACHINES, quirkSuite } from "../machines.ts";
import { replayTrace } from "../replay.ts";
import type { Json } from "../itf.ts";
import { parseTrace, raceTrace, sequentialTrace } from "../trace.ts";
import { traceSchema } from "../trace_schema.ts";
import { runSuite } from "../suites.ts";
import { parseArgs, printLines, runCli, UsageError } from "./common.ts";

const USAGE = `usage: deno task fixtures [--out DIR] [--quirk NAME ...]
  regenerates fixtures/schemas/, fixtures/regressions/ (recorded again on the correct
  implementation) and, in DIR (default fixtures/counterexamples), each quirk's counterexample,
  found with seed 20180903; with --quirk (repeatable), only those quirks' counterexamples`;

const REGRESSIONS = "fixtures/regressions";

/** A regression trace replayed on the correct implementation and recorded again. */
async function reRecorded(file: string): Promise<Json> {
  const trace = parseTrace(await Deno.readTextFile(file), machineNamed);
  const r = await replayTrace(trace, {}, true);
  if (!r.passed || !r.run) {
    throw new Error(`${file} no longer replays cleanly: ${r.lines.at(-1)}`);
  }
  if (r.run.mode === "sequential") {
    return sequentialTrace(trace.machine, trace.meta, trace.machine.initial(), r.run.records);
  }
  const race = { ...trace.meta.race!, schedule: r.run.schedule };
  const meta = { ...trace.meta, race };
  return raceTrace(trace.machine, meta, r.run.start, r.run.history, r.run.schedule);
}

/** The seed the saved counterexamples were found with. */
export const FIXTURE_SEED = 20180903;

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, {
    out: "string",
    quirk: "list",
    help: "bool",
  });
  if (flags.help) {
    await printLines(USAGE);
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const only = (flags.quirk as string[] | undefined) ?? [];
  const unknown = only.find((q) => !(QUIRK_NAMES as readonly string[]).includes(q));
  if (unknown !== undefined) throw new UsageError(`--quirk: no quirk named "${unknown}"`);
  const out = (flags.out as string | undefined) ?? "fixtures/counterexamples";
  await Deno.mkdir(out, { recursive: true });
  for (const m of MACHINES) {
    await Deno.writeTextFile(
      `fixtures/schemas/${m.name}.trace.schema.json`,
      JSON.stringify(traceSchema(m), null, 1) + "\n",
    );
  }
  for (const entry of [...Deno.readDirSync(REGRESSIONS)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    const file = `${REGRESSIONS}/${entry.name}`;
    await Deno.writeTextFile(file, JSON.stringify(await reRecorded(file), null, 1) + "\n");
  }
  for (const quirk of QUIRK_NAMES) {
    if (only.length > 0 && !only.includes(quirk)) continue;
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
