/**
 * `deno task oracle FILE.itf.json` — checks a trace produced by another implementation against
 * the spec: each step's return value, events and the state it observes (sequential traces,
 * unknown outcomes followed both ways), or the existence of a linearization (race traces).
 * Exit 0 when it conforms, 1 on the first divergence (or undecided), 2 for bad input. The
 * trace format is described in README.md. `--init MACHINE` prints a machine's initial state as
 * a one-state trace, the start an implementer extends; `--schema MACHINE` the JSON Schema its
 * traces follow.
 *
 * @module
 */
import { machineNamed, MACHINES } from "../machines.ts";
import { ItfError } from "../itf.ts";
import { checkTrace, DEFAULT_MAX_BRANCHES } from "../oracle/mod.ts";
import { sequentialTrace } from "../trace.ts";
import { traceSchema } from "../trace_schema.ts";
import { parseArgs, printLines, runCli, UsageError } from "./common.ts";
import { loadTrace } from "./model_args.ts";

const USAGE = `usage: deno task oracle [--max-branches N] FILE.itf.json
       deno task oracle --init MACHINE
       deno task oracle --schema MACHINE
  --max-branches N  most spec states followed at once through unknown outcomes (default ${DEFAULT_MAX_BRANCHES})
  --init MACHINE    print MACHINE's initial state as a one-state ITF trace to start from
  --schema MACHINE  print the JSON Schema of MACHINE's traces (fixtures/schemas/ has them)
                    (MACHINE: ${MACHINES.map((m) => m.name).join(" | ")})`;

/** The machine a flag names, or a usage error listing the known ones. */
function namedMachine(flag: string, name: string) {
  const machine = machineNamed(name);
  if (machine) return machine;
  const known = MACHINES.map((m) => m.name).join(", ");
  throw new UsageError(`--${flag}: unknown machine "${name}" (known: ${known})`);
}

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, {
    help: "bool",
    init: "string",
    schema: "string",
    "max-branches": "int",
  });
  if (flags.help || positional.includes("-h")) {
    await printLines(USAGE);
    return 0;
  }
  if (flags.schema !== undefined) {
    if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
    const machine = namedMachine("schema", flags.schema as string);
    await printLines(JSON.stringify(traceSchema(machine), null, 1));
    return 0;
  }
  if (flags.init !== undefined) {
    if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
    const machine = namedMachine("init", flags.init as string);
    const meta = { machine: machine.name, mode: "sequential" as const, quirks: [] };
    await printLines(
      JSON.stringify(sequentialTrace(machine, meta, machine.initial(), []), null, 1),
    );
    return 0;
  }
  if (positional.length !== 1) throw new UsageError(USAGE.split("\n")[0]);
  const file = positional[0];
  const trace = await loadTrace(file);
  const maxBranches = flags["max-branches"] as number | undefined;
  if (maxBranches === 0) throw new UsageError("--max-branches must be at least 1");
  let result;
  try {
    result = checkTrace(trace, { maxBranches });
  } catch (e) {
    if (e instanceof ItfError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
  await printLines(...result.report());
  return result.passed ? 0 : 1;
}

if (import.meta.main) await runCli("oracle", main);
