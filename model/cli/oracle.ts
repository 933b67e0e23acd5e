/**
 * `deno task oracle FILE.itf.json` — checks a trace produced by another implementation against
 * the spec: each step's return value, events and state (sequential traces), or the existence
 * of a linearization (race traces). Exit 0 when it conforms, 1 on the first divergence, 2 for
 * bad input. The trace format is described in README.md.
 *
 * @module
 */
import { oracle } from "../replay.ts";
import { parseArgs, printLines, runCli, UsageError } from "./common.ts";
import { loadTrace } from "./model_args.ts";

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, { help: "bool" });
  if (flags.help || positional.length !== 1) {
    if (flags.help) {
      await printLines("usage: deno task oracle FILE.itf.json");
      return 0;
    }
    throw new UsageError("usage: deno task oracle FILE.itf.json");
  }
  const trace = await loadTrace(positional[0]);
  const result = oracle(trace);
  await printLines(...result.lines);
  return result.passed ? 0 : 1;
}

if (import.meta.main) await runCli("oracle", main);
