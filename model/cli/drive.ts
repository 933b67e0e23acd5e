/**
 * `deno task drive --machine NAME [--runs N] [--seed N] [--out DIR] [--trace FILE] [--ops LIST]
 * [--max-commands N] [--timeout S] -- CMD ARGS…` — tests a live implementation in any language:
 * starts `CMD ARGS…`, speaks the JSON-lines protocol of model/drive/protocol.ts with it,
 * generates command sequences with the machine's generator, judges every answer with the spec,
 * shrinks a failure and writes it as an ITF trace that `oracle` and `replay` read. Exit 0 when
 * every run conforms, 1 on a divergence (a crash, a malformed answer or a timeout included),
 * 2 for bad usage.
 *
 * @module
 */
import { drive, DRIVE_TARGETS } from "../drive/driver.ts";
import { SpawnError } from "../drive/process.ts";
import {
  parseArgs,
  printLines,
  runCli,
  UsageError,
  writableDir,
  writeTextOrFail,
} from "./common.ts";

const MACHINES = Object.keys(DRIVE_TARGETS);

const USAGE = `usage: deno task drive --machine ${MACHINES.join("|")} [options] -- CMD ARGS...
  --machine NAME    the machine whose commands and spec judge the implementation
  --runs N          generated sequences (default 100)
  --seed N          fast-check seed (default: random, printed)
  --out DIR         where a counterexample is written (default: out/drive)
  --trace FILE      also write the longest passing run as an ITF trace (for oracle)
  --ops LIST        generate only these ops (comma-separated; the prelude still runs)
  --max-commands N  longest generated sequence (default: the machine's)
  --timeout S       seconds one run may take before the implementation is killed (default 10)
The protocol (JSON lines on stdin/stdout) is in README.md, "Checking your implementation".`;

/** Refuses a --trace file whose directory does not exist. */
function checkTraceFile(file: string): void {
  const slash = file.lastIndexOf("/");
  const dir = slash < 0 ? "." : file.slice(0, slash) || "/";
  try {
    if (Deno.statSync(file).isDirectory) throw new UsageError(`--trace: ${file} is a directory`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
  try {
    if (Deno.statSync(dir).isDirectory) return;
  } catch {
    // reported below
  }
  throw new UsageError(`--trace: ${file}: no such directory ${dir}`);
}

function writeTrace(file: string, trace: unknown): Promise<void> {
  return writeTextOrFail(file, JSON.stringify(trace, null, 1) + "\n");
}

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(Deno.args, {
    machine: "string",
    runs: "int",
    seed: "int",
    out: "string",
    trace: "string",
    ops: "string",
    "max-commands": "int",
    timeout: "int",
    help: "bool",
  });
  if (flags.help) {
    await printLines(USAGE);
    return 0;
  }
  const name = flags.machine as string | undefined;
  if (name === undefined) throw new UsageError(`--machine is required (${MACHINES.join(", ")})`);
  const target = DRIVE_TARGETS[name];
  if (!target) {
    throw new UsageError(`--machine: unknown machine "${name}" (known: ${MACHINES.join(", ")})`);
  }
  if (positional.length === 0) {
    throw new UsageError("no implementation to drive: give its command after --");
  }
  const ops = flags.ops === undefined ? undefined : (flags.ops as string).split(",");
  for (const op of ops ?? []) {
    if (!Object.hasOwn(target.machine.schema, op)) {
      throw new UsageError(`--ops: ${name} has no op "${op}"`);
    }
  }
  const runs = (flags.runs as number | undefined) ?? 100;
  if (runs === 0) throw new UsageError("--runs must be at least 1");
  const timeout = (flags.timeout as number | undefined) ?? 10;
  if (timeout === 0) throw new UsageError("--timeout must be at least 1");
  const seed = (flags.seed as number | undefined) ?? Math.floor(Math.random() * 2 ** 31);
  if (!Number.isSafeInteger(seed) || seed >= 2 ** 31) {
    throw new UsageError(`--seed must be below 2^31, got ${flags.seed}`);
  }
  const out = (flags.out as string | undefined) ?? "out/drive";
  await writableDir("--out", out);
  const traceFile = flags.trace as string | undefined;
  if (traceFile !== undefined) checkTraceFile(traceFile);
  let report;
  try {
    report = await drive({
      target,
      argv: positional,
      seed,
      runs,
      ops,
      maxCommands: flags["max-commands"] as number | undefined,
      timeoutMs: timeout * 1000,
      onStarted: () =>
        console.error(`drive: ${name}, seed ${seed}, ${runs} runs: ${positional.join(" ")}`),
    });
  } catch (e) {
    if (e instanceof SpawnError) throw new UsageError(e.message);
    throw e;
  }
  const rate = Math.round(report.commands / (report.ms / 1000));
  const judged = report.stateObserved ? "ret, events and state" : "ret and events (no state)";
  const summary = `${report.runs} runs, ${report.commands} commands in ${
    (report.ms / 1000).toFixed(2)
  } s (${rate} commands/s); judged: ${judged}`;
  if (traceFile !== undefined && report.longest) {
    await writeTrace(traceFile, report.longest);
    console.error(`drive: longest passing run written to ${traceFile}`);
  }
  if (!report.failure) {
    await printLines(`drive: passed: ${summary}`);
    return 0;
  }
  const file = `${out}/${name}-${seed}.itf.json`;
  await writeTrace(file, report.failure.trace);
  await printLines(
    `drive: FAILED: ${report.failure.violation}`,
    `drive: ${summary}`,
    `drive: counterexample (${report.failure.length} steps) written to ${file}`,
    report.failure.inTrace
      ? `drive: judge it with: npm run oracle -- ${file}`
      : "drive: the trace holds the steps answered before the failure (#meta.violation names it)",
  );
  return 1;
}

if (import.meta.main) await runCli("drive", main);
