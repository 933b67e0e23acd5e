/**
 * Model-based testing of an external implementation: fast-check generates command sequences
 * with a machine's own generator, each run resets the implementation (one process for the
 * whole session, restarted only after it died or broke the protocol), sends the prelude and
 * the commands in one batch, and the spec judges every answer: ret, events and, when the
 * implementation reports it, the state (whose invariants must hold too). A failing sequence is
 * shrunk by running its shrinks against the same process, and written as an ITF trace.
 *
 * @module
 */
import fc from "fast-check";
import { DEFAULT_TOPOLOGY } from "../../spec/system.ts";
import type { Json } from "../itf.ts";
import { type Cmd, type Machine, showCommand } from "../machine.ts";
import { qm1024Machine, qmMachine } from "../machines/qm.ts";
import { type1Machine } from "../machines/type1.ts";
import { compareStep, type StepRecord } from "../runner.ts";
import { sequentialTrace } from "../trace.ts";
import { LineProcess } from "./process.ts";
import { applyRequest, parseApply, parseReady, ProtocolError, resetRequest } from "./protocol.ts";
import { describeDifference } from "../equal.ts";

/** A machine `drive` can run, and the configuration its reset request carries. */
export interface DriveTarget {
  /** The machine: spec, generator, prelude, trace variables. */
  readonly machine: Machine;
  /** What `reset` sends as `config`: the QM sizes, or the type1 topology. */
  readonly config: unknown;
}

/** The machines `drive` can run, by name. */
export const DRIVE_TARGETS: Readonly<Record<string, DriveTarget>> = {
  type1: { machine: type1Machine as unknown as Machine, config: { topology: DEFAULT_TOPOLOGY } },
  qm: { machine: qmMachine as unknown as Machine, config: qmMachine.initial().config },
  qm1024: { machine: qm1024Machine as unknown as Machine, config: qm1024Machine.initial().config },
};

/** How to drive. */
export interface DriveOptions {
  /** What to drive. */
  readonly target: DriveTarget;
  /** The implementation's command line. */
  readonly argv: readonly string[];
  /** fast-check seed. */
  readonly seed: number;
  /** Property runs (generated sequences). */
  readonly runs: number;
  /** Only these ops are generated (the prelude runs whatever it holds); default all. */
  readonly ops?: readonly string[];
  /** Longest generated sequence (default: the machine's). */
  readonly maxCommands?: number;
  /** How long one run may take before the implementation is killed, in milliseconds. */
  readonly timeoutMs?: number;
  /** Called once the implementation has been started, before the first run. */
  readonly onStarted?: () => void;
}

/** What a drive found. */
export interface DriveReport {
  /** Runs executed before shrinking. */
  readonly runs: number;
  /** Commands sent over every run, shrinking included (preludes too). */
  readonly commands: number;
  /** Wall time, milliseconds. */
  readonly ms: number;
  /** Whether any answer carried a state (otherwise only ret and events were judged). */
  readonly stateObserved: boolean;
  /**
   * The shrunk counterexample: why it fails, its trace, its length in steps, and whether the
   * failing answer is in the trace (false when the implementation crashed, hung or broke the
   * protocol: the trace then holds the steps answered before, and `oracle` accepts it).
   */
  readonly failure?: {
    readonly violation: string;
    readonly trace: Json;
    readonly length: number;
    readonly inTrace: boolean;
  };
  /** The trace of the longest passing run (the example's own behaviour, for the oracle). */
  readonly longest?: Json;
}

/** One run's outcome. */
interface RunResult {
  /** Every step answered and judged (the failing one last, if it was answered). */
  readonly records: StepRecord[];
  /** The initial state: as the implementation reported it, else the spec's. */
  readonly initial: unknown;
  /** Why the run fails, or undefined. */
  readonly failure?: string;
  /** The failure is a judged answer (a step or the initial state), not a broken protocol. */
  readonly judged?: boolean;
}

/** A session with one implementation process, replaced when it dies. */
class Session {
  #proc: LineProcess | undefined;
  commands = 0;
  stateObserved = false;

  constructor(
    readonly target: DriveTarget,
    readonly argv: readonly string[],
    readonly timeoutMs: number,
  ) {}

  /** Starts the process now (so that a wrong command line is found before any run). */
  start(): void {
    this.#proc ??= new LineProcess(this.argv);
  }

