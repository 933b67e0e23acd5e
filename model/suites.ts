/**
 * Running a suite as a fast-check property, with a report and, on failure, a shrunk
 * counterexample as an ITF trace. Used by the tests and by the `check` CLI.
 *
 * - sequential: `fc.commands` over every op of the machine; spec and implementation in lockstep.
 * - race: random setup plus two or three concurrent actors under `fc.scheduler()` or, with
 *   `sched: "pct"`, under a PCT plan fast-check draws (and shrinks) like the scenario.
 *
 * @module
 */
import fc from "fast-check";
import type { QuirkName } from "../impl/quirks.ts";
import type { Ret } from "../spec/types.ts";
import { type Driver, fcDriver, pctDriver, type PctPlan, replayDriver } from "../impl/sched.ts";
import type { Coverage } from "./coverage.ts";
import type { Json } from "./itf.ts";
import { type Cmd, type Machine, showCommand } from "./machine.ts";
import type { Suite } from "./machines.ts";
import { pctPlan, type RaceResult, type RaceScenario, raceScenario, runRace } from "./race.ts";
import { Conformance, runSequential } from "./runner.ts";
import { raceTrace, sequentialTrace } from "./trace.ts";
import { runCompressFuzz, runZipFuzz } from "./zip_fuzz.ts";

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
  /** Longest generated command sequence (sequential) or setup (race). */
  readonly maxCommands?: number;
  /** fast-check replay path: with `seed`, re-runs exactly one recorded counterexample. */
  readonly path?: string;
  /** fc.commands' own replay path of a sequential counterexample (with `path`). */
  readonly replayPath?: string;
  /** Who schedules races: fast-check's `fc.scheduler()` (`random`, the default) or PCT. */
  readonly sched?: "random" | "pct";
  /** PCT's bug depth d: d - 1 priority change points per run (default {@link PCT_DEPTH}). */
  readonly pctDepth?: number;
  /** When given, each generated command's spec result is tallied here (`check --coverage`). */
  readonly coverage?: Coverage;
  /**
   * Index of the first run (default 0): runs `from` to `from + runs - 1` of the seed's run
   * sequence, exactly those an unsplit check would do there (fast-check skips to a one-number
   * path), so a suite can be split into run ranges; a counterexample's path stays absolute.
   */
  readonly from?: number;
  /**
   * Called after every execution of the property (the runs, then shrinking steps), `failed`
   * when it threw: `check`'s progress line. Fuzz suites do not call it.
   */
  readonly onRun?: (failed: boolean) => void;
}

/** Default PCT depth. */
export const PCT_DEPTH = 2;

/**
 * PCT's k: change points fall among the first this many scheduling decisions of a race. Race
 * schedules measured over 300 runs per suite are 2 to 22 decisions long, 90th percentile
 * 6 (sdmdev) to 13 (stack).
 */
const PCT_STEPS = 12;

/** What running a suite found. */
export interface SuiteReport {
  /** Suite name. */
  readonly suite: string;
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

interface Model {
  readonly conf: Conformance<unknown, Cmd>;
  readonly count: () => void;
  readonly coverage?: Coverage;
}

/** One fc.commands command: a spec command run on both sides by the model. */
class ConformanceCommand implements fc.AsyncCommand<Model, object> {
  constructor(readonly cmd: Cmd) {}
  check(): boolean {
    return true;
  }
  async run(m: Model): Promise<void> {
    m.count();
    const r = await m.conf.step(this.cmd);
    m.coverage?.record(r.cmd.op, r.specRet);
    if (r.failure) throw new Error(r.failure);
  }
  toString(): string {
    return showCommand(this.cmd);
  }
}

/** fast-check hands back its own wrappers around our commands; this finds the spec command. */
function unwrap(c: unknown): Cmd {
  let x = c;
  while (!(x instanceof ConformanceCommand)) x = (x as { cmd: unknown }).cmd;
  return x.cmd;
}

function params<T>(o: SuiteOptions): fc.Parameters<T> {
  return {
    seed: o.seed,
    path: o.path ?? (o.from ? String(o.from) : undefined),
    endOnFailure: o.path !== undefined,
    numRuns: o.runs,
    interruptAfterTimeLimit: o.seconds === undefined ? undefined : o.seconds * 1000,
    markInterruptAsFailure: false,
  };
}

/** The property `body`, telling `o.onRun` about each execution. */
function reported<A extends unknown[]>(
  o: SuiteOptions,
  body: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  const onRun = o.onRun;
  if (!onRun) return body;
  return async (...args) => {
    try {
      await body(...args);
    } catch (e) {
      onRun(true);
      throw e;
    }
    onRun(false);
  };
}

function meta(
  machine: Machine,
  mode: "sequential" | "race",
  o: SuiteOptions,
  violation: string,
  path: string | null | undefined,
) {
  return {
    machine: machine.name,
    mode,
    quirks: o.quirks ?? [],
    violation,
    seed: o.seed,
    path: path ?? undefined,
  };
}

async function runSequentialSuite(
  machine: Machine,
  suite: Suite,
  o: SuiteOptions,
): Promise<SuiteReport> {
  const quirks = quirkSwitches(o.quirks);
  let commands = 0;
  const arb = fc.commands(
    [machine.commands().map((c) => new ConformanceCommand(c))],
    {
      maxCommands: o.maxCommands ?? machine.maxCommands ?? 40,
      size: "max",
      replayPath: o.replayPath,
    },
  );
  const start = performance.now();
  const prop = fc.asyncProperty(
    arb,
    reported(o, async (cmds) => {
      const conf = new Conformance(machine, quirks);
      for (const cmd of machine.prelude) {
        const r = await conf.step(cmd);
        if (r.failure) throw new Error(`prelude: ${r.failure}`);
      }
      await fc.asyncModelRun(
        () => ({ model: { conf, count: () => commands++, coverage: o.coverage }, real: {} }),
        cmds,
      );
    }),
  );
  const details = await fc.check(prop, params(o));
  const base = { suite: suite.name, runs: details.numRuns, commands, seed: o.seed };
  if (!details.failed || !details.counterexample) {
    return { ...base, ms: performance.now() - start };
  }
  const cmds = [...machine.prelude, ...[...details.counterexample[0]].map(unwrap)];
  const records = await runSequential(machine, cmds, quirks);
  const violation = records.at(-1)?.failure ?? String(details.errorInstance);
  const replayPath = /replayPath="([^"]*)"/.exec(String(details.counterexample[0]))?.[1];
  const trace = sequentialTrace(
    machine,
    { ...meta(machine, "sequential", o, violation, details.counterexamplePath), replayPath },
    machine.initial(),
    records,
  );
  return {
    ...base,
    ms: performance.now() - start,
    failure: { violation, trace, length: records.length },
  };
}

