/**
 * The ZIP driver's kernel crypto path (RFCv2 5/7 `zip_crypto.c`): the `zlib-deflate` and
 * `gzip` compression algorithms, each transform holding two queue pairs (compress,
 * decompress) of the QM and one 64 KiB input and one 64 KiB output DMA buffer per queue pair.
 *
 * Intended behaviour where the seed is silent or wrong:
 * - a request larger than the input buffer is EINVAL; so is a compression whose worst case
 *   ({@link compressBound}) would not fit the output buffer (the driver sizes its buffers for
 *   the worst case instead of failing after the job ran);
 * - the caller's destination must hold {@link compressBound} bytes for a compression
 *   (ENOSPC otherwise, decided before the job runs, as with compressBound-style APIs); a
 *   decompression whose output does not fit `dlen` is ENOSPC, never an overrun;
 * - a hardware error status becomes an errno (EINVAL for bad data), never a positive return;
 * - compressed output is specified by what it means: `ok` carries the length and CRC-32 of
 *   the bytes it decodes to with {@link referenceDecode} (any valid stream is a right answer).
 *
 * @module
 */
// The published spec must import with no import map of its user's (see README).
// deno-lint-ignore no-import-prefix
import { match } from "npm:ts-pattern@5.9.2";
import { crc32Reference, referenceDecode, type ZipFormat } from "./zip.ts";
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

/** Bytes in each transform's input and output DMA buffers (`INPUT_BUFFER_SIZE`). */
export const ZIP_BUFFER_SIZE = 64 * 1024;

/** The crypto API algorithm names and the stream framing each produces. */
export const ZIP_ALGS: { readonly "zlib-deflate": ZipFormat; readonly gzip: ZipFormat } = {
  "zlib-deflate": "zlib",
  gzip: "gzip",
};

/** An algorithm name. */
export type ZipAlg = keyof typeof ZIP_ALGS;

/** The state: free queue pairs and the live transforms. */
export interface ZipCryptoState {
  /** Queue pairs of the QM not in use. */
  readonly qpFree: number;
  /** Live transforms by id, with their algorithm. */
  readonly tfms: ReadonlyMap<number, ZipAlg>;
}

/** Commands of the crypto path. */
export type ZipCryptoCommand =
  | { readonly op: "zipc.init"; readonly tfm: number; readonly alg: string }
  | { readonly op: "zipc.exit"; readonly tfm: number }
  | {
    readonly op: "zipc.compress";
    readonly tfm: number;
    /** The source bytes, hex. */
    readonly data: string;
    /** Room in the caller's destination. */
    readonly dlen: number;
  }
  | {
    readonly op: "zipc.decompress";
    readonly tfm: number;
    /** The compressed source bytes, hex. */
    readonly data: string;
    /** Room in the caller's destination. */
    readonly dlen: number;
  };

/** What a successful compress or decompress returns: the (decoded) content's length and CRC. */
export interface ZipContent {
  /** Bytes of content. */
  readonly length: number;
  /** CRC-32 of the content. */
  readonly crc32: number;
}

/**
 * The most a compression of `length` bytes may produce in `alg`'s framing, the contract every
 * compressor here keeps: every byte stored, with five bytes of stored-block header per 4 KiB
 * (or part) and one more block, plus the framing (zlib 2 + 4 bytes, gzip 10 + 8). Generous on
 * purpose: a compressor may store in blocks as small as 4 KiB.
 */
export function compressBound(length: number, alg: ZipAlg): number {
  const framing = alg === "gzip" ? 18 : 6;
  return length + 5 * (Math.ceil(length / 4096) + 1) + framing;
}

/** Decodes hex, or undefined when `hex` is not an even-length hex string. */
export function fromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The state after the driver probed a QM with `qpNum` queue pairs. */
export function initialZipCryptoState(qpNum = 4): ZipCryptoState {
  return { qpFree: qpNum, tfms: new Map() };
}

/** The {@link ZipContent} of some bytes. */
export function zipContent(bytes: Uint8Array): ZipContent {
  return { length: bytes.length, crc32: crc32Reference(bytes) };
}

/** `hisi_zip_alloc_comp_ctx`: two queue pairs, or EBUSY; EINVAL for an unknown algorithm. */
function init(s: ZipCryptoState, tfm: number, alg: string): StepResult<ZipCryptoState> {
  if (!Object.hasOwn(ZIP_ALGS, alg) || !Number.isSafeInteger(tfm) || tfm < 1) {
    return fail(s, "EINVAL");
  }
  if (s.tfms.has(tfm)) return fail(s, "EEXIST");
  if (s.qpFree < 2) return fail(s, "EBUSY");
  const tfms = new Map(s.tfms).set(tfm, alg as ZipAlg);
  return { state: { qpFree: s.qpFree - 2, tfms }, ret: ok(0), events: [] };
}

/** `hisi_zip_free_comp_ctx`: both queue pairs back. */
function exit(s: ZipCryptoState, tfm: number): StepResult<ZipCryptoState> {
  if (!s.tfms.has(tfm)) return fail(s, "EINVAL");
  const tfms = new Map(s.tfms);
  tfms.delete(tfm);
  return { state: { qpFree: s.qpFree + 2, tfms }, ret: ok(0), events: [] };
}

