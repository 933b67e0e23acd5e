/**
 * Every checkable machine, and the suites: `<machine>` (sequential conformance) and
 * `<machine>-race` (random races) for each machine, plus `zip-fuzz` (the decompressor fed
 * mutated and random streams, compared with node:zlib) and `zip-compress-fuzz` (the compressor
 * at every level, framing, flush point and output budget, checked with node:zlib).
 *
 * @module
 */
import { type QuirkName, QUIRKS } from "../impl/quirks.ts";
import type { Machine } from "./machine.ts";
import { ioasidMachine } from "./machines/ioasid.ts";
import { qm1024Machine, qmMachine, qmStallMachine } from "./machines/qm.ts";
import { stackMachine } from "./machines/stack.ts";
import { sdmdevMachine } from "./machines/sdmdev.ts";
import { type1Machine } from "./machines/type1.ts";
import { uacceMachine } from "./machines/uacce.ts";
import { wdzipMachine } from "./machines/wdzip.ts";
import { zipcMachine } from "./machines/zipc.ts";
import { idxdMachine } from "./machines/idxd.ts";
import { wdMachine, wdUacceMachine } from "./machines/wd.ts";

/** The machines, in the order `check` runs them. */
export const MACHINES: readonly Machine[] = [
  type1Machine,
  qmMachine,
  qm1024Machine,
  qmStallMachine,
  sdmdevMachine,
  zipcMachine,
  wdzipMachine,
  ioasidMachine,
  stackMachine,
  idxdMachine,
  uacceMachine,
  wdMachine,
  wdUacceMachine,
] as unknown as Machine[];

/** The machine called `name`, if any. */
export function machineNamed(name: string): Machine | undefined {
  return MACHINES.find((m) => m.name === name);
}

/** A suite: one machine checked sequentially or in races, or a fuzzer. */
export type Suite =
  | {
    /** `<machine>` or `<machine>-race`. */
    readonly name: string;
    /** The machine. */
    readonly machine: Machine;
    /** How it is checked. */
    readonly mode: "sequential" | "race";
    /** Runs `check` does without `--runs`. */
    readonly defaultRuns: number;
  }
  | {
    /** `zip-fuzz` or `zip-compress-fuzz`. */
    readonly name: string;
    /** No machine. */
    readonly machine?: undefined;
    /** A fuzzer. */
    readonly mode: "fuzz";
    /** Cases `check` runs without `--runs`. */
    readonly defaultRuns: number;
  };

/** Every suite, in the order `check` runs them. */
export const SUITES: readonly Suite[] = [
  ...MACHINES.flatMap((machine) => {
    const defaultRuns = machine.runs ?? 10_000;
    const sequential = { name: machine.name, machine, mode: "sequential" as const, defaultRuns };
    const race = { name: `${machine.name}-race`, machine, mode: "race" as const, defaultRuns };
    return machine.races === false ? [sequential] : [sequential, race];
  }),
  { name: "zip-fuzz", mode: "fuzz", defaultRuns: 100_000 },
  { name: "zip-compress-fuzz", mode: "fuzz", defaultRuns: 20_000 },
];

/** The suite called `name`, if any. */
export function suiteNamed(name: string): Suite | undefined {
  return SUITES.find((s) => s.name === name);
}

/** The suite the catalogue says finds `quirk`: its machine, in the catalogue's mode. */
export function quirkSuite(quirk: QuirkName): Suite {
  const machine = MACHINES.find((m) => m.quirks.includes(quirk));
  if (!machine) throw new Error(`quirk ${quirk} belongs to no machine`);
  const mode = QUIRKS[quirk].suite;
  return SUITES.find((s) => s.machine === machine && s.mode === mode)!;
}
