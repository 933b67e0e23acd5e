/**
 * How adapters turn the implementation's answers into the spec's {@link Ret}s, and check the
 * integers a command carries.
 *
 * @module
 */
import type { Errno, Ret } from "../../spec/types.ts";

/** Whether `v` is a safe integer in `[min, max]`. */
export function isInt(v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;
}

/** A value or an errno (a string) as a ret. */
export function value(r: unknown): Ret {
  return typeof r === "string" ? { err: r as Errno } : { ok: r };
}

/** Success (0) or an errno as a ret. */
export function done(r: Errno | undefined): Ret {
  return r === undefined ? { ok: 0 } : { err: r };
}
