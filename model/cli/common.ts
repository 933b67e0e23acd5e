/**
 * What every CLI shares: flag parsing, writing all of an output, and the
 * rules that a user mistake is one line on stderr and exit code 2, and a failed run (bad data,
 * an output that cannot be written) one line and exit code 1 (never a stack trace).
 *
 * @module
 */
import { isQuirkName, QUIRK_NAMES, type QuirkName } from "../../impl/quirks.ts";

/** A mistake in how a CLI was called or in the input it was given: exit code 2. */
export class UsageError extends Error {}

/** A run that failed on its data or its output (not on how it was called): exit code 1. */
export class RunError extends Error {}

/** Where output goes: `Deno.stdout`, a file, anything with the `Deno.Writer` contract. */
export interface Writer {
  /** Writes some prefix of `p` and returns its length (possibly less than `p.length`). */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Writes every byte of `data` to `w`, `name` saying what `w` is in messages. A write may take
 * only a prefix (a pipe, a full disk), so this loops until all is written; a failure is a
 * {@link RunError}: the output is not complete and the run must not exit 0.
 */
export async function writeAll(w: Writer, data: Uint8Array, name = "stdout"): Promise<void> {
  for (let off = 0; off < data.length;) {
    let n: number;
    try {
      n = await w.write(data.subarray(off));
    } catch (e) {
      const why = e instanceof Deno.errors.WouldBlock
        ? "the output is non-blocking and full"
        : (e as Error).message;
      throw new RunError(`${name}: write failed after ${off} bytes: ${why}`);
    }
    if (n <= 0) throw new RunError(`${name}: write made no progress after ${off} bytes`);
    off += n;
  }
}

let stdout: Writer | undefined;

/**
 * Standard output as a {@link Writer} whose counts can be trusted. `Deno.stdout.write` goes
 * through Rust's line-buffered stdout: on a non-blocking pipe (O_NONBLOCK belongs to the pipe's
 * open file description, which a parent may have set and every process shares) one call can
 * take bytes and still report WouldBlock, so a retry would duplicate them and giving up would
 * lose them. A pipe is therefore reopened through /dev/stdout: a new, blocking description of
 * the same pipe, written without a buffer. Files and terminals keep `Deno.stdout`.
 */
export async function stdoutWriter(): Promise<Writer> {
  if (!stdout) {
    let fifo = false;
    try {
      fifo = Deno.statSync("/dev/stdout").isFifo === true;
    } catch {
      // no /dev/stdout: Deno.stdout it is
    }
    stdout = fifo ? await Deno.open("/dev/stdout", { write: true }) : Deno.stdout;
  }
  return stdout;
}

const encoder = new TextEncoder();

/** Prints `lines` to stdout, each followed by a newline, all of them or a {@link RunError}. */
export async function printLines(...lines: readonly string[]): Promise<void> {
  await writeAll(await stdoutWriter(), encoder.encode(lines.map((l) => `${l}\n`).join("")));
}

/** The kinds of flag value. */
export type FlagKind = "int" | "string" | "list" | "bool";

/** Parsed flags and positional arguments. */
export interface ParsedArgs {
  /** Flag values by name (without `--`); lists collect repeated flags. */
  readonly flags: Record<string, number | string | string[] | boolean | undefined>;
  /** Arguments that are not flags. */
  readonly positional: readonly string[];
}

/**
 * Parses `--name value` / `--name=value` / `--bool` flags against `spec` (`-h` is `--help`);
 * unknown flags are errors, and every argument after `--` is positional.
 */
export function parseArgs(argv: readonly string[], spec: Record<string, FlagKind>): ParsedArgs {
  const flags: ParsedArgs["flags"] = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] === "-h" ? "--help" : argv[i];
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
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
      if (!Number.isSafeInteger(Number(value))) {
        throw new UsageError(
          `--${name}: ${value} is too large (at most ${Number.MAX_SAFE_INTEGER})`,
        );
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

/**
 * Runs a CLI body and exits with its code. User mistakes print `<cli>: error: ...` and exit 2,
 * a {@link RunError} prints the same and exits 1; anything else is a bug in warpspec: one line,
 * exit 3 (set WARPSPEC_DEBUG=1 for the stack).
 */
export async function runCli(name: string, body: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await body();
  } catch (e) {
    if (e instanceof UsageError || e instanceof RunError) {
      console.error(`${name}: error: ${e.message}`);
      code = e instanceof UsageError ? 2 : 1;
    } else {
      console.error(`${name}: internal error: ${(e as Error)?.message ?? e}`);
      if (Deno.env.get("WARPSPEC_DEBUG")) console.error((e as Error)?.stack);
      code = 3;
    }
  }
  Deno.exit(code);
}

/**
 * Creates `dir` if needed and checks a file can be written there, before any work starts: a
 * bad `flag` value is bad usage (exit 2), not a result lost at the end.
 */
export async function writableDir(flag: string, dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = await Deno.makeTempFile({ dir, prefix: ".warpspec-probe-" });
    await Deno.remove(probe);
  } catch (e) {
    throw new UsageError(`${flag}: cannot write to ${dir}: ${(e as Error).message}`);
  }
}

/**
 * Writes `text` to the file `path`, all of it (Deno's writeTextFile loops over short writes),
 * or fails the run with one line naming the file (exit 1).
 */
export async function writeTextOrFail(path: string, text: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, text);
  } catch (e) {
    throw new RunError(`${path}: cannot write: ${(e as Error).message}`);
  }
}
