/**
 * Replaying traces against a machine's spec and implementation, step by step, for people:
 * each step's op, arguments, spec and implementation return values and the verdict, with the
 * first divergence marked; and what was run, for the HTML view (model/view/). The oracle,
 * which judges a recorded trace against the spec alone, is model/oracle/.
 *
 * @module
 */
import type { Ret } from "../spec/types.ts";
import type { QuirkName, Quirks } from "../impl/quirks.ts";
import { replayDriver, ScheduleDivergence } from "../impl/sched.ts";
import { type Cmd, type Machine, showCommand } from "./machine.ts";
import { type HistoryEntry, type RaceScenario, runRace } from "./race.ts";
import { runSequential, type StepRecord } from "./runner.ts";
import type { MachineTrace } from "./trace.ts";

/** What a sequential replay saw: every step on both sides, up to the first divergence. */
export interface SequentialRun {
  /** Sequential. */
  readonly mode: "sequential";
  /** The steps, the last one diverging when the run failed. */
  readonly records: readonly StepRecord[];
}

/** What a race replay saw: the setup, the concurrent history and how it ended. */
export interface RaceRun {
  /** A race. */
  readonly mode: "race";
  /** The setup commands (resolved) and the spec's return values. */
  readonly setup: readonly { readonly cmd: Cmd; readonly ret: Ret }[];
  /** The spec state after the setup. */
  readonly start: unknown;
  /** Completed operations in response order. */
  readonly history: readonly HistoryEntry[];
  /** The observed state at the end. */
  readonly end: unknown;
  /** The scheduling decisions (`task:label`), when the run was scheduled. */
  readonly schedule: readonly string[];
  /** Why the run fails, or undefined. */
  readonly failure?: string;
  /**
   * For a failure seen while the actors ran (an invariant at a scheduling point, an exception):
   * the index in `schedule` of the step after which it was seen; -1 for one in the setup.
   */
  readonly failedAt?: number;
}

/** Result of a replay: printable lines and whether everything conformed. */
export interface ReplayResult {
  /** Report lines. */
  readonly lines: readonly string[];
  /** True when no step diverged. */
  readonly passed: boolean;
  /** What was run, for views (absent when nothing could be run). */
  readonly run?: SequentialRun | RaceRun;
}

/** The switches that turn on `quirks` (and no other). */
export function quirkSwitches(quirks: readonly QuirkName[]): Quirks {
  return Object.fromEntries(quirks.map((q) => [q, true]));
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
  const records = await runSequential(machine, commands, quirks);
  const lines = records.map((r, i) =>
    line(r.failure ? "✗" : " ", i + 1, r.cmd, showRet(r.specRet), showRet(r.impl.ret), verdict(r))
  );
  const run = { mode: "sequential" as const, records };
  const passed = records.at(-1)?.failure === undefined;
  if (passed) lines.push(`all ${commands.length} steps conform`);
  return { lines, passed, run };
}

function verdict(r: StepRecord): string {
  return r.failure ? `<-- FIRST DIVERGENCE: ${r.failure}` : "ok";
}

/** Replays a race trace's scenario under its recorded schedule (strictly, or leniently). */
export async function replayRace(
  trace: MachineTrace,
  quirks: Quirks,
  strict: boolean,
): Promise<ReplayResult> {
  const race = trace.meta.race!;
  const setup: { cmd: Cmd; ret: Ret }[] = [];
  const onSetupStep = (cmd: Cmd, ret: Ret) => setup.push({ cmd, ret });
  let result;
  try {
    result = await runRace(trace.machine, race, replayDriver(race.schedule, strict), {
      quirks,
      onSetupStep,
    });
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
  const failedAt = result.failure === undefined || !DURING_RUN.test(result.failure)
    ? undefined
    : await failureStep(trace.machine, race, strict, quirks, result.failure);
  const { schedule, history, start, end, failure } = result;
  const run = { mode: "race" as const, setup, start, history, end, schedule, failure, failedAt };
  return { lines, passed: !result.failure, run };
}

/** Failures {@link runRace} notices while the tasks run, at a scheduling step. */
const DURING_RUN = /^(invariant .* \(when .* ran on\)|exception in the implementation)/;

/**
 * The scheduling step after which a race's `failure` was first seen: the fewest steps with
 * which the same run fails the same way, less one (-1: the setup already fails so).
 */
async function failureStep(
  machine: Machine,
  race: RaceScenario & { readonly schedule: readonly string[] },
  strict: boolean,
  quirks: Quirks,
  failure: string,
): Promise<number | undefined> {
  for (let steps = 0; steps <= race.schedule.length; steps++) {
    const driver = replayDriver(race.schedule, strict);
    const r = await runRace(machine, race, driver, { quirks, maxSteps: steps });
    if (r.failure === failure) return steps - 1;
  }
  return undefined;
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
