/**
 * A checkable component: the spec side (initial state, step, invariants), the implementation
 * side (a fresh implementation exposing exec + observe), how commands are validated and
 * generated, and which state variables a trace records. The runner, the race checker, traces,
 * suites, replay and the oracle are written once against this interface.
 *
 * @module
 */
import type fc from "fast-check";
import type { CommandSchema, ResultTable, StepResult } from "../spec/types.ts";
import type { Outcome } from "../impl/kernel.ts";
import type { QuirkName, Quirks } from "../impl/quirks.ts";
import type { Sched } from "../impl/sched.ts";

/** A command of any component: `op` is `<component>.<verb>`. */
export interface Cmd {
  /** The op name. */
  readonly op: string;
}

/** What executing one command on an implementation produced (ret and events). */
export type { Outcome };

/** An implementation under test. */
export interface Implementation<S, C extends Cmd> {
  /** Executes one command. */
  exec(cmd: C): Promise<Outcome>;
  /** The abstraction function: the implementation's state in the spec's shape. */
  observe(): S;
}

/** A checkable component. Methods are bivariant so specific machines fit the generic code. */
export interface Machine<S = unknown, C extends Cmd = Cmd> {
  /** Machine name: names its suites (`<name>`, `<name>-race`) and appears in traces. */
  readonly name: string;
  /** Every op and the kinds of its arguments (what traces are validated against). */
  readonly schema: CommandSchema<string>;
  /** Every op and the shape of its success value (what a trace's returns are validated against). */
  readonly results: ResultTable<string>;
  /** The state's top-level fields, written as ITF variables. */
  readonly vars: readonly string[];
  /** Commands run before the generated ones in every sequence and race setup. */
  readonly prelude: readonly C[];
  /** The quirks of the catalogue that live in this machine's implementation. */
  readonly quirks: readonly QuirkName[];
  /** Longest generated sequence (default 40): protocols with long set-ups need more. */
  readonly maxCommands?: number;
  /** Runs `check` does per suite of this machine without `--runs` (default 10000). */
  readonly runs?: number;
  /** False for a machine whose commands never run concurrently (no `<name>-race` suite). */
  readonly races?: boolean;
  /** The spec's initial state. */
  initial(): S;
  /** The spec's step. */
  step(state: S, cmd: C): StepResult<S>;
  /** Violated invariants (`name: message`), only the `always` ones when asked. */
  violations(state: S, scope?: "always"): string[];
  /** Validates an op and its decoded arguments; errors are ItfErrors naming the JSON path. */
  parseCommand(op: unknown, args: unknown, opPath: string, argsPath: string): C;
  /** An arbitrary over every command, weighted towards the interesting ones. */
  commands(): fc.Arbitrary<C>;
  /**
   * Chains of commands the sequential suite draws as one unit, one draw in ten: legal
   * sequences (a full teardown) that single draws almost never line up. Default: none.
   */
  macros?(): fc.Arbitrary<readonly C[]>;
  /** The commands race actors run (default: {@link Machine.commands}). */
  raceCommands?(): fc.Arbitrary<C>;
  /** The macros race actors run, one step in four (default: {@link Machine.macros}). */
  raceMacros?(): fc.Arbitrary<readonly C[]>;
  /**
   * The steps a race's set-up draws (default: {@link Machine.commands} and its macros, a macro
   * one step in four).
   */
  raceSetup?(): fc.Arbitrary<readonly C[]>;
  /**
   * Adjusts the generated actors of a race (e.g. binds each to one process, as a thread of it).
   * Default: as generated.
   */
  bindActors?(
    actors: readonly { readonly name: string; readonly program: readonly C[] }[],
  ): readonly { readonly name: string; readonly program: readonly C[] }[];
  /**
   * Fills placeholders a generated command may carry (e.g. "the process holding the device")
   * from the current state; resolved commands pass through unchanged. Default: none.
   */
  resolve?(state: S, cmd: C): C;
  /** A fresh implementation with `quirks`, scheduled by `sched` (sequential when absent). */
  implementation(quirks: Quirks, sched?: Sched): Implementation<S, C>;
}

/** Human-readable form of a command: `type1.map(container=1, iova=4096, ...)`. */
export function showCommand(cmd: Cmd): string {
  const { op, ...args } = cmd;
  return `${op}(${Object.entries(args).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")})`;
}

/**
 * Executes `cmd` on `impl`, turning an exception thrown inside the implementation (a bug in
 * the simulated system, like a kernel oops) into an outcome: `ret` EFAULT and one
 * `{ fault: "exception" }` event carrying the message and the innermost stack frame. The
 * checker then reports it like any other finding, with a counterexample, instead of dying.
 */
export async function execGuarded<C extends Cmd>(
  impl: Implementation<unknown, C>,
  cmd: C,
): Promise<Outcome & { readonly exception?: string }> {
  try {
    return await impl.exec(cmd);
  } catch (e) {
    const exception = describeException(e);
    return {
      ret: { err: "EFAULT" },
      events: [{ fault: "exception", message: exception }],
      exception,
    };
  }
}

/** `Name: message (at file:line)` of a thrown value, the frame without the absolute path. */
function describeException(e: unknown): string {
  if (!(e instanceof Error)) return `thrown: ${String(e)}`;
  const frame = e.stack?.split("\n").find((l) => /^\s+at .*\.ts:\d+/.test(l));
  const where = frame?.match(/(?:file:\/\/)?[^\s(]*?((?:impl|model|spec)\/[^\s)]*\.ts:\d+)/)?.[1];
  return `${e.name}: ${e.message}${where ? ` (at ${where})` : ""}`;
}
