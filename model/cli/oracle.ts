/**
 * `deno task oracle FILE.itf.json` — checks a trace produced by another implementation against
 * the spec: each step's return value, events and state (sequential traces), or the existence
 * of a linearization (race traces). Exit 0 when it conforms, 1 on the first divergence, 2 for
 * bad input. The trace format is described in README.md. `--init MACHINE` prints a machine's
 * initial state as a one-state trace, the start an implementer extends.
 *
 * @module
 */
import { machineNamed, MACHINES } from "../machines.ts";
import { oracle } from "../replay.ts";
import { sequentialTrace } from "../trace.ts";
import { parseArgs, printLines, runCli, UsageError } from "./common.ts";
import { loadTrace } from "./model_args.ts";

const USAGE = `usage: deno task oracle FILE.itf.json
       deno task oracle --init MACHINE
  --init MACHINE  print MACHINE's initial state as a one-state ITF trace to start from
                  (${MACHINES.map((m) => m.name).join(" | ")})`;

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, { help: "bool", init: "string" });
  if (flags.help) {
    await printLines(USAGE);
    return 0;
  }
  if (flags.init !== undefined) {
    if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
    const machine = machineNamed(flags.init as string);
    if (!machine) {
      const known = MACHINES.map((m) => m.name).join(", ");
      throw new UsageError(`--init: unknown machine "${flags.init}" (known: ${known})`);
    }
    const meta = { machine: machine.name, mode: "sequential" as const, quirks: [] };
    await printLines(
      JSON.stringify(sequentialTrace(machine, meta, machine.initial(), []), null, 1),
    );
    return 0;
  }
  if (positional.length !== 1) throw new UsageError(USAGE.split("\n")[0]);
  const trace = await loadTrace(positional[0]);
  const result = oracle(trace);
  await printLines(...result.lines);
  return result.passed ? 0 : 1;
}

if (import.meta.main) await runCli("oracle", main);
