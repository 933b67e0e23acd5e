/**
 * Replaying traces against a machine's spec and implementation, step by step, for people:
 * each step's op, arguments, spec and implementation return values and the verdict, with the
 * first divergence marked. Also the oracle: checking a trace recorded by another
 * implementation against the spec alone.
 *
 * @module
 */
import type { Ret } from "../spec/types.ts";
import type { Quirks } from "../impl/quirks.ts";
import { replayDriver, ScheduleDivergence } from "../impl/sched.ts";
import { describeDifference } from "./equal.ts";
import { type Cmd, type Machine, showCommand } from "./machine.ts";
import { type HistoryEntry, linearize, runRace } from "./race.ts";
import { compareStep, Conformance } from "./runner.ts";
import type { MachineTrace } from "./trace.ts";

/** Result of a replay: printable lines and whether everything conformed. */
export interface ReplayResult {
  /** Report lines. */
  readonly lines: readonly string[];
  /** True when no step diverged. */
  readonly passed: boolean;
}

function showRet(r: Ret): string {
  return "ok" in r ? `ok ${JSON.stringify(r.ok)}` : `err ${r.err}`;
}

function line(mark: string, i: number, cmd: Cmd, spec: string, impl: string, verdict: string) {
  const step = `${mark} ${String(i).padStart(3)}  ${showCommand(cmd).padEnd(58)}`;
  return `${step} spec ${spec.padEnd(14)} impl ${impl.padEnd(14)} ${verdict}`;
}

/** Replays commands against the machine's spec and implementation. */
export async function replaySequential(
  machine: Machine,
  commands: readonly Cmd[],
  quirks: Quirks,
): Promise<ReplayResult> {
  const conf = new Conformance(machine, quirks);
  const lines: string[] = [];
  for (const [i, cmd] of commands.entries()) {
    const r = await conf.step(cmd);
    const verdict = r.failure ? `<-- FIRST DIVERGENCE: ${r.failure}` : "ok";
    const mark = r.failure ? "✗" : " ";
    lines.push(line(mark, i + 1, cmd, showRet(r.specRet), showRet(r.impl.ret), verdict));
    if (r.failure) return { lines, passed: false };
  }
  lines.push(`all ${commands.length} steps conform`);
  return { lines, passed: true };
}

/** Replays a race trace's scenario under its recorded schedule (strictly, or leniently). */
export async function replayRace(
  trace: MachineTrace,
  quirks: Quirks,
  strict: boolean,
): Promise<ReplayResult> {
  const race = trace.meta.race!;
  const driver = replayDriver(race.schedule, strict);
  let result;
  try {
    result = await runRace(trace.machine, race, driver, { quirks });
  } catch (e) {
    if (!(e instanceof ScheduleDivergence)) throw e;
    const why = "the implementation's scheduling points changed since the trace was recorded";
    return {
      lines: [`✗ the recorded schedule cannot be followed (${why}): ${e.message}`],
      passed: false,
    };
  }
  const lines = [
    `setup: ${race.setup.map(showCommand).join("; ") || "(none)"}`,
    ...race.actors.map((a) => `${a.name}: ${a.program.map(showCommand).join("; ")}`),
    `schedule: ${result.schedule.join(" ")}`,
    ...result.history.map((h) => {
      const events = h.events.length ? JSON.stringify(h.events) : "";
      const op = `[${h.invoked}..${h.returned}] ${showCommand(h.cmd).padEnd(58)}`;
      return `  ${h.actor.padEnd(8)} ${op} ${showRet(h.ret)} ${events}`;
    }),
  ];
  if (result.failure) lines.push(`✗ FAILED: ${result.failure}`);
  else lines.push(`linearizable as: ${order(result.linearization!)}`);
  return { lines, passed: !result.failure };
}

/** Replays any trace: sequential traces command by command, race traces under their schedule. */
export function replayTrace(
  trace: MachineTrace,
  quirks: Quirks,
  strict: boolean,
): Promise<ReplayResult> {
  return trace.meta.mode === "race"
    ? replayRace(trace, quirks, strict)
    : replaySequential(trace.machine, trace.steps.map((s) => s.cmd), quirks);
}

function order(history: readonly HistoryEntry[]): string {
  return history.map((h) => `${h.actor}#${h.index}`).join(" ");
}

/** Checks a sequential trace against the spec alone: every ret, event list and state. */
function oracleSequential(trace: MachineTrace): ReplayResult {
  const machine = trace.machine;
  const lines: string[] = [];
  let state = machine.initial();
  const where = describeDifference(state, trace.initial, ["spec", "trace"]);
  if (where) return { lines: [`✗ initial state differs from the spec's ${where}`], passed: false };
  for (const [i, s] of trace.steps.entries()) {
    const r = machine.step(state, s.cmd);
    const failure = compareStep(machine, r, s);
    const verdict = failure ? `<-- FIRST DIVERGENCE: ${failure}` : "ok";
    lines.push(line(failure ? "✗" : " ", i + 1, s.cmd, showRet(r.ret), showRet(s.ret), verdict));
    if (failure) return { lines, passed: false };
    state = r.state;
  }
  lines.push(`all ${trace.steps.length} steps conform to the spec`);
  return { lines, passed: true };
}

/** Checks a race trace against the spec alone: its history must be linearizable. */
function oracleRace(trace: MachineTrace): ReplayResult {
  const machine = trace.machine;
  let start = machine.initial();
  for (const cmd of trace.meta.race!.setup) start = machine.step(start, cmd).state;
  const history: HistoryEntry[] = trace.steps.map((s, i) => ({
    actor: s.actor!,
    index: trace.steps.slice(0, i).filter((o) => o.actor === s.actor).length,
    cmd: s.cmd,
    invoked: s.invoked!,
    returned: s.returned!,
    ret: s.ret,
    events: s.events,
    observed: s.state,
  }));
  const end = trace.steps.at(-1)?.state ?? start;
  const found = linearize(machine, start, history, end);
  return found
    ? { lines: [`linearizable as: ${order(found)}`], passed: true }
    : { lines: ["✗ no sequential order of the history is explained by the spec"], passed: false };
}

/** The oracle: checks a trace recorded by some implementation against the spec alone. */
export function oracle(trace: MachineTrace): ReplayResult {
  return trace.meta.mode === "race" ? oracleRace(trace) : oracleSequential(trace);
}
