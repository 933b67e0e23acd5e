/**
 * The checking suites as fast-check properties, each returning a report and, on failure, a
 * shrunk counterexample as an ITF trace. Used by the tests and by the `check` CLI.
 *
 * - `sequential`: `fc.commands` over every op; spec and implementation in lockstep.
 * - `race`: random setup plus two or three concurrent actors under `fc.scheduler()`.
 *
 * @module
 */
import fc from "fast-check";
import { type Command, DEFAULT_TOPOLOGY, initialState, type Topology } from "../spec/system.ts";
import type { QuirkName } from "../impl/quirks.ts";
import { fcDriver, replayDriver } from "../impl/sched.ts";
import { anyCommand, poolsFor, showCommand } from "./commands.ts";
import type { Json } from "./itf.ts";
import { type RaceResult, type RaceScenario, raceScenario, runRace } from "./race.ts";
import { Conformance, runSequential } from "./runner.ts";
import { raceTrace, sequentialTrace } from "./trace.ts";

/** The suites, by name. */
export const SUITES = ["sequential", "race"] as const;

/** A suite name. */
export type SuiteName = typeof SUITES[number];

/** How long and with what to run a suite. */
export interface SuiteOptions {
  /** fast-check seed. */
  readonly seed: number;
  /** Number of runs (upper bound when `seconds` is set). */
  readonly runs: number;
  /** Stop after this many seconds (fast-check's interruptAfterTimeLimit). */
  readonly seconds?: number;
  /** Quirks switched on in the implementation. */
  readonly quirks?: readonly QuirkName[];
  /** Machine (default topology when absent). */
  readonly topology?: Topology;
  /** Longest generated command sequence (sequential) or setup (race). */
  readonly maxCommands?: number;
  /** fast-check replay path: with `seed`, re-runs exactly one recorded counterexample. */
  readonly path?: string;
  /** fc.commands' own replay path of a sequential counterexample (with `path`). */
  readonly replayPath?: string;
}

/** What running a suite found. */
export interface SuiteReport {
  /** Suite name. */
  readonly suite: SuiteName;
  /** Property runs executed (before shrinking). */
  readonly runs: number;
  /** Commands executed over every run, shrinking included. */
  readonly commands: number;
  /** Wall time in milliseconds. */
  readonly ms: number;
  /** The seed used. */
  readonly seed: number;
  /** On failure: the violation, the shrunk counterexample as an ITF trace, and its length. */
  readonly failure?: { readonly violation: string; readonly trace: Json; readonly length: number };
}

function quirkSwitches(quirks: readonly QuirkName[] = []) {
  return Object.fromEntries(quirks.map((q) => [q, true]));
}

/** One fc.commands command: a spec command run on both sides by the model. */
class ConformanceCommand
  implements fc.AsyncCommand<{ conf: Conformance; count: () => void }, object> {
  constructor(readonly cmd: Command) {}
  check(): boolean {
    return true;
  }
  async run(m: { conf: Conformance; count: () => void }): Promise<void> {
    m.count();
    const r = await m.conf.step(this.cmd);
    if (r.failure) throw new Error(r.failure);
  }
  toString(): string {
    return showCommand(this.cmd);
  }
}

/** fast-check hands back its own wrappers around our commands; this finds the spec command. */
function unwrap(c: unknown): Command {
  let x = c;
  while (!(x instanceof ConformanceCommand)) x = (x as { cmd: unknown }).cmd;
  return x.cmd;
}

function params<T>(o: SuiteOptions): fc.Parameters<T> {
  return {
    seed: o.seed,
    path: o.path,
    endOnFailure: o.path !== undefined,
    numRuns: o.runs,
    interruptAfterTimeLimit: o.seconds === undefined ? undefined : o.seconds * 1000,
    markInterruptAsFailure: false,
  };
}

/** Runs sequential conformance. */
export async function runSequentialSuite(o: SuiteOptions): Promise<SuiteReport> {
  const topology = o.topology ?? DEFAULT_TOPOLOGY;
  const quirks = quirkSwitches(o.quirks);
  let commands = 0;
  const arb = fc.commands(
    [anyCommand(poolsFor(topology)).map((c) => new ConformanceCommand(c))],
    { maxCommands: o.maxCommands ?? 40, size: "max", replayPath: o.replayPath },
  );
  const start = performance.now();
  const prop = fc.asyncProperty(arb, async (cmds) => {
    const setup = () => ({
      model: { conf: new Conformance({ quirks, topology }), count: () => commands++ },
      real: {},
    });
    await fc.asyncModelRun(setup, cmds);
  });
  const details = await fc.check(prop, params(o));
  const base = { suite: "sequential" as const, runs: details.numRuns, commands, seed: o.seed };
  if (!details.failed || !details.counterexample) {
    return { ...base, ms: performance.now() - start };
  }
  const cmds = [...details.counterexample[0]].map(unwrap);
  const records = await runSequential(cmds, { quirks, topology });
  const violation = records.at(-1)?.failure ?? String(details.errorInstance);
  const replayPath = /replayPath="([^"]*)"/.exec(String(details.counterexample[0]))?.[1];
  const trace = sequentialTrace(
    {
      suite: "sequential",
      quirks: o.quirks ?? [],
      violation,
      seed: o.seed,
      path: details.counterexamplePath ?? undefined,
      replayPath,
    },
    initialState(topology),
    records,
  );
  return {
    ...base,
    ms: performance.now() - start,
    failure: { violation, trace, length: records.length },
  };
}

/** Runs random races. */
export async function runRaceSuite(o: SuiteOptions): Promise<SuiteReport> {
  const topology = o.topology ?? DEFAULT_TOPOLOGY;
  const quirks = quirkSwitches(o.quirks);
  let commands = 0;
  let lastFailure: { scenario: RaceScenario; result: RaceResult } | undefined;
  const arb = raceScenario(anyCommand(poolsFor(topology)), o.maxCommands ?? 10);
  const start = performance.now();
  const prop = fc.asyncProperty(arb, fc.scheduler(), async (scenario, s) => {
    const result = await runRace(scenario, fcDriver(s), { quirks, topology });
    commands += scenario.setup.length + scenario.actors.reduce((n, a) => n + a.program.length, 0);
    if (result.failure) {
      lastFailure = { scenario, result };
      throw new Error(result.failure);
    }
  });
  const details = await fc.check(prop, params(o));
  const base = { suite: "race" as const, runs: details.numRuns, commands, seed: o.seed };
  if (!details.failed || !lastFailure) return { ...base, ms: performance.now() - start };
  const { scenario, result } = lastFailure;
  const replayed = await runRace(scenario, replayDriver(result.schedule), { quirks, topology });
  const violation = replayed.failure ?? `${result.failure} (did not replay deterministically)`;
  const trace = raceTrace(
    {
      suite: "race",
      quirks: o.quirks ?? [],
      violation,
      seed: o.seed,
      path: details.counterexamplePath ?? undefined,
      race: { ...scenario, schedule: result.schedule },
    },
    result.start,
    result.history,
    result.schedule,
  );
  const length = scenario.setup.length + result.history.length;
  return { ...base, ms: performance.now() - start, failure: { violation, trace, length } };
}

/** Runs the named suite. */
export function runSuite(name: SuiteName, o: SuiteOptions): Promise<SuiteReport> {
  return name === "sequential" ? runSequentialSuite(o) : runRaceSuite(o);
}