async function runRaceSuite(machine: Machine, suite: Suite, o: SuiteOptions): Promise<SuiteReport> {
  const quirks = quirkSwitches(o.quirks);
  let commands = 0;
  let lastFailure: { scenario: RaceScenario; result: RaceResult } | undefined;
  const actorCommands = machine.raceCommands?.() ?? machine.commands();
  const cov = o.coverage;
  const onSetupStep = cov && ((cmd: Cmd, ret: Ret, index: number) => {
    if (index >= machine.prelude.length) cov.record(cmd.op, ret);
  });
  const arb = raceScenario(machine.commands(), actorCommands, o.maxCommands ?? 10).map((s) => ({
    ...s,
    setup: [...machine.prelude, ...s.setup],
  }));
  const schedules: fc.Arbitrary<fc.Scheduler | PctPlan> = o.sched === "pct"
    ? pctPlan(o.pctDepth ?? PCT_DEPTH, PCT_STEPS)
    : fc.scheduler();
  const driver = (s: fc.Scheduler | PctPlan): Driver =>
    "priorities" in s ? pctDriver(s) : fcDriver(s);
  const start = performance.now();
  const prop = fc.asyncProperty(
    arb,
    schedules,
    reported(o, async (scenario, s) => {
      const result = await runRace(machine, scenario, driver(s), { quirks, onSetupStep });
      // A linearization's rets are the spec's: linearize accepts an order only when they match.
      if (cov && result.linearization) {
        for (const h of result.linearization) cov.record(h.cmd.op, h.ret);
      }
      commands += scenario.setup.length + scenario.actors.reduce((n, a) => n + a.program.length, 0);
      if (result.failure) {
        lastFailure = { scenario, result };
        throw new Error(result.failure);
      }
    }),
  );
  const details = await fc.check(prop, params(o));
  const base = { suite: suite.name, runs: details.numRuns, commands, seed: o.seed };
  if (!details.failed || !lastFailure) return { ...base, ms: performance.now() - start };
  const { scenario, result } = lastFailure;
  const replayed = await runRace(machine, scenario, replayDriver(result.schedule), { quirks });
  const violation = replayed.failure ?? `${result.failure} (did not replay deterministically)`;
  const trace = raceTrace(
    machine,
    {
      ...meta(machine, "race", o, violation, details.counterexamplePath),
      race: { ...scenario, schedule: result.schedule },
    },
    result.start,
    result.history,
    result.schedule,
  );
  const length = scenario.setup.length + result.history.length;
  return {
    ...base,
    ms: performance.now() - start,
    failure: { violation, trace, length },
  };
}

/**
 * A fuzzer as a suite: `zip-fuzz` (the decompressor) or `zip-compress-fuzz` (the compressor),
 * `runs` cases from `seed` (quirks and `seconds` do not apply). A failure's "trace" is the
 * failing case itself: seed, case number (which regenerates it), framing, input.
 */
function runFuzzSuite(suite: Suite, o: SuiteOptions): Promise<SuiteReport> {
  const start = performance.now();
  const r = suite.name === "zip-compress-fuzz"
    ? runCompressFuzz(o.seed, o.runs)
    : runZipFuzz(o.seed, o.runs);
  const f = r.failures[0];
  const base = { suite: suite.name, runs: r.runs, commands: r.runs, seed: o.seed };
  const ms = performance.now() - start;
  if (!f) return Promise.resolve({ ...base, ms });
  const trace = {
    seed: o.seed,
    run: f.run,
    format: f.format,
    message: f.message,
    inputHex: f.inputHex,
  };
  return Promise.resolve({ ...base, ms, failure: { violation: f.message, trace, length: 1 } });
}

/** Runs a suite. */
export function runSuite(suite: Suite, o: SuiteOptions): Promise<SuiteReport> {
  if (suite.mode === "fuzz") return runFuzzSuite(suite, o);
  return suite.mode === "sequential"
    ? runSequentialSuite(suite.machine, suite, o)
    : runRaceSuite(suite.machine, suite, o);
}
