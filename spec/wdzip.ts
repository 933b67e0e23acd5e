/**
 * The `wd` user library as the ZIP sample uses it (RFCv2 7/7 `wd.c`, `test_hisi_zip.c`): a
 * process requests a queue, shares its buffers, sends one ZIP request for a whole input,
 * receives the result and releases everything.
 *
 * Intended behaviour: the output is a complete stream in the requested framing (a zlib file
 * any zlib reader accepts: header, data and Adler-32); an empty input or one over 16 MiB is
 * EINVAL; a decompression of an invalid stream is EINVAL, one whose output exceeds 16 MiB is
 * ENOSPC; and after every request nothing the process opened is left open. As on the crypto
 * path, a compression's output is specified by what it decodes to.
 *
 * This is machine `wdzip`; its ops keep the `wd.` prefix (component `wd`) they had when this was
 * spec/wd.ts, which is now the library's own contract.
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import { referenceDecode } from "./zip.ts";
import { fromHex, ZIP_CONTENT, zipContent } from "./zipcrypto.ts";
import {
  checkInvariants,
  type CommandSchema,
  fail,
  type Invariant,
  type MachineSpec,
  ok,
  type ResultsOf,
  type ResultTable,
  type StepResult,
  type TypedStepResult,
  unknownOp,
} from "./types.ts";

/** Largest input and output of a sample request. */
export const WD_SAMPLE_LIMIT = 16 * 1024 * 1024;

/** What the user side holds: queues it has open. */
export interface WdzipState {
  /** Queues requested and not released. */
  readonly queues: number;
}

/** The sample's requests. */
export type WdzipCommand =
  | { readonly op: "wd.compress"; readonly format: string; readonly data: string }
  | { readonly op: "wd.decompress"; readonly format: string; readonly data: string };

/** The user side before any request. */
export function initialWdzipState(): WdzipState {
  return { queues: 0 };
}

/**
 * Executes one sample request:
 * - `wd.compress {format, data}` (format `zlib` or `gzip`, data hex): ok({@link ZipContent}
 *   of `data`), meaning the output is a complete stream decoding to it; EINVAL for an unknown
 *   format, malformed hex, an empty input or one over {@link WD_SAMPLE_LIMIT}.
 * - `wd.decompress {format, data}`: ok(content of the decoded bytes); EINVAL as above or for
 *   an invalid stream; ENOSPC when the output exceeds {@link WD_SAMPLE_LIMIT}.
 */
export function stepWdzip<C extends WdzipCommand>(
  state: WdzipState,
  cmd: C,
): TypedStepResult<WdzipState, ResultsOf<typeof wdzipResults>[C["op"]]>;
/** stepWdzip of any command, its success value untyped. */
export function stepWdzip(state: WdzipState, cmd: WdzipCommand): StepResult<WdzipState> {
  if (!Object.hasOwn(wdzipCommandSchema, cmd.op)) unknownOp(cmd);
  const src = fromHex(cmd.data);
  if ((cmd.format !== "zlib" && cmd.format !== "gzip") || !src) return fail(state, "EINVAL");
  if (src.length === 0 || src.length > WD_SAMPLE_LIMIT) return fail(state, "EINVAL");
  const format = cmd.format;
  return match(cmd.op)
    .with(
      "wd.compress",
      (): StepResult<WdzipState> => ({ state, ret: ok(zipContent(src)), events: [] }),
    )
    .with("wd.decompress", (): StepResult<WdzipState> => {
      const r = referenceDecode(src, format);
      if ("err" in r) return fail(state, "EINVAL");
      if (r.ok.length > WD_SAMPLE_LIMIT) return fail(state, "ENOSPC");
      return { state, ret: ok(zipContent(r.ok)), events: [] };
    })
    .exhaustive(unknownOp);
}

/** The user side's invariants. */
export const wdzipInvariants: readonly Invariant<WdzipState>[] = [
  {
    name: "wd.released",
    scope: "between-ops",
    check: (s) => s.queues === 0 ? undefined : `${s.queues} queues left open after a request`,
  },
];

/** Every violated invariant of `state`, as `name: message`. */
export function checkWdzipInvariants(
  state: WdzipState,
  scope?: Invariant<WdzipState>["scope"],
): string[] {
  return checkInvariants(wdzipInvariants, state, scope);
}

/** Every sample op and its argument fields (public API: validates traces, generates commands). */
export const wdzipCommandSchema: CommandSchema<WdzipCommand["op"]> = {
  "wd.compress": { format: "string", data: "string" },
  "wd.decompress": { format: "string", data: "string" },
};

/** The shape of every sample op's success value: the content's length and CRC. */
export const wdzipResults = {
  "wd.compress": ZIP_CONTENT,
  "wd.decompress": ZIP_CONTENT,
} as const satisfies ResultTable<WdzipCommand["op"]>;

/** The ZIP sample through the wd library as one record. */
export const wdzipSpec: MachineSpec<WdzipState, WdzipCommand> = {
  component: "wd",
  initial: initialWdzipState,
  step: stepWdzip,
  invariants: wdzipInvariants,
  schema: wdzipCommandSchema,
  results: wdzipResults,
};
