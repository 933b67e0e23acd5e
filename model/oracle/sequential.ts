/**
 * The oracle for sequential traces: each step's command run through the spec, its return
 * value, events and the observed part of the state compared with what the trace recorded, and
 * the invariants checked on the spec's state.
 *
 * A step whose outcome is unknown may or may not have taken effect: the oracle follows both
 * branches (the command applied, whatever it returned, or not applied) and keeps every branch
 * the later steps are consistent with. Branches that reach equal spec states are merged, and
 * at most {@link SequentialOptions.maxBranches} may be alive at once: beyond that the trace is
 * reported undecided rather than explored further.
 *
 * @module
 */
import type { Ret } from "../../spec/types.ts";
import { deepEqual, describeDivergence, difference } from "../equal.ts";
import { ItfError } from "../itf.ts";
import { type Cmd, type Machine, showCommand } from "../machine.ts";
import type { MachineTrace, TraceStep } from "../trace.ts";
import { project, type Projection, projectionPaths } from "./project.ts";
import { type OracleResult, showRet, verdictLine } from "./report.ts";

/** Limits of the sequential oracle. */
export interface SequentialOptions {
  /** Most branches alive at once (default {@link DEFAULT_MAX_BRANCHES}). */
  readonly maxBranches?: number;
}

/** Branches alive at once unless the caller says otherwise: 2^6, six undecided unknowns. */
export const DEFAULT_MAX_BRANCHES = 64;

/** What a branch assumed of an unknown step: bit 1 it took effect, bit 2 it did not. */
type Assumed = 1 | 2 | 3;
const APPLIED = 1;
const SKIPPED = 2;

/** One spec state still consistent with the trace, and what it assumed of each unknown. */
interface Branch {
  readonly state: unknown;
  /** One entry per unknown step so far, in order. */
  readonly assumed: readonly Assumed[];
}

/** Why no branch explains a step. */
interface Failure {
  /** Step number (0: the initial state). */
  readonly step: number;
  /** One line per reason. */
  readonly reasons: readonly string[];
}

/** The state the trace observes of `state`: all of it, a projection, or nothing. */
function observe(state: unknown, projection: Projection, whole: boolean): unknown {
  return whole ? state : project(state, projection);
}

/**
 * The first difference between spec and trace when the trace's value there has a type the
 * spec's state cannot have (where the spec has a map, set or list: a scalar or another kind of
 * collection; where it has a record: a collection): bad input, not a divergence. An absent
 * value or a scalar where the spec has a record or another scalar may be a real divergence
 * (optional fields, tagged unions) and is not reported here.
 */
function kindError(spec: unknown, trace: unknown, at: string): ItfError | undefined {
  const d = difference(spec, trace);
  if (!d) return undefined;
  const kind = (v: unknown) =>
    v instanceof Map
      ? "a map"
      : v instanceof Set
      ? "a set"
      : Array.isArray(v)
      ? "a list"
      : typeof v === "object" && v !== null
      ? "a record"
      : undefined;
  const want = kind(d.a);
  const scalar: Record<string, string> = {
    number: "an integer",
    string: "a string",
    boolean: "a boolean",
  };
  const got = kind(d.b) ?? scalar[typeof d.b];
  if (want === undefined || got === undefined || want === got) return undefined;
  if (want === "a record" && got !== "a map" && got !== "a set" && got !== "a list") {
    return undefined;
  }
  return new ItfError(
    `${at}${d.path.slice(1)}`,
    `expected ${want}, as the spec's state has there, got ${got}`,
  );
}

/**
 * Why the trace's step does not match the spec's step `r` (ret, events, then `observed`, the
 * part of the spec's state the trace records), or undefined when it does.
 */
function mismatch(
  r: { ret: Ret; events: readonly unknown[]; state: unknown },
  step: TraceStep,
  observed: unknown,
  proven: WeakMap<object, object>,
): string[] | undefined {
  if (!deepEqual(r.ret, step.ret)) {
    return [`ret differs: spec ${showRet(r.ret)}, trace ${showRet(step.ret)}`];
  }
  if (!deepEqual(r.events, step.events)) {
    return [
      `events differ: spec ${JSON.stringify(r.events)}, trace ${JSON.stringify(step.events)}`,
    ];
  }
  if (observed === undefined || deepEqual(observed, step.state, proven)) return undefined;
  return ["state differs:", ...describeDivergence(observed, step.state, ["spec", "trace"])];
}

