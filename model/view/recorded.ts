/**
 * A recorded trace as a run to draw, judged by the spec alone: what the view shows when the
 * replay no longer reproduces a trace's recorded violation (a defect fixed since, `--no-quirk`,
 * a schedule the implementation cannot follow). Sequential traces: each recorded step against
 * the spec's, up to the first divergence; race traces: the recorded history from the spec's
 * state after the setup, failing when no order of it linearizes.
 *
 * @module
 */
import { checkLinearizable } from "../oracle/race.ts";
import type { HistoryEntry } from "../race.ts";
import type { RaceRun, SequentialRun } from "../replay.ts";
import { compareStep, type StepRecord } from "../runner.ts";
import type { MachineTrace } from "../trace.ts";

function sequential(trace: MachineTrace): SequentialRun {
  const machine = trace.machine;
  let state = machine.initial();
  const records: StepRecord[] = [];
  for (const s of trace.steps) {
    const r = machine.step(state, s.cmd);
    const failure = compareStep(machine, r, s);
    records.push({
      cmd: s.cmd,
      specState: r.state,
      specRet: r.ret,
      specEvents: r.events,
      impl: { ret: s.ret, events: s.events },
      observed: s.state,
      failure,
    });
    if (failure) break;
    state = r.state;
  }
  return { mode: "sequential", records };
}

function race(trace: MachineTrace): RaceRun {
  const machine = trace.machine;
  const scenario = trace.meta.race!;
  let start = machine.initial();
  const setup = scenario.setup.map((cmd) => {
    const r = machine.step(start, cmd);
    start = r.state;
    return { cmd, ret: r.ret };
  });
  const done = new Map<string, number>();
  const history: HistoryEntry[] = trace.steps.map((s) => {
    const index = done.get(s.actor!) ?? 0;
    done.set(s.actor!, index + 1);
    const { cmd, ret, events, state: observed } = s;
    return {
      actor: s.actor!,
      index,
      cmd,
      invoked: s.invoked!,
      returned: s.returned!,
      ret,
      events,
      observed,
    };
  });
  const end = trace.steps.at(-1)?.state ?? start;
  const linearizable = checkLinearizable(machine, start, history, end).order !== undefined;
  const failure = linearizable ? undefined : "no order of the history is explained by the spec";
  return { mode: "race", setup, start, history, end, schedule: scenario.schedule, failure };
}

/** The recorded `trace` as the spec alone judges it. */
export function recordedRun(trace: MachineTrace): SequentialRun | RaceRun {
  return trace.meta.mode === "race" ? race(trace) : sequential(trace);
}
