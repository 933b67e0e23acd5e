/**
 * What every CLI shares: flag parsing, reading trace files, and the rule that a user mistake
 * is one line on stderr and exit code 2 (never a stack trace).
 *
 * @module
 */
import { isQuirkName, QUIRK_NAMES, type QuirkName } from "../../impl/quirks.ts";
import { ItfError } from "../itf.ts";
import { machineNamed, type Suite, SUITES } from "../machines.ts";
import { type MachineTrace, parseTrace } from "../trace.ts";

/** A mistake in how a CLI was called or in the input it was given: exit code 2. */
export class UsageError extends Error {}

/** The kinds of flag value. */
export type FlagKind = "int" | "string" | "list" | "bool";

/** Parsed flags and positional arguments. */
export interface ParsedArgs {
  /** Flag values by name (without `--`); lists collect repeated flags. */
  readonly flags: Record<string, number | string | string[] | boolean | undefined>;
  /** Arguments that are not flags. */
  readonly positional: readonly string[];
}

/** Parses `--name value` / `--name=value` / `--bool` flags against `spec`; unknown flags are errors. */
export function parseArgs(argv: readonly string[], spec: Record<string, FlagKind>): ParsedArgs {
  const flags: ParsedArgs["flags"] = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === "bool") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (kind === "int") {
      if (!/^\d+$/.test(value)) {
        throw new UsageError(`--${name} expects a non-negative integer, got "${value}"`);
      }
      flags[name] = Number(value);
    } else if (kind === "list") {
      flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
    } else {
      flags[name] = value;
    }
  }
  return { flags, positional };
}

/** Validates `--quirk` values. */
export function quirkNames(values: readonly string[] = []): QuirkName[] {
  return values.map((q) => {
    if (!isQuirkName(q)) {
      throw new UsageError(`unknown quirk "${q}" (known: ${QUIRK_NAMES.join(", ")})`);
    }
    return q;
  });
}

/** Validates `--suite` values. */
export function suitesNamed(values: readonly string[]): Suite[] {
  return values.map((name) => {
    const suite = SUITES.find((s) => s.name === name);
    if (!suite) {
      const known = SUITES.map((s) => s.name).join(", ");
      throw new UsageError(`unknown suite "${name}" (known: ${known})`);
    }
    return suite;
  });
}

/** Reads and parses a trace file; every problem becomes a one-line {@link UsageError}. */
export async function loadTrace(file: string): Promise<MachineTrace> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(`${file}: no such file`);
    if (e instanceof Deno.errors.IsADirectory) throw new UsageError(`${file}: is a directory`);
    throw new UsageError(`${file}: cannot read: ${(e as Error).message}`);
  }
  try {
    return parseTrace(text, machineNamed);
  } catch (e) {
    if (e instanceof ItfError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}

/**
 * Runs a CLI body and exits with its code. User mistakes print `<cli>: error: ...` and exit 2;
 * anything else is a bug in warpspec: one line, exit 3 (set WARPSPEC_DEBUG=1 for the stack).
 */
export async function runCli(name: string, body: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await body();
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${name}: error: ${e.message}`);
      code = 2;
    } else {
      console.error(`${name}: internal error: ${(e as Error)?.message ?? e}`);
      if (Deno.env.get("WARPSPEC_DEBUG")) console.error((e as Error)?.stack);
      code = 3;
    }
  }
  Deno.exit(code);
}
