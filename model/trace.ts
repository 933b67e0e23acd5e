/**
 * warpspec traces in ITF: writing counterexamples and reading traces back with validation.
 *
 * A trace records what an implementation of one machine (`#meta.machine`, e.g. "type1") did:
 * `states[0]` is the initial state, and each later state is the implementation's state after
 * one command (the machine's state fields as variables), with the variables
 * - `mbt::actionTaken`: the op (`"init"` for state 0);
 * - `mbt::nondetPicks`: the command's arguments;
 * - `warpspec::ret`, `warpspec::events`: what the command returned and raised;
 * - for race traces also `warpspec::actor`, `warpspec::invoked`, `warpspec::returned` (logical
 *   times) and `warpspec::schedule` (the scheduler's choices up to that response).
 *
 * `#meta` names the machine and mode (`sequential` or `race`), seed and path, the quirks, the
 * violation, and for race traces the whole scenario (`setup`, `actors`, `schedule`) so that it
 * replays exactly. A trace from elsewhere may record only part of the state:
 * `#meta["vars-observed"]` lists the field paths it holds (README, "Trace format"), and a trace
 * with no state variables at all records actions, returns and events only. A step whose
 * `warpspec::ret` is `{"unknown": true}` has an unknown outcome: it may or may not have taken
 * effect.
 *
 * @module
 */
import { ERRNOS, type Event, type Ret } from "../spec/types.ts";
import { isQuirkName, type QuirkName } from "../impl/quirks.ts";
import { fromItf, ItfError, type Json, toItf } from "./itf.ts";
import { parseProjection, project, type Projection, wholeState } from "./oracle/project.ts";
import type { Cmd, Machine } from "./machine.ts";
import type { HistoryEntry, RaceScenario } from "./race.ts";
import type { StepRecord } from "./runner.ts";

/** The `#meta` of a warpspec trace. */
export interface TraceMeta {
  /** The machine whose commands and state the trace holds. */
  readonly machine: string;
  /** Sequential conformance or a race. */
  readonly mode: "sequential" | "race";
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
  readonly race?: RaceScenario<Cmd> & { readonly schedule: readonly string[] };
  /**
   * The field paths of the state the trace records (`#meta["vars-observed"]`), `[]` for a trace
   * of actions, returns and events only; absent: the whole state.
   */
  readonly observed?: readonly string[];
}

/** One recorded step. */
export interface TraceStep {
  /** The command. */
  readonly cmd: Cmd;
  /** Recorded state after it: the observed part ({@link MachineTrace.projection}). */
  readonly state: unknown;
  /** Recorded return value (`{ ok: null }` when {@link TraceStep.unknown}). */
  readonly ret: Ret;
  /** Recorded events (none when {@link TraceStep.unknown}). */
  readonly events: readonly Event[];
  /**
   * True when the trace marks the outcome unknown (`"warpspec::ret": {"unknown": true}`): the
   * command may or may not have taken effect, and its ret and events were not seen.
   */
  readonly unknown?: true;
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
  readonly initial: unknown;
  /** Steps after the initial state. */
  readonly steps: readonly TraceStep[];
}

function stateVars(machine: Machine, state: unknown): Record<string, Json> {
  const rec = state as Record<string, unknown>;
  return Object.fromEntries(machine.vars.map((v) => [v, toItf(rec[v])]));
}

const STEP_VARS = ["mbt::actionTaken", "mbt::nondetPicks", "warpspec::ret", "warpspec::events"];
const RACE_VARS = [
  "warpspec::actor",
  "warpspec::invoked",
  "warpspec::returned",
  "warpspec::schedule",
];

function metaJson(meta: TraceMeta): Json {
  const out: Record<string, Json> = {
    format: "ITF",
    "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
    source: "warpspec",
    machine: meta.machine,
    mode: meta.mode,
    quirks: [...meta.quirks],
  };
  if (meta.violation !== undefined) out.violation = meta.violation;
  if (meta.seed !== undefined) out.seed = meta.seed;
  if (meta.path !== undefined) out.path = meta.path;
  if (meta.replayPath !== undefined) out.replayPath = meta.replayPath;
  if (meta.race) out.race = toItf(meta.race);
  if (meta.observed) out["vars-observed"] = [...meta.observed];
  return out;
}

function stepJson(
  machine: Machine,
  index: number,
  step: TraceStep,
  extra: Record<string, Json> = {},
): Json {
  const { op, ...args } = step.cmd;
  return {
    "#meta": { index },
    ...stateVars(machine, step.state),
    "mbt::actionTaken": op,
    "mbt::nondetPicks": toItf(args),
    "warpspec::ret": toItf(step.ret),
    "warpspec::events": toItf(step.events),
    ...extra,
  };
}

function initJson(machine: Machine, initial: unknown): Json {
  return {
    "#meta": { index: 0 },
    ...stateVars(machine, initial),
    "mbt::actionTaken": "init",
    "mbt::nondetPicks": {},
    "warpspec::ret": toItf(null),
    "warpspec::events": [],
  };
}