/** `hisi_zip_compress`. */
function compress(s: ZipCryptoState, tfm: number, hex: string, dlen: number) {
  const alg = s.tfms.get(tfm);
  const src = fromHex(hex);
  if (!alg || !src || !Number.isSafeInteger(dlen) || dlen < 0) return fail(s, "EINVAL");
  const bound = compressBound(src.length, alg);
  if (src.length > ZIP_BUFFER_SIZE || bound > ZIP_BUFFER_SIZE) return fail(s, "EINVAL");
  if (dlen < bound) return fail(s, "ENOSPC");
  return { state: s, ret: ok(zipContent(src)), events: [] };
}

/** `hisi_zip_decompress`. */
function decompress(s: ZipCryptoState, tfm: number, hex: string, dlen: number) {
  const alg = s.tfms.get(tfm);
  const src = fromHex(hex);
  if (!alg || !src || !Number.isSafeInteger(dlen) || dlen < 0) return fail(s, "EINVAL");
  if (src.length > ZIP_BUFFER_SIZE) return fail(s, "EINVAL");
  const r = referenceDecode(src, ZIP_ALGS[alg]);
  if ("err" in r) return fail(s, "EINVAL");
  if (r.ok.length > ZIP_BUFFER_SIZE || r.ok.length > dlen) return fail(s, "ENOSPC");
  return { state: s, ret: ok(zipContent(r.ok)), events: [] };
}

/**
 * Executes one crypto-path command:
 * - `zipc.init {tfm, alg}`: ok(0); EINVAL for an unknown algorithm or id, EEXIST for a live
 *   id, EBUSY with fewer than two free queue pairs.
 * - `zipc.exit {tfm}`: ok(0); EINVAL for an unknown transform.
 * - `zipc.compress {tfm, data, dlen}`: ok({@link ZipContent} of `data`), meaning the output
 *   decodes to `data`; EINVAL for an unknown transform, malformed hex, or an input whose worst
 *   case does not fit the output buffer; ENOSPC when `dlen` < {@link compressBound}.
 * - `zipc.decompress {tfm, data, dlen}`: ok({@link ZipContent} of the decoded bytes); EINVAL
 *   for an unknown transform, malformed hex, more than the input buffer, or an invalid stream;
 *   ENOSPC when the decoded bytes exceed the output buffer or `dlen`.
 */
export function stepZipCrypto<C extends ZipCryptoCommand>(
  s: ZipCryptoState,
  cmd: C,
): TypedStepResult<ZipCryptoState, ResultsOf<typeof zipCryptoResults>[C["op"]]>;
/** stepZipCrypto of any command, its success value untyped. */
export function stepZipCrypto(
  state: ZipCryptoState,
  cmd: ZipCryptoCommand,
): StepResult<ZipCryptoState> {
  return match(cmd)
    .with({ op: "zipc.init" }, (c) => init(state, c.tfm, c.alg))
    .with({ op: "zipc.exit" }, (c) => exit(state, c.tfm))
    .with({ op: "zipc.compress" }, (c) => compress(state, c.tfm, c.data, c.dlen))
    .with({ op: "zipc.decompress" }, (c) => decompress(state, c.tfm, c.data, c.dlen))
    .exhaustive(unknownOp);
}

/** The crypto path's invariants. */
export const zipCryptoInvariants: readonly Invariant<ZipCryptoState>[] = [
  {
    name: "zipc.qp-accounting",
    scope: "always",
    check: (s) => s.qpFree < 0 ? `qpFree is ${s.qpFree}` : undefined,
  },
];

/** Every violated crypto-path invariant, as `name: message`. */
export function checkZipCryptoInvariants(
  state: ZipCryptoState,
  scope?: Invariant<ZipCryptoState>["scope"],
): string[] {
  return checkInvariants(zipCryptoInvariants, state, scope);
}

/** Every crypto-path op and its argument fields (public API: validates traces, generates commands). */
export const zipCryptoCommandSchema: CommandSchema<ZipCryptoCommand["op"]> = {
  "zipc.init": { tfm: "int", alg: "string" },
  "zipc.exit": { tfm: "int" },
  "zipc.compress": { tfm: "int", data: "string", dlen: "int" },
  "zipc.decompress": { tfm: "int", data: "string", dlen: "int" },
};

/** A {@link ZipContent}, as a result shape. */
export const ZIP_CONTENT = { record: { length: "int", crc32: "int" } } as const;

/** The shape of every crypto-path op's success value. */
export const zipCryptoResults = {
  "zipc.init": "zero",
  "zipc.exit": "zero",
  "zipc.compress": ZIP_CONTENT,
  "zipc.decompress": ZIP_CONTENT,
} as const satisfies ResultTable<ZipCryptoCommand["op"]>;

/** The ZIP driver's kernel crypto path as one record (configured by its qp count). */
export const zipCryptoSpec: MachineSpec<ZipCryptoState, ZipCryptoCommand, number> = {
  component: "zipc",
  initial: initialZipCryptoState,
  step: stepZipCrypto,
  invariants: zipCryptoInvariants,
  schema: zipCryptoCommandSchema,
  results: zipCryptoResults,
};
