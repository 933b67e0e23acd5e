/**
 * Running a suite as a fast-check property, with a report and, on failure, a shrunk
 * counterexample as an ITF trace. Used by the tests and by the `check` CLI.
 *
 * - sequential: `fc.commands` over every op of the machine; spec and implementation in lockstep.
 * - race: random setup plus two or three concurrent actors under `fc.scheduler()` or, with
 *   `sched: "pct"`, under a PCT plan fast-check draws (and shrinks) like the scenario.
 * - fuzz: the DEFLATE fuzzers, case by case (zip-fuzz in seeded chunks).
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
import { compressFuzzCase, runZipFuzz } from "./zip_fuzz.ts";

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
   * path; a fuzzer to the case), so a suite can be split into run ranges; a counterexample's
   * path stays absolute.
   */
  readonly from?: number;
  /**
   * Called after every execution of the property (the runs, then shrinking steps), `failed`
   * when it threw, and after every fuzz case: `check`'s progress line.
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
  /** One command, or a chain of them (a machine's macro) run in order. */
  constructor(readonly cmds: readonly Cmd[]) {}
  check(): boolean {
    return true;
  }
  async run(m: Model): Promise<void> {
    for (const cmd of this.cmds) {
      m.count();
      const r = await m.conf.step(cmd);
      m.coverage?.record(r.cmd.op, r.specRet);
      if (r.failure) throw new Error(r.failure);
    }
  }
  toString(): string {
    return this.cmds.map(showCommand).join("; ");
  }
}

/** fast-check hands back its own wrappers around our commands; this finds the spec commands. */
function unwrap(c: unknown): readonly Cmd[] {
  let x = c;
  while (!(x instanceof ConformanceCommand)) x = (x as { cmd: unknown }).cmd;
  return x.cmds;
}

/** A machine's steps: single commands, and its macros one in `1 + singles`. */
function steps(
  machine: Machine,
  singles: number,
  commands: fc.Arbitrary<Cmd> = machine.commands(),
  macros: fc.Arbitrary<readonly Cmd[]> | undefined = machine.macros?.(),
): fc.Arbitrary<readonly Cmd[]> {
  const single = commands.map((c) => [c]);
  if (!macros) return single;
  return fc.oneof({ weight: singles, arbitrary: single }, { weight: 1, arbitrary: macros });
}