/** The ITF trace of a sequential run: the implementation's side of every step. */
export function sequentialTrace(
  machine: Machine,
  meta: TraceMeta,
  initial: unknown,
  records: readonly StepRecord[],
): Json {
  const states = [initJson(machine, initial)];
  records.forEach((r, i) => {
    const step = { cmd: r.cmd, state: r.observed, ret: r.impl.ret, events: r.impl.events };
    states.push(stepJson(machine, i + 1, step));
  });
  return { "#meta": metaJson(meta), vars: [...machine.vars, ...STEP_VARS], states };
}

/** The ITF trace of a race run: setup steps are folded into the initial state of the race. */
export function raceTrace(
  machine: Machine,
  meta: TraceMeta,
  start: unknown,
  history: readonly HistoryEntry[],
  schedule: readonly string[],
): Json {
  const states = [initJson(machine, start)];
  history.forEach((h, i) => {
    const step = { cmd: h.cmd, state: h.observed, ret: h.ret, events: h.events };
    states.push(stepJson(machine, i + 1, step, {
      "warpspec::actor": h.actor,
      "warpspec::invoked": toItf(h.invoked),
      "warpspec::returned": toItf(h.returned),
      "warpspec::schedule": schedule.slice(0, h.returned),
    }));
  });
  return {
    "#meta": metaJson(meta),
    vars: [...machine.vars, ...STEP_VARS, ...RACE_VARS],
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

/** Whether a decoded `warpspec::ret` is the unknown-outcome marker `{"unknown": true}`. */
function isUnknownRet(v: unknown, path: string): boolean {
  if (typeof v !== "object" || v === null || !("unknown" in v)) return false;
  const r = v as Record<string, unknown>;
  if (r.unknown !== true || Object.keys(r).length !== 1) {
    throw new ItfError(path, 'an unknown outcome is exactly {"unknown": true}');
  }
  return true;
}

/** Checks a state's `#meta` (a record; its `index`, if any, is the state's position). */
function checkStateMeta(s: Record<string, unknown>, index: number, path: string): void {
  if (s["#meta"] === undefined) return;
  const m = record(s["#meta"], `${path}.#meta`);
  if (m.index !== undefined && m.index !== index) {
    const got = typeof m.index === "number" ? m.index : JSON.stringify(m.index);
    throw new ItfError(
      `${path}.#meta.index`,
      `expected ${index} (the state's position), got ${got}`,
    );
  }
}

/**
 * What the trace records of the state: `#meta["vars-observed"]` when given; otherwise nothing
 * when neither `vars` nor state 0 names a state variable (actions, returns and events only),
 * else the whole state.
 */
function observation(
  machine: Machine,
  meta: Record<string, unknown>,
  vars: readonly string[] | undefined,
  first: Record<string, unknown>,
): { paths?: string[]; projection: Projection } {
  const declared = meta["vars-observed"];
  if (declared !== undefined) {
    const projection = parseProjection(machine, declared, '$.#meta["vars-observed"]');
    return { paths: declared as string[], projection };
  }
  const named = (v: string) => vars?.includes(v) || Object.hasOwn(first, v);
  if (!machine.vars.some(named)) return { paths: [], projection: {} };
  return { projection: wholeState(machine) };
}

/** Checks the trace's `vars`: a list of variables this machine's traces may have. */
function parseVars(machine: Machine, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  const known = [...machine.vars, ...STEP_VARS, ...RACE_VARS];
  return list(v, "$.vars").map((x, i) => {
    const name = str(x, `$.vars[${i}]`);
    if (!known.includes(name)) {
      throw new ItfError(`$.vars[${i}]`, `unknown variable "${name}" (known: ${known.join(", ")})`);
    }
    return name;
  });
}

function parseCommands(machine: Machine, x: unknown, path: string): Cmd[] {
  return list(x, path).map((c, i) => {
    const { op, ...args } = record(c, `${path}[${i}]`);
    return machine.parseCommand(op, args, `${path}[${i}].op`, `${path}[${i}]`);
  });
}

function parseScenario(
  machine: Machine,
  v: unknown,
  path: string,
): RaceScenario<Cmd> & { schedule: string[] } {
  const r = record(v, path);
  return {
    setup: parseCommands(machine, r.setup, `${path}.setup`),
    actors: list(r.actors, `${path}.actors`).map((a, i) => {
      const rec = record(a, `${path}.actors[${i}]`);
      return {
        name: str(rec.name, `${path}.actors[${i}].name`),
        program: parseCommands(machine, rec.program, `${path}.actors[${i}].program`),
      };
    }),
    schedule: list(r.schedule, `${path}.schedule`).map((x, i) => str(x, `${path}.schedule[${i}]`)),
  };
}

function parseMeta(
  v: unknown,
  machines: (name: string) => Machine | undefined,
): [TraceMeta, Machine, Record<string, unknown>] {
  const m = record(v, "$.#meta");
  if (m.format !== undefined && m.format !== "ITF") {
    throw new ItfError("$.#meta.format", `expected "ITF", got ${JSON.stringify(m.format)}`);
  }
  const name = str(m.machine, "$.#meta.machine");
  const machine = machines(name);
  if (!machine) throw new ItfError("$.#meta.machine", `unknown machine "${name}"`);
  const mode = m.mode ?? "sequential";
  if (mode !== "sequential" && mode !== "race") {
    throw new ItfError("$.#meta.mode", `unknown mode ${JSON.stringify(mode)}`);
  }
  const quirks = list(m.quirks ?? [], "$.#meta.quirks").map((q, i) => {
    const name = str(q, `$.#meta.quirks[${i}]`);
    if (!isQuirkName(name)) throw new ItfError(`$.#meta.quirks[${i}]`, `unknown quirk "${name}"`);
    return name;
  });
  const race = mode === "race" ? parseScenario(machine, m.race, "$.#meta.race") : undefined;
  const meta: TraceMeta = {
    machine: name,
    mode,
    quirks,
    violation: m.violation === undefined ? undefined : str(m.violation, "$.#meta.violation"),
    seed: m.seed === undefined ? undefined : int(m.seed, "$.#meta.seed"),
    path: m.path === undefined ? undefined : str(m.path, "$.#meta.path"),
    replayPath: m.replayPath === undefined ? undefined : str(m.replayPath, "$.#meta.replayPath"),
    race,
  };
  return [meta, machine, m];
}

/** A parsed trace and the machine it belongs to. */
export interface MachineTrace extends Trace {
  /** The machine `#meta.machine` names. */
  readonly machine: Machine;
  /** The part of the state each recorded state holds (from {@link TraceMeta.observed}). */
  readonly projection: Projection;
}

/**
 * Parses the text of a trace, finding its machine with `machines`; every problem is an
 * {@link ItfError} naming the JSON path.
 */
export function parseTrace(
  text: string,
  machines: (name: string) => Machine | undefined,
): MachineTrace {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ItfError("$", `malformed JSON: ${(e as Error).message}`);
  }
  return traceFromJson(json, machines);
}

/**
 * {@link parseTrace} of a JSON document already parsed. Each state is decoded sharing the
 * objects of the state before wherever the two are equal.
 */
export function traceFromJson(
  json: unknown,
  machines: (name: string) => Machine | undefined,
): MachineTrace {
  const top = record(json, "$");
  const options = { bigints: false };
  const decoded = {
    "#meta": fromItf(top["#meta"] ?? {}, "$.#meta", options),
    vars: top.vars === undefined ? undefined : fromItf(top.vars, "$.vars", options),
  };
  let previous: { json: unknown; value: unknown } | undefined;
  const states = list(top.states, "$.states").map((raw, k) => {
    const value = fromItf(raw, `$.states[${k}]`, { ...options, previous });
    previous = { json: raw, value };
    return value;
  });
  const [parsed, machine, rawMeta] = parseMeta(decoded["#meta"] ?? {}, machines);
  const vars = parseVars(machine, decoded.vars);
  if (states.length === 0) {
    throw new ItfError("$.states", "a trace needs at least the initial state");
  }
  const first = record(states[0], "$.states[0]");
  const { paths, projection } = observation(machine, rawMeta, vars, first);
  const meta: TraceMeta = paths ? { ...parsed, observed: paths } : parsed;
  checkStateMeta(first, 0, "$.states[0]");
  const initial = project(first, projection, "$.states[0]");
  const steps = states.slice(1).map((raw, k): TraceStep => {
    const path = `$.states[${k + 1}]`;
    const s = record(raw, path);
    checkStateMeta(s, k + 1, path);
    const cmd = machine.parseCommand(
      s["mbt::actionTaken"],
      s["mbt::nondetPicks"],
      `${path}.mbt::actionTaken`,
      `${path}.mbt::nondetPicks`,
    );
    const retPath = `${path}.warpspec::ret`;
    const unknown = isUnknownRet(s["warpspec::ret"], retPath);
    const state = project(s, projection, path);
    const step: TraceStep = unknown
      ? { cmd, state, ret: { ok: null }, events: [], unknown: true }
      : {
        cmd,
        state,
        ret: parseRet(s["warpspec::ret"], retPath),
        events: parseEvents(s["warpspec::events"] ?? [], `${path}.warpspec::events`),
      };
    if (meta.mode !== "race") return step;
    return {
      ...step,
      actor: str(s["warpspec::actor"], `${path}.warpspec::actor`),
      invoked: int(s["warpspec::invoked"], `${path}.warpspec::invoked`),
      returned: int(s["warpspec::returned"], `${path}.warpspec::returned`),
    };
  });
  return { meta, initial, steps, machine, projection };
}
