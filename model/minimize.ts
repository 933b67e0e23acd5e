/**
 * Re-shrinking a counterexample against the current implementation (`replay --minimize`):
 * steps are dropped, prelude steps included, halves first and then ever smaller runs down to
 * single steps, until no step can go. A candidate is kept only if it still fails with the
 * trace's quirks and, when the trace names quirks, passes without them (so what fails is the
 * quirk, not some other defect the shortened run stumbles on). Deterministic: no randomness,
 * candidates in a fixed order.
 *
 * Sequential traces drop commands; a kept candidate is cut after its first divergence. Race
 * traces drop setup commands and actor operations (an actor whose program empties goes; at
 * least two actors stay). A shortened race no longer has the recorded schedule's points, so
 * candidates run under the recorded schedule leniently (an ineligible choice falls back to
 * the same actor, then to the first eligible point) and a kept one records the schedule it
 * actually ran, which replays strictly.
 *
 * @module
 */
import { replayDriver } from "../impl/sched.ts";
import type { Json } from "./itf.ts";
import type { Cmd, Machine } from "./machine.ts";
import { type RaceResult, type RaceScenario, runRace } from "./race.ts";
import { quirkSwitches } from "./replay.ts";
import { runSequential, type StepRecord } from "./runner.ts";
import { type MachineTrace, raceTrace, sequentialTrace, type TraceMeta } from "./trace.ts";

/** A minimized counterexample. */
export interface Minimized {
  /** The shortest failing trace found, as ITF. */
  readonly trace: Json;
  /** Steps before (race traces: setup commands plus actor operations). */
  readonly before: number;
  /** Steps after. */
  readonly after: number;
  /** Why the shortest one fails. */
  readonly violation: string;
  /** How many candidates were replayed. */
  readonly tried: number;
}

/**
 * Drops runs of `items` while `attempt` accepts what is left: runs of half the length first,
 * then halving down to single items, and single items again until none can go. `attempt`
 * returns the candidate to keep (possibly cut shorter) or undefined to reject it.
 */
async function shrink<T>(
  items: readonly T[],
  attempt: (candidate: readonly T[]) => Promise<readonly T[] | undefined>,
): Promise<readonly T[]> {
  let kept = items;
  let run = Math.max(1, Math.floor(kept.length / 2));
  for (;;) {
    let changed = false;
    for (let i = 0; i < kept.length;) {
      const candidate = [...kept.slice(0, i), ...kept.slice(i + run)];
      const accepted = candidate.length < kept.length ? await attempt(candidate) : undefined;
      if (accepted) {
        kept = accepted;
        changed = true;
      } else {
        i += run;
      }
    }
    if (run > 1) run = Math.max(1, Math.floor(run / 2));
    else if (!changed) return kept;
  }
}

function metaOf(trace: MachineTrace, violation: string): TraceMeta {
  return {
    machine: trace.meta.machine,
    mode: trace.meta.mode,
    quirks: trace.meta.quirks,
    violation,
  };
}

async function minimizeSequential(trace: MachineTrace): Promise<Minimized | undefined> {
  const machine = trace.machine;
  const quirks = quirkSwitches(trace.meta.quirks);
  let tried = 0;
  let last: StepRecord[] | undefined;
  const attempt = async (cmds: readonly Cmd[]) => {
    tried++;
    const records = await runSequential(machine, cmds, quirks);
    if (records.at(-1)?.failure === undefined) return undefined;
    const cut = records.map((r) => r.cmd);
    if (trace.meta.quirks.length > 0) {
      const correct = await runSequential(machine, cut, {});
      if (correct.at(-1)?.failure !== undefined) return undefined;
    }
    last = records;
    return cut;
  };
  const start = await attempt(trace.steps.map((s) => s.cmd));
  if (!start) return undefined;
  await shrink(start, attempt);
  const records = last!;
  const violation = records.at(-1)!.failure!;
  return {
    trace: sequentialTrace(machine, metaOf(trace, violation), machine.initial(), records),
    before: trace.steps.length,
    after: records.length,
    violation,
    tried,
  };
}

/** A command of a race scenario: in the setup (no actor) or in an actor's program. */
interface RaceItem {
  readonly actor?: string;
  readonly cmd: Cmd;
}

function scenarioOf(items: readonly RaceItem[], names: readonly string[]): RaceScenario {
  return {
    setup: items.filter((i) => i.actor === undefined).map((i) => i.cmd),
    actors: names
      .map((name) => ({ name, program: items.filter((i) => i.actor === name).map((i) => i.cmd) }))
      .filter((a) => a.program.length > 0),
  };
}

async function minimizeRace(trace: MachineTrace): Promise<Minimized | undefined> {
  const machine: Machine = trace.machine;
  const race = trace.meta.race!;
  const quirks = quirkSwitches(trace.meta.quirks);
  const names = race.actors.map((a) => a.name);
  let tried = 0;
  let schedule = race.schedule;
  let last: { scenario: RaceScenario; result: RaceResult } | undefined;
  const attempt = async (items: readonly RaceItem[]) => {
    const scenario = scenarioOf(items, names);
    if (scenario.actors.length < 2) return undefined;
    tried++;
    const result = await runRace(machine, scenario, replayDriver(schedule, false), { quirks });
    if (result.failure === undefined) return undefined;
    if (trace.meta.quirks.length > 0) {
      const correct = await runRace(machine, scenario, replayDriver(result.schedule, false), {});
      if (correct.failure !== undefined) return undefined;
    }
    schedule = result.schedule;
    last = { scenario, result };
    return items;
  };
  const items: RaceItem[] = [
    ...race.setup.map((cmd) => ({ cmd })),
    ...race.actors.flatMap((a) => a.program.map((cmd) => ({ actor: a.name, cmd }))),
  ];
  if (!await attempt(items)) return undefined;
  const kept = await shrink(items, attempt);
  const { scenario, result } = last!;
  const meta = { ...metaOf(trace, result.failure!), race: { ...scenario, schedule } };
  return {
    trace: raceTrace(machine, meta, result.start, result.history, result.schedule),
    before: items.length,
    after: kept.length,
    violation: result.failure!,
    tried,
  };
}

/**
 * The shortest failing version of `trace` found by dropping steps, or undefined when the
 * trace does not fail (with its quirks) to begin with, or fails without them too.
 */
export function minimize(trace: MachineTrace): Promise<Minimized | undefined> {
  return trace.meta.mode === "race" ? minimizeRace(trace) : minimizeSequential(trace);
}
