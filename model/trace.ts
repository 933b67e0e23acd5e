/**
 * warpspec traces in ITF: writing counterexamples and reading traces back with validation.
 *
 * A trace records what an implementation did: `states[0]` is the initial state, and each later
 * state is the implementation's state after one command, with the variables
 * - `mbt::actionTaken`: the op (`"init"` for state 0);
 * - `mbt::nondetPicks`: the command's arguments;
 * - `warpspec::ret`, `warpspec::events`: what the command returned and raised;
 * - for race traces also `warpspec::actor`, `warpspec::invoked`, `warpspec::returned` (logical
 *   times) and `warpspec::schedule` (the scheduler's choices up to that response).
 *
 * `#meta` names the suite, seed and path, the quirks, the violation, and for race traces the
 * whole scenario (`setup`, `actors`, `schedule`) so that it replays exactly.
 *
 * @module
 */
import type { Command, SystemState } from "../spec/system.ts";
import { ERRNOS, type Event, type Ret } from "../spec/types.ts";
import { isQuirkName, type QuirkName } from "../impl/quirks.ts";
import { parseCommand } from "./commands.ts";
import { fromItf, ItfError, type Json, toItf } from "./itf.ts";
import type { HistoryEntry, RaceScenario } from "./race.ts";
import type { StepRecord } from "./runner.ts";

/** The `#meta` of a warpspec trace. */
export interface TraceMeta {
  /** Which suite produced it. */
  readonly suite: "sequential" | "race";
  /** Quirks the implementation ran with. */
  readonly quirks: readonly QuirkName[];
  /** Why the run failed, for a counterexample. */
  readonly violation?: string;
  /** fast-check seed of the run that found it. */
  readonly seed?: number;
  /** fast-check path of the counterexample. */
  readonly path?: string;
  /** fc.commands' replay path (sequential counterexamples). */
  readonly replayPath?: string;
  /** For race traces: the scenario and the schedule that replay it. */
  readonly race?: RaceScenario & { readonly schedule: readonly string[] };
}

/** One recorded step. */
export interface TraceStep {
  /** The command. */
  readonly cmd: Command;
  /** Recorded state after it. */
  readonly state: SystemState;
  /** Recorded return value. */
  readonly ret: Ret;
  /** Recorded events. */
  readonly events: readonly Event[];
  /** Race traces: actor, invocation and response times. */
  readonly actor?: string;
  /** Logical invocation time. */
  readonly invoked?: number;
  /** Logical response time. */
  readonly returned?: number;
}

/** A parsed trace. */
export interface Trace {
  /** Metadata. */
  readonly meta: TraceMeta;
  /** The initial state. */
  readonly initial: SystemState;
  /** Steps after the initial state. */
  readonly steps: readonly TraceStep[];
}

const VARS = ["iommu", "type1"] as const;

function stateVars(state: SystemState): Record<string, Json> {
  return Object.fromEntries(VARS.map((v) => [v, toItf(state[v])]));
}

function metaJson(meta: TraceMeta): Json {
  const out: Record<string, Json> = {
    format: "ITF",
    "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
    source: "warpspec",
    suite: meta.suite,
    quirks: [...meta.quirks],
  };
  if (meta.violation !== undefined) out.violation = meta.violation;
  if (meta.seed !== undefined) out.seed = meta.seed;
  if (meta.path !== undefined) out.path = meta.path;
  if (meta.replayPath !== undefined) out.replayPath = meta.replayPath;
  if (meta.race) out.race = toItf(meta.race);
  return out;
}

function stepJson(index: number, step: TraceStep, extra: Record<string, Json> = {}): Json {
  const { op, ...args } = step.cmd;
  return {
    "#meta": { index },
    ...stateVars(step.state),
    "mbt::actionTaken": op,
    "mbt::nondetPicks": toItf(args),
    "warpspec::ret": toItf(step.ret),
    "warpspec::events": toItf(step.events),
    ...extra,
  };
}

function initJson(initial: SystemState): Json {
  return {
    "#meta": { index: 0 },
    ...stateVars(initial),
    "mbt::actionTaken": "init",
    "mbt::nondetPicks": {},
    "warpspec::ret": toItf(null),
    "warpspec::events": [],
  };
}

/** The ITF trace of a sequential run: the implementation's side of every step. */
export function sequentialTrace(
  meta: TraceMeta,
  initial: SystemState,
  records: readonly StepRecord[],
): Json {
  const states = [initJson(initial)];
  records.forEach((r, i) => {
    const step = { cmd: r.cmd, state: r.observed, ret: r.impl.ret, events: r.impl.events };
    states.push(stepJson(i + 1, step));
  });
  return {
    "#meta": metaJson(meta),
    vars: [...VARS, "mbt::actionTaken", "mbt::nondetPicks", "warpspec::ret", "warpspec::events"],
    states,
  };
}

/** The ITF trace of a race run: setup steps are folded into the initial state of the race. */
export function raceTrace(
  meta: TraceMeta,
  start: SystemState,
  history: readonly HistoryEntry[],
  schedule: readonly string[],
): Json {
  const states = [initJson(start)];
  history.forEach((h, i) => {
    const step = { cmd: h.cmd, state: h.observed, ret: h.ret, events: h.events };
    states.push(stepJson(i + 1, step, {
      "warpspec::actor": h.actor,
      "warpspec::invoked": toItf(h.invoked),
      "warpspec::returned": toItf(h.returned),
      "warpspec::schedule": schedule.slice(0, h.returned),
    }));
  });
  return {
    "#meta": metaJson(meta),
    vars: [
      ...VARS,
      "mbt::actionTaken",
      "mbt::nondetPicks",
      "warpspec::ret",
      "warpspec::events",
      "warpspec::actor",
      "warpspec::invoked",
      "warpspec::returned",
      "warpspec::schedule",
    ],
    states,
  };
}