/** Checks a sequential trace against the spec. */
export function checkSequential(
  trace: MachineTrace,
  options: SequentialOptions = {},
): OracleResult {
  const machine = trace.machine as Machine<unknown, Cmd>;
  const maxBranches = options.maxBranches ?? DEFAULT_MAX_BRANCHES;
  const projection = trace.projection;
  const paths = projectionPaths(projection);
  const whole = trace.meta.observed === undefined;
  const anything = whole || paths.length > 0;
  const specRets: (Ret | undefined)[] = [];
  const unknownSteps: number[] = [];
  let failure: Failure | undefined;
  let frontier: Branch[] = [{ state: machine.initial(), assumed: [] }];
  // Spec and trace states share most objects with the state before: equal pairs found once
  // are not walked again.
  const proven = new WeakMap<object, object>();

  const initial = observe(frontier[0].state, projection, whole);
  const kind0 = kindError(initial, trace.initial, "$.states[0]");
  if (kind0) throw kind0;
  const initialDiff = describeDivergence(initial, trace.initial, ["spec", "trace"]);
  if (initialDiff.length > 0) {
    failure = { step: 0, reasons: ["initial state differs from the spec's:", ...initialDiff] };
  }

  let undecided: string | undefined;
  for (let i = 0; i < trace.steps.length && !failure && !undecided; i++) {
    const step = trace.steps[i];
    const n = i + 1;
    const next: Branch[] = [];
    const reasons: string[] = [];
    let broken: string | undefined;
    /** Keeps a branch, checking the invariants of a state the step changed. */
    const admit = (state: unknown, before: unknown, assumed: readonly Assumed[]) => {
      if (state !== before && broken === undefined) broken = machine.violations(state)[0];
      next.push({ state, assumed });
    };
    if (step.unknown) unknownSteps.push(n);
    for (const b of frontier) {
      const r = machine.step(b.state, step.cmd);
      specRets[i] ??= r.ret;
      if (step.unknown) {
        for (const [state, a] of [[r.state, APPLIED], [b.state, SKIPPED]] as const) {
          if (!anything || deepEqual(observe(state, projection, whole), step.state, proven)) {
            admit(state, b.state, [...b.assumed, a]);
          }
        }
        continue;
      }
      const observed = anything ? observe(r.state, projection, whole) : undefined;
      const why = mismatch(r, step, observed, proven);
      if (!why) {
        admit(r.state, b.state, b.assumed);
        continue;
      }
      if (frontier.length === 1 && observed !== undefined) {
        const bad = kindError(observed, step.state, `$.states[${n}]`);
        if (bad) throw bad;
      }
      const label = frontier.length > 1 ? `${assumption(b, unknownSteps)}: ` : "";
      reasons.push(`${label}${why[0]}`, ...why.slice(1).map((l) => `    ${l}`));
    }
    if (next.length === 0) {
      if (step.unknown) reasons.push("state differs whether or not it took effect");
      failure = { step: n, reasons };
    } else if (broken !== undefined) {
      failure = { step: n, reasons: [`the spec's state breaks invariant ${broken}`] };
    } else {
      frontier = next.length > 1 ? merge(next) : next;
      if (frontier.length > maxBranches) {
        undecided = `more than ${maxBranches} spec states are consistent with the trace ` +
          `after step ${n}`;
      }
    }
  }

  const survived = unknownSteps.map((step, k) => ({
    step,
    assumed: frontier.reduce((acc, b) => acc | (b.assumed[k] ?? 0), 0),
  }));
  const passed = !failure && !undecided;
  return {
    passed,
    report: () => {
      const lines: string[] = [];
      if (!whole) {
        lines.push(
          paths.length > 0
            ? `observed: ${paths.join(", ")} (the spec supplies the rest)`
            : "observed: actions, returns and events only (the spec supplies the state)",
        );
      }
      if (failure?.step === 0) {
        const [first, ...rest] = failure.reasons;
        return [...lines, `✗ ${first}`, ...rest.map((l) => `    ${l}`)];
      }
      const last = failure?.step ?? specRets.length;
      for (let i = 0; i < last; i++) {
        const s = trace.steps[i];
        const spec = showRet(specRets[i]!);
        const traced = s.unknown ? "unknown" : showRet(s.ret);
        const bad = failure?.step === i + 1;
        const verdict = bad ? `<-- FIRST DIVERGENCE: ${failure!.reasons[0]}` : "ok";
        lines.push(verdictLine(bad ? "✗" : " ", i + 1, showCommand(s.cmd), spec, traced, verdict));
      }
      if (failure) lines.push(...failure.reasons.slice(1).map((l) => `      ${l}`));
      for (const u of survived) {
        const how = { 1: "had taken effect", 2: "had not taken effect", 3: "had or had not" }[
          u.assumed
        ];
        if (how) lines.push(`unknown outcome of step ${u.step}: consistent if it ${how}`);
      }
      if (undecided) lines.push(`✗ undecided: ${undecided} (raise --max-branches)`);
      else if (passed) lines.push(`all ${trace.steps.length} steps conform to the spec`);
      return lines;
    },
  };
}

/** `if step 3 took effect, step 5 did not`: what a branch assumed of the unknown steps. */
function assumption(b: Branch, unknownSteps: readonly number[]): string {
  const each = b.assumed.map((a, k) =>
    `step ${unknownSteps[k]} ${
      a === APPLIED ? "took effect" : a === SKIPPED ? "did not" : "either"
    }`
  );
  return `if ${each.join(", ")}`;
}

/** Branches with equal spec states merged: one state, either assumption where they differ. */
function merge(branches: readonly Branch[]): Branch[] {
  if (branches.length < 2) return [...branches];
  const out: Branch[] = [];
  for (const b of branches) {
    const k = out.findIndex((o) => o.state === b.state || deepEqual(o.state, b.state));
    if (k < 0) out.push(b);
    else {
      const assumed = out[k].assumed.map((a, j) => (a | b.assumed[j]) as Assumed);
      out[k] = { state: out[k].state, assumed };
    }
  }
  return out;
}