  /** Runs `generated` after a reset and the prelude; judges every answer. */
  async run(generated: readonly Cmd[]): Promise<RunResult> {
    const { machine, config } = this.target;
    const initial = machine.initial();
    let spec = initial;
    const cmds = [...machine.prelude, ...generated];
    const steps = cmds.map((g) => {
      const cmd = machine.resolve?.(spec, g) ?? g;
      const r = machine.step(spec, cmd);
      spec = r.state;
      return { cmd, r };
    });
    this.start();
    const proc = this.#proc!;
    const requests = [resetRequest(machine.name, config), ...steps.map((s) => applyRequest(s.cmd))];
    this.commands += steps.length;
    const ex = await proc.exchange(requests, this.timeoutMs);
    const records: StepRecord[] = [];
    let observedInitial: unknown = initial;
    const broken = async (failure: string): Promise<RunResult> => {
      await proc.kill();
      this.#proc = undefined;
      return { records, initial: observedInitial, failure };
    };
    try {
      if (ex.answers.length === 0) return await broken(`reset: ${ex.ended}`);
      const ready = parseReady(ex.answers[0]);
      if ("state" in ready) {
        this.stateObserved = true;
        observedInitial = ready.state;
        const where = describeDifference(initial, ready.state, ["spec", "impl"]);
        if (where) {
          const failure = `reset: initial state differs ${where}`;
          return { records, initial: ready.state, failure, judged: true };
        }
      }
      for (const [i, { cmd, r }] of steps.entries()) {
        const what = `step ${i + 1} ${showCommand(cmd)}`;
        const line = ex.answers[i + 1];
        if (line === undefined) return await broken(`${what}: ${ex.ended}`);
        const a = parseApply(line, what);
        if ("state" in a) this.stateObserved = true;
        const observed = "state" in a ? a.state : r.state;
        const failure = compareStep(machine, r, { ...a, state: observed });
        records.push({
          cmd,
          specState: r.state,
          specRet: r.ret,
          specEvents: r.events,
          impl: { ret: a.ret, events: a.events },
          observed,
          failure: failure && `${what}: ${failure}`,
        });
        if (failure) {
          return {
            records,
            initial: observedInitial,
            failure: `${what}: ${failure}`,
            judged: true,
          };
        }
      }
    } catch (e) {
      if (e instanceof ProtocolError) return await broken(e.message);
      throw e;
    }
    return { records, initial: observedInitial };
  }

  /** Ends the session. */
  async close(): Promise<void> {
    await this.#proc?.close();
    this.#proc = undefined;
  }
}

/** The ITF trace of one run, with the implementation and whether its state was observed. */
function runTrace(
  o: DriveOptions,
  result: RunResult,
  stateObserved: boolean,
  extra: { violation?: string; path?: string } = {},
): Json {
  const machine = o.target.machine;
  const meta = { machine: machine.name, mode: "sequential" as const, quirks: [], seed: o.seed };
  const trace = sequentialTrace(machine, { ...meta, ...extra }, result.initial, result.records);
  const t = trace as { "#meta": Record<string, Json> };
  t["#meta"].drive = { implementation: [...o.argv], stateObserved };
  return trace;
}

/** The machine's command arbitrary, restricted to `ops` when given. */
function generator(machine: Machine, ops: readonly string[] | undefined): fc.Arbitrary<Cmd> {
  const all = machine.commands();
  if (!ops) return all;
  const wanted = new Set(ops);
  return all.filter((c) => wanted.has(c.op));
}

/**
 * Drives the implementation `o.argv` with `o.runs` generated sequences. Throws a
 * {@link import("./process.ts").SpawnError} when the command cannot be started.
 */
export async function drive(o: DriveOptions): Promise<DriveReport> {
  const machine = o.target.machine;
  const session = new Session(o.target, o.argv, o.timeoutMs ?? 10_000);
  session.start();
  o.onStarted?.();
  const arb = fc.array(generator(machine, o.ops), {
    maxLength: o.maxCommands ?? machine.maxCommands ?? 40,
    size: "max",
  });
  let lastFailure: RunResult | undefined;
  let longest: RunResult | undefined;
  const start = performance.now();
  try {
    const prop = fc.asyncProperty(arb, async (cmds) => {
      const result = await session.run(cmds);
      if (result.failure) {
        lastFailure = result;
        throw new Error(result.failure);
      }
      if (!longest || result.records.length > longest.records.length) longest = result;
    });
    const details = await fc.check(prop, { seed: o.seed, numRuns: o.runs });
    const base = {
      runs: details.numRuns,
      commands: session.commands,
      ms: performance.now() - start,
      stateObserved: session.stateObserved,
      longest: longest && runTrace(o, longest, session.stateObserved),
    };
    if (!details.failed) return base;
    if (!lastFailure) throw details.errorInstance;
    const violation = lastFailure.failure!;
    const path = details.counterexamplePath ?? undefined;
    const trace = runTrace(o, lastFailure, session.stateObserved, { violation, path });
    const length = lastFailure.records.length;
    const inTrace = lastFailure.judged === true;
    return { ...base, failure: { violation, trace, length, inTrace } };
  } finally {
    await session.close();
  }
}
