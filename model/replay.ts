/**
 * Replaying traces against the spec and the implementation, step by step, for people: each
 * step's op, arguments, spec and implementation return values, and the verdict, with the
 * first divergence marked. Also the oracle: checking a trace recorded by another
 * implementation against the spec alone.
 *
 * @module
 */
import { type Command, initialState, step, type SystemState } from "../spec/system.ts";
import type { Ret } from "../spec/types.ts";
import type { Quirks } from "../impl/quirks.ts";
import { replayDriver } from "../impl/sched.ts";
import { showCommand } from "./commands.ts";
import { firstDifference } from "./equal.ts";
import { linearize, runRace } from "./race.ts";
import { compareStep, Conformance } from "./runner.ts";
import type { Trace } from "./trace.ts";

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

function line(mark: string, i: number, cmd: Command, spec: string, impl: string, verdict: string) {
  return `${mark} ${String(i).padStart(3)}  ${showCommand(cmd).padEnd(58)} spec ${
    spec.padEnd(14)
  } impl ${impl.padEnd(14)} ${verdict}`;
}

/** Replays a sequential trace's commands against the spec and the implementation. */
export async function replaySequential(
  commands: readonly Command[],
  quirks: Quirks,
): Promise<ReplayResult> {
  const conf = new Conformance({ quirks });
  const lines: string[] = [];
  for (const [i, cmd] of commands.entries()) {
    const r = await conf.step(cmd);
    const verdict = r.failure ? `<-- FIRST DIVERGENCE: ${r.failure}` : "ok";
    lines.push(
      line(r.failure ? "✗" : " ", i + 1, cmd, showRet(r.specRet), showRet(r.impl.ret), verdict),
    );
    if (r.failure) return { lines, passed: false };
  }
  lines.push(`all ${commands.length} steps conform`);
  return { lines, passed: true };
}

/** Replays a race trace's scenario under its recorded schedule. */
export async function replayRace(
  trace: Trace,
  quirks: Quirks,
  strict: boolean,
): Promise<ReplayResult> {
  const race = trace.meta.race!;
  const result = await runRace(race, replayDriver(race.schedule, strict), { quirks });
  const lines = [
    `setup: ${race.setup.map(showCommand).join("; ") || "(none)"}`,
    ...race.actors.map((a) => `${a.name}: ${a.program.map(showCommand).join("; ")}`),
    `schedule: ${result.schedule.join(" ")}`,
    ...result.history.map((h) =>
      `  ${h.actor.padEnd(8)} [${h.invoked}..${h.returned}] ${showCommand(h.cmd).padEnd(58)} ${
        showRet(h.ret)
      } ${h.events.length ? JSON.stringify(h.events) : ""}`
    ),
  ];
  if (result.failure) lines.push(`✗ FAILED: ${result.failure}`);
  else {lines.push(`linearizable as: ${
      result.linearization!.map((h) => `${h.actor}#${h.index}`).join(" ")
    }`);}
  return { lines, passed: !result.failure };
}

/** Checks a sequential trace against the spec alone: every ret, event list and state. */
export function oracleSequential(trace: Trace): ReplayResult {
  const lines: string[] = [];
  let state: SystemState = initialState();
  const where = firstDifference(state, trace.initial);
  if (where) {
    return { lines: [`✗ initial state differs from the spec's at ${where}`], passed: false };
  }
  for (const [i, s] of trace.steps.entries()) {
    const r = step(state, s.cmd);
    const failure = compareStep(r, { ret: s.ret, events: s.events, state: s.state });
    const verdict = failure ? `<-- FIRST DIVERGENCE: ${failure}` : "ok";
    lines.push(line(failure ? "✗" : " ", i + 1, s.cmd, showRet(r.ret), showRet(s.ret), verdict));
    if (failure) return { lines, passed: false };
    state = r.state;
  }
  lines.push(`all ${trace.steps.length} steps conform to the spec`);
  return { lines, passed: true };
}

/** Checks a race trace against the spec alone: its history must be linearizable. */
export function oracleRace(trace: Trace): ReplayResult {
  let start = initialState();
  for (const cmd of trace.meta.race!.setup) start = step(start, cmd).state;
  const history = trace.steps.map((s, i) => ({
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
  const order = linearize(start, history, end);
  return order
    ? {
      lines: [`linearizable as: ${order.map((h) => `${h.actor}#${h.index}`).join(" ")}`],
      passed: true,
    }
    : { lines: ["✗ no sequential order of the history is explained by the spec"], passed: false };
}
