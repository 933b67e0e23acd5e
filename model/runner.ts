/**
 * Sequential conformance: each command goes to the spec and to the implementation; the run
 * compares return values, events and the observed state, and checks the invariants on the
 * implementation's state after every step. One runner serves the tests, `check` and `replay`.
 *
 * @module
 */
import type { Event, Ret } from "../spec/types.ts";
import type { Quirks } from "../impl/quirks.ts";
import { describeDifference, firstDifference } from "./equal.ts";
import {
  type Cmd,
  execGuarded,
  type Implementation,
  type Machine,
  type Outcome,
} from "./machine.ts";

/** What happened at one step, on both sides. */
export interface StepRecord<S = unknown, C extends Cmd = Cmd> {
  /** The command. */
  readonly cmd: C;
  /** Spec state after the step. */
  readonly specState: S;
  /** Spec return value. */
  readonly specRet: Ret;
  /** Spec events. */
  readonly specEvents: readonly Event[];
  /** Implementation's return value and events. */
  readonly impl: Outcome;
  /** Implementation state after the step, in the spec's shape. */
  readonly observed: S;
  /** Why the step fails conformance (first reason), or undefined. */
  readonly failure?: string;
}

/** One side of a step, for comparison. */
export interface Side<S> {
  /** Return value. */
  readonly ret: Ret;
  /** Events. */
  readonly events: readonly Event[];
  /** State after the step. */
  readonly state: S;
}

/**
 * Why a step does not conform, comparing the spec's side with an implementation's (whose
 * state must also satisfy every invariant); undefined if it does.
 */
export function compareStep<S>(
  machine: Machine<S>,
  spec: Side<S>,
  impl: Side<S>,
): string | undefined {
  if (firstDifference(spec.ret, impl.ret) !== undefined) {
    return `ret differs: spec ${JSON.stringify(spec.ret)}, impl ${JSON.stringify(impl.ret)}`;
  }
  if (firstDifference(spec.events, impl.events) !== undefined) {
    return `events differ: spec ${JSON.stringify(spec.events)}, impl ${
      JSON.stringify(impl.events)
    }`;
  }
  const where = describeDifference(spec.state, impl.state, ["spec", "impl"]);
  if (where !== undefined) return `state differs ${where}`;
  const broken = machine.violations(impl.state);
  return broken.length > 0 ? `invariant ${broken[0]}` : undefined;
}

/** A spec and an implementation advanced in lockstep. */
export class Conformance<S, C extends Cmd> {
  /** The spec state so far. */
  spec: S;
  /** The implementation. */
  readonly impl: Implementation<S, C>;
  readonly #machine: Machine<S, C>;

  /** Both sides, freshly started. */
  constructor(machine: Machine<S, C>, quirks: Quirks = {}) {
    this.#machine = machine;
    this.spec = machine.initial();
    this.impl = machine.implementation(quirks);
  }

  /** Runs one command on both sides (placeholders resolved on the spec's state) and compares. */
  async step(generated: C): Promise<StepRecord<S, C>> {
    const cmd = this.#machine.resolve?.(this.spec, generated) ?? generated;
    const s = this.#machine.step(this.spec, cmd);
    this.spec = s.state;
    const { exception, ...impl } = await execGuarded(this.impl, cmd);
    const observed = this.impl.observe();
    const failure = exception !== undefined
      ? `exception in the implementation: ${exception}`
      : compareStep(this.#machine, s, { ...impl, state: observed });
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

/** Runs `cmds` until the first non-conforming step (inclusive). */
export async function runSequential<S, C extends Cmd>(
  machine: Machine<S, C>,
  cmds: Iterable<C>,
  quirks: Quirks = {},
): Promise<StepRecord<S, C>[]> {
  const conf = new Conformance(machine, quirks);
  const records: StepRecord<S, C>[] = [];
  for (const cmd of cmds) {
    const r = await conf.step(cmd);
    records.push(r);
    if (r.failure) break;
  }
  return records;
}