/** A machine's commands for the sequential suite: macros one step in ten. */
function sequentialCommands(machine: Machine): fc.Arbitrary<ConformanceCommand> {
  return steps(machine, 9).map((cs) => new ConformanceCommand(cs));
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
    [sequentialCommands(machine)],
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
  const cmds = [...machine.prelude, ...[...details.counterexample[0]].flatMap(unwrap)];
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
  const cov = o.coverage;
  const onSetupStep = cov && ((cmd: Cmd, ret: Ret, index: number) => {
    if (index >= machine.prelude.length) cov.record(cmd.op, ret);
  });
  // The set-up and the actors draw macros one step in four: the states a race needs to start
  // from (a container set up, a device at work) and the sequences that race (a tear-down in
  // its order) take several commands.
  const setupSteps = machine.raceSetup?.() ?? steps(machine, 3);
  const actorSteps = steps(
    machine,
    3,
    machine.raceCommands?.() ?? machine.commands(),
    machine.raceMacros?.() ?? machine.macros?.(),
  );
  const arb = raceScenario(setupSteps, actorSteps, o.maxCommands ?? 10).map((s) => ({
    ...s,
    actors: machine.bindActors?.(s.actors) ?? s.actors,
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
 * zip-fuzz draws its cases in chunks of this many from per-chunk seeds ({@link zipFuzzSeed}):
 * the decompressor fuzzer's cases come from one PRNG stream, so a chunk is what can be started
 * anywhere, and between chunks the event loop turns, which is when node:zlib's native buffers
 * are freed (100000 cases in one go peaked at 4.6 GB).
 */
export const ZIP_FUZZ_CHUNK = 1000;

/** The seed of zip-fuzz chunk `k` under `seed` (chunk 0 keeps `seed`). */
export function zipFuzzSeed(seed: number, k: number): number {
  return (seed ^ Math.imul(k, 0x9e3779b1)) >>> 0;
}

/** Some fuzz cases: how many ran (up to and including a failure) and the failure. */
interface FuzzBatch {
  readonly runs: number;
  readonly failure?: { readonly message: string; readonly trace: Json };
}

/**
 * zip-fuzz cases `from` (inclusive) to at most `end`, within `from`'s chunk. A chunk entered
 * in its middle is run from its start, the cases before `from` not counted.
 */
function zipFuzzBatch(seed: number, from: number, end: number): FuzzBatch {
  const k = Math.floor(from / ZIP_FUZZ_CHUNK);
  const first = from - k * ZIP_FUZZ_CHUNK;
  const upto = Math.min(ZIP_FUZZ_CHUNK, end - k * ZIP_FUZZ_CHUNK);
  const chunkSeed = zipFuzzSeed(seed, k);
  const f = runZipFuzz(chunkSeed, upto).failures.find((f) => f.run >= first);
  if (!f) return { runs: upto - first };
  const trace = {
    seed: chunkSeed,
    run: f.run,
    checkSeed: seed,
    case: k * ZIP_FUZZ_CHUNK + f.run,
    format: f.format,
    message: f.message,
    inputHex: f.inputHex,
  };
  return { runs: f.run - first + 1, failure: { message: f.message, trace } };
}

/** zip-compress-fuzz cases `from` to at most `end`, in batches of 100 (each case stands alone). */
function compressFuzzBatch(seed: number, from: number, end: number): FuzzBatch {
  for (let run = from; run < Math.min(end, from + 100); run++) {
    const message = compressFuzzCase(seed, run);
    if (message !== undefined) {
      return { runs: run - from + 1, failure: { message, trace: { seed, run, message } } };
    }
  }
  return { runs: Math.min(end, from + 100) - from };
}

/**
 * A fuzzer as a suite: `zip-fuzz` (the decompressor) or `zip-compress-fuzz` (the compressor),
 * cases `from` to `from + runs - 1` under `seed`, stopping at the first failure or when
 * `seconds` have passed (checked between batches; quirks do not apply). A failure's "trace" is
 * the failing case itself: the seed and case number that regenerate it
 * (`runZipFuzz(seed, run + 1)`, `compressFuzzCase(seed, run)`), what went wrong and, for
 * zip-fuzz, the framing and input.
 */
async function runFuzzSuite(suite: Suite, o: SuiteOptions): Promise<SuiteReport> {
  const start = performance.now();
  const batch = suite.name === "zip-compress-fuzz" ? compressFuzzBatch : zipFuzzBatch;
  const from = o.from ?? 0;
  const deadline = o.seconds === undefined ? Infinity : start + o.seconds * 1000;
  let runs = 0;
  let failure: FuzzBatch["failure"];
  while (!failure && runs < o.runs && performance.now() < deadline) {
    const b = batch(o.seed, from + runs, from + o.runs);
    runs += b.runs;
    failure = b.failure;
    for (let i = 0; i < b.runs; i++) o.onRun?.(failure !== undefined && i === b.runs - 1);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const report = { suite: suite.name, runs, commands: runs, seed: o.seed };
  const ms = performance.now() - start;
  if (!failure) return { ...report, ms };
  return {
    ...report,
    ms,
    failure: { violation: failure.message, trace: failure.trace, length: 1 },
  };
}

/** Runs a suite. */
export function runSuite(suite: Suite, o: SuiteOptions): Promise<SuiteReport> {
  if (suite.mode === "fuzz") return runFuzzSuite(suite, o);
  return suite.mode === "sequential"
    ? runSequentialSuite(suite.machine, suite, o)
    : runRaceSuite(suite.machine, suite, o);
}
