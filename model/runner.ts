/**
 * Sequential conformance: each command goes to the spec and to the implementation; the run
 * compares return values, events and the observed state, and checks the invariants on the
 * implementation's state after every step. One runner serves the tests, `check` and `replay`.
 *
 * @module
 */
import {
  type Command,
  initialState,
  step,
  type SystemState,
  type Topology,
  violations,
} from "../spec/system.ts";
import type { Event, Ret } from "../spec/types.ts";
import type { Quirks } from "../impl/quirks.ts";
import { type Outcome, System } from "../impl/system.ts";
import { firstDifference } from "./equal.ts";

/** What happened at one step, on both sides. */
export interface StepRecord {
  /** The command. */
  readonly cmd: Command;
  /** Spec state after the step. */
  readonly specState: SystemState;
  /** Spec return value. */
  readonly specRet: Ret;
  /** Spec events. */
  readonly specEvents: readonly Event[];
  /** Implementation's return value and events. */
  readonly impl: Outcome;
  /** Implementation state after the step, in the spec's shape. */
  readonly observed: SystemState;
  /** Why the step fails conformance (first reason), or undefined. */
  readonly failure?: string;
}

/** Options of a conformance run. */
export interface RunOptions {
  /** Seed defects to switch on in the implementation. */
  readonly quirks?: Quirks;
  /** The machine (default topology when absent). */
  readonly topology?: Topology;
}

/** Why a step does not conform, comparing spec and implementation; undefined if it does. */
export function compareStep(
  spec: { ret: Ret; events: readonly Event[]; state: SystemState },
  impl: { ret: Ret; events: readonly Event[]; state: SystemState },
): string | undefined {
  if (firstDifference(spec.ret, impl.ret) !== undefined) {
    return `ret differs: spec ${JSON.stringify(spec.ret)}, impl ${JSON.stringify(impl.ret)}`;
  }
  if (firstDifference(spec.events, impl.events) !== undefined) {
    return `events differ: spec ${JSON.stringify(spec.events)}, impl ${
      JSON.stringify(impl.events)
    }`;
  }
  const where = firstDifference(spec.state, impl.state);
  if (where !== undefined) return `state differs at ${where}`;
  const broken = violations(impl.state);
  return broken.length > 0 ? `invariant ${broken[0]}` : undefined;
}

/** A spec and an implementation advanced in lockstep. */
export class Conformance {
  /** The spec state so far. */
  spec: SystemState;
  /** The implementation. */
  readonly impl: System;

  /** Both sides booted on the same topology. */
  constructor(options: RunOptions = {}) {
    this.spec = initialState(options.topology);
    this.impl = new System({ topology: options.topology, quirks: options.quirks });
  }

  /** Runs one command on both sides and compares. */
  async step(cmd: Command): Promise<StepRecord> {
    const s = step(this.spec, cmd);
    this.spec = s.state;
    const impl = await this.impl.exec(cmd);
    const observed = this.impl.observe();
    const failure = compareStep(
      { ret: s.ret, events: s.events, state: s.state },
      { ret: impl.ret, events: impl.events, state: observed },
    );
    return {
      cmd,
      specState: s.state,
      specRet: s.ret,
      specEvents: s.events,
      impl,
      observed,
      failure,
    };
  }
}

/** Runs commands until the first non-conforming step (inclusive). */
export async function runSequential(
  cmds: Iterable<Command>,
  options: RunOptions = {},
): Promise<StepRecord[]> {
  const conf = new Conformance(options);
  const records: StepRecord[] = [];
  for (const cmd of cmds) {
    const r = await conf.step(cmd);
    records.push(r);
    if (r.failure) break;
  }
  return records;
}
