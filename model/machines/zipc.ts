/**
 * The ZIP kernel crypto path as a {@link Machine}: spec/zipcrypto.ts against impl/hisi/zip.ts
 * running on the simulated QM, whose device executes the ZIP engine with DMA through the IOMMU.
 *
 * Compressed output is observed by what it means: the implementation's bytes are decoded with
 * the spec's reference decoder and reported as the decoded content's length and CRC-32 (an
 * undecodable output reports length -1). Sources come from a small deterministic corpus
 * (empty, short, text, repetitive, incompressible, oversized) and its zlib/gzip compressions by
 * node:zlib, some truncated or corrupted. A compress `dlen` of -1 / -2 stands for "exactly /
 * one less than compressBound", resolved from the transform's algorithm.
 *
 * @module
 */
import fc from "fast-check";
import {
  checkZipCryptoInvariants,
  compressBound,
  fromHex,
  initialZipCryptoState,
  stepZipCrypto,
  ZIP_ALGS,
  zipContent,
  type ZipCryptoCommand,
  zipCryptoCommandSchema,
  zipCryptoResults,
  type ZipCryptoState,
} from "../../spec/zipcrypto.ts";
import type { Ret } from "../../spec/types.ts";
import { ZipQmEngine } from "../../impl/device/zip_qm_engine.ts";
import type { HisiZipCrypto } from "../../impl/hisi/zip.ts";
import { QmAdapter } from "../adapters/qm.ts";
import type { Kernel } from "../../impl/kernel.ts";
import type { Quirks } from "../../impl/quirks.ts";
import { ImmediateSched, type Sched } from "../../impl/sched.ts";
import { parseWithSchema } from "../commands.ts";
import type { Implementation, Machine } from "../machine.ts";
import { decodedContent, hex, ZIP_SOURCES, ZIP_STREAMS } from "./zip_common.ts";
import { Platform } from "../../impl/platform.ts";

/** Queue pairs of the QM the crypto path runs on. */
const QP_NUM = 4;

function commands(): fc.Arbitrary<ZipCryptoCommand> {
  const tfm = fc.integer({ min: 1, max: 3 });
  const rec = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
  return fc.oneof(
    rec(
      1,
      fc.record({
        op: fc.constant("zipc.init" as const),
        tfm,
        alg: fc.constantFrom("zlib-deflate", "gzip", "lz4"),
      }),
    ),
    rec(1, fc.record({ op: fc.constant("zipc.exit" as const), tfm })),
    rec(
      4,
      fc.record({
        op: fc.constant("zipc.compress" as const),
        tfm,
        data: fc.constantFrom(...ZIP_SOURCES.map(hex)),
        dlen: fc.constantFrom(-1, -1, -2, 8, 65536),
      }),
    ),
    rec(
      4,
      fc.record({
        op: fc.constant("zipc.decompress" as const),
        tfm,
        data: fc.constantFrom(...ZIP_STREAMS),
        dlen: fc.constantFrom(4, 99, 100, 2999, 3000, 20000, 65536),
      }),
    ),
  );
}

/** Fills the `dlen` placeholders of a compression from the transform's algorithm. */
function resolve(s: ZipCryptoState, cmd: ZipCryptoCommand): ZipCryptoCommand {
  if (cmd.op !== "zipc.compress" || cmd.dlen >= 0) return cmd;
  const alg = s.tfms.get(cmd.tfm) ?? "zlib-deflate";
  const bound = compressBound((fromHex(cmd.data) ?? new Uint8Array(0)).length, alg);
  return { ...cmd, dlen: cmd.dlen === -1 ? bound : bound - 1 };
}

/** The crypto path on a simulated QM with the ZIP engine. */
class ZipCryptoImplementation implements Implementation<ZipCryptoState, ZipCryptoCommand> {
  readonly #kernel: Kernel;
  readonly #qm: QmAdapter;
  readonly #zip: HisiZipCrypto;

  constructor(quirks: Quirks, sched: Sched) {
    const platform = new Platform({ sched, quirks });
    this.#kernel = platform.kernel;
    const config = { qpNum: QP_NUM, sqDepth: 4, cqDepth: 4, eqDepth: 8 };
    this.#qm = new QmAdapter(platform, config, new ZipQmEngine(this.#kernel));
    this.#zip = this.#qm.crypto;
  }

  exec(cmd: ZipCryptoCommand) {
    return this.#kernel.traced(async (): Promise<Ret> => {
      switch (cmd.op) {
        case "zipc.init": {
          const e = await this.#zip.init(cmd.tfm, cmd.alg);
          return e === undefined ? { ok: 0 } : { err: e };
        }
        case "zipc.exit": {
          const e = await this.#zip.exit(cmd.tfm);
          return e === undefined ? { ok: 0 } : { err: e };
        }
        case "zipc.compress":
        case "zipc.decompress": {
          const src = fromHex(cmd.data);
          if (!src) return { err: "EINVAL" };
          const alg = this.#zip.tfms.get(cmd.tfm)?.alg;
          const run = cmd.op === "zipc.compress" ? this.#zip.compress : this.#zip.decompress;
          const reply = await run.call(this.#zip, cmd.tfm, src, cmd.dlen);
          if (typeof reply === "string") return { err: reply };
          if (!(reply instanceof Uint8Array)) return { ok: reply.status };
          const format = cmd.op === "zipc.compress" && alg ? ZIP_ALGS[alg] : null;
          return { ok: format ? decodedContent(reply, format) : zipContent(reply) };
        }
      }
    });
  }

  observe(): ZipCryptoState {
    const tfms = new Map([...this.#zip.tfms].map(([id, t]) => [id, t.alg]));
    return { qpFree: this.#qm.qm.qps.filter((q) => q === null).length, tfms };
  }
}

/** The ZIP crypto-path machine. */
export const zipcMachine: Machine<ZipCryptoState, ZipCryptoCommand> = {
  name: "zipc",
  vars: ["qpFree", "tfms"],
  prelude: [
    { op: "zipc.init", tfm: 1, alg: "zlib-deflate" },
    { op: "zipc.init", tfm: 2, alg: "gzip" },
  ],
  quirks: ["positiveStatusAsError", "producedNotCheckedAgainstDlen", "releaseQpBeforeBuffers"],
  initial: () => initialZipCryptoState(QP_NUM),
  step: stepZipCrypto,
  violations: checkZipCryptoInvariants,
  parseCommand: (op, args, opPath, argsPath) =>
    parseWithSchema<ZipCryptoCommand>(zipCryptoCommandSchema, op, args, opPath, argsPath),
  schema: zipCryptoCommandSchema,
  results: zipCryptoResults,
  runs: 1000,
  commands,
  raceCommands: () =>
    commands().filter((c) => c.op === "zipc.compress" || c.op === "zipc.decompress"),
  resolve,
  implementation: (quirks, sched) =>
    new ZipCryptoImplementation(quirks, sched ?? new ImmediateSched()),
};