function record(v: unknown, path: string): Record<string, unknown> {
  if (
    typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Map || v instanceof Set
  ) {
    throw new ItfError(path, "expected a record");
  }
  return v as Record<string, unknown>;
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new ItfError(path, "expected a list");
  return v;
}

function int(v: unknown, path: string): number {
  if (typeof v !== "number") throw new ItfError(path, "expected an integer");
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== "string") throw new ItfError(path, "expected a string");
  return v;
}

function parseRet(v: unknown, path: string): Ret {
  const r = record(v, path);
  const keys = Object.keys(r);
  if (keys.length === 1 && keys[0] === "ok") return { ok: r.ok };
  if (keys.length === 1 && keys[0] === "err") {
    const e = str(r.err, `${path}.err`);
    if (!(ERRNOS as readonly string[]).includes(e)) {
      throw new ItfError(`${path}.err`, `unknown errno "${e}"`);
    }
    return { err: e as Ret extends { err: infer E } ? E : never };
  }
  throw new ItfError(path, 'expected {"ok": value} or {"err": "ERRNO"}');
}

function parseEvents(v: unknown, path: string): Event[] {
  return list(v, path).map((e, i) => {
    const r = record(e, `${path}[${i}]`);
    if (typeof r.warn !== "string" && typeof r.fault !== "string") {
      throw new ItfError(`${path}[${i}]`, 'an event needs a "warn" or "fault" string');
    }
    return r as Event;
  });
}

function parseState(s: Record<string, unknown>, path: string): SystemState {
  for (const v of VARS) if (!(v in s)) throw new ItfError(`${path}.${v}`, "missing state variable");
  return { iommu: s.iommu, type1: s.type1 } as SystemState;
}

function parseScenario(v: unknown, path: string): RaceScenario & { schedule: string[] } {
  const r = record(v, path);
  const commands = (x: unknown, p: string) =>
    list(x, p).map((c, i) => {
      const rec = record(c, `${p}[${i}]`);
      const { op, ...args } = rec;
      return parseCommand(op, args, `${p}[${i}].op`, `${p}[${i}]`);
    });
  return {
    setup: commands(r.setup, `${path}.setup`),
    actors: list(r.actors, `${path}.actors`).map((a, i) => {
      const rec = record(a, `${path}.actors[${i}]`);
      return {
        name: str(rec.name, `${path}.actors[${i}].name`),
        program: commands(rec.program, `${path}.actors[${i}].program`),
      };
    }),
    schedule: list(r.schedule, `${path}.schedule`).map((x, i) => str(x, `${path}.schedule[${i}]`)),
  };
}

function parseMeta(v: unknown): TraceMeta {
  const m = record(v, "$.#meta");
  const suite = m.suite ?? "sequential";
  if (suite !== "sequential" && suite !== "race") {
    throw new ItfError("$.#meta.suite", `unknown suite ${JSON.stringify(suite)}`);
  }
  const quirks = list(m.quirks ?? [], "$.#meta.quirks").map((q, i) => {
    const name = str(q, `$.#meta.quirks[${i}]`);
    if (!isQuirkName(name)) throw new ItfError(`$.#meta.quirks[${i}]`, `unknown quirk "${name}"`);
    return name;
  });
  const race = suite === "race" ? parseScenario(m.race, "$.#meta.race") : undefined;
  return {
    suite,
    quirks,
    violation: m.violation === undefined ? undefined : str(m.violation, "$.#meta.violation"),
    seed: m.seed === undefined ? undefined : int(m.seed, "$.#meta.seed"),
    path: m.path === undefined ? undefined : str(m.path, "$.#meta.path"),
    replayPath: m.replayPath === undefined ? undefined : str(m.replayPath, "$.#meta.replayPath"),
    race,
  };
}

/** Parses the text of a trace; every problem is an {@link ItfError} naming the JSON path. */
export function parseTrace(text: string): Trace {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ItfError("$", `malformed JSON: ${(e as Error).message}`);
  }
  const top = record(json, "$");
  const decoded = fromItf(top, "$") as Record<string, unknown>;
  const meta = parseMeta(decoded["#meta"] ?? {});
  const states = list(decoded.states, "$.states");
  if (states.length === 0) {
    throw new ItfError("$.states", "a trace needs at least the initial state");
  }
  const initial = parseState(record(states[0], "$.states[0]"), "$.states[0]");
  const steps = states.slice(1).map((raw, k): TraceStep => {
    const path = `$.states[${k + 1}]`;
    const s = record(raw, path);
    const cmd = parseCommand(
      s["mbt::actionTaken"],
      s["mbt::nondetPicks"],
      `${path}.mbt::actionTaken`,
      `${path}.mbt::nondetPicks`,
    );
    const step: TraceStep = {
      cmd,
      state: parseState(s, path),
      ret: parseRet(s["warpspec::ret"], `${path}.warpspec::ret`),
      events: parseEvents(s["warpspec::events"] ?? [], `${path}.warpspec::events`),
    };
    if (meta.suite !== "race") return step;
    return {
      ...step,
      actor: str(s["warpspec::actor"], `${path}.warpspec::actor`),
      invoked: int(s["warpspec::invoked"], `${path}.warpspec::invoked`),
      returned: int(s["warpspec::returned"], `${path}.warpspec::returned`),
    };
  });
  return { meta, initial, steps };
}
