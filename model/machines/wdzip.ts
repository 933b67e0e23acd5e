/**
 * The ZIP sample through the whole simulated stack as a {@link Machine}: spec/wdzip.ts against
 * impl/wd/zip_sample.ts (wd queue → user QM driver → QM device → ZIP engine, DMA through the
 * IOMMU). A compression is observed by what its output decodes to. Sequential only (see
 * `races`).
 *
 * @module
 */
import fc from "fast-check";
import type { Ret } from "../../spec/types.ts";
import {
  checkWdzipInvariants,
  initialWdzipState,
  stepWdzip,
  type WdzipCommand,
  wdzipCommandSchema,
  wdzipResults,
  type WdzipState,
} from "../../spec/wdzip.ts";
import { fromHex, zipContent } from "../../spec/zipcrypto.ts";
import type { Kernel } from "../../impl/kernel.ts";
import type { Quirks } from "../../impl/quirks.ts";
import { ImmediateSched, type Sched } from "../../impl/sched.ts";
import {
  runZipSample,
  SAMPLE_QUIRKS,
  type ZipMachine,
  zipMachine,
} from "../../impl/wd/zip_sample.ts";
import { parseWithSchema } from "../commands.ts";
import type { Implementation, Machine } from "../machine.ts";
import { decodedContent, hex, ZIP_SOURCES, ZIP_STREAMS } from "./zip_common.ts";
import { Platform } from "../../impl/platform.ts";

class WdImplementation implements Implementation<WdzipState, WdzipCommand> {
  readonly #kernel: Kernel;
  readonly #booting: Promise<ZipMachine>;
  #machine: ZipMachine | undefined;

  constructor(quirks: Quirks, sched: Sched) {
    const platform = new Platform({ sched, quirks });
    this.#kernel = platform.kernel;
    this.#booting = zipMachine(platform);
  }

  exec(cmd: WdzipCommand) {
    return this.#kernel.traced(async (): Promise<Ret> => {
      const input = fromHex(cmd.data);
      if ((cmd.format !== "zlib" && cmd.format !== "gzip") || !input) return { err: "EINVAL" };
      const decompress = cmd.op === "wd.decompress";
      this.#machine ??= await this.#booting;
      const r = await runZipSample(this.#machine, { input, format: cmd.format, decompress });
      if (typeof r === "string") return { err: r };
      return { ok: decompress ? zipContent(r) : decodedContent(r, cmd.format) };
    });
  }

  observe(): WdzipState {
    const qps = this.#machine?.fn.qm.qps ?? [];
    return { queues: qps.filter((qp) => qp !== null && qp.owner !== "kernel").length };
  }
}

/** The sample machine. */
export const wdzipMachine: Machine<WdzipState, WdzipCommand> = {
  name: "wdzip",
  vars: ["queues"],
  prelude: [],
  quirks: SAMPLE_QUIRKS,
  runs: 100,
  // One sample is one process; without PASIDs two processes share one IOVA space, which the
  // sdmdev machine refuses (single-process rule), so sample runs never race each other.
  races: false,
  initial: initialWdzipState,
  step: stepWdzip,
  violations: checkWdzipInvariants,
  parseCommand: (op, args, opPath, argsPath) =>
    parseWithSchema<WdzipCommand>(wdzipCommandSchema, op, args, opPath, argsPath),
  schema: wdzipCommandSchema,
  results: wdzipResults,
  commands: () =>
    fc.oneof(
      fc.record({
        op: fc.constant("wd.compress" as const),
        format: fc.constantFrom("zlib", "gzip", "lz4"),
        data: fc.constantFrom(...ZIP_SOURCES.map(hex)),
      }),
      fc.record({
        op: fc.constant("wd.decompress" as const),
        format: fc.constantFrom("zlib", "gzip"),
        data: fc.constantFrom(...ZIP_STREAMS),
      }),
    ),
  implementation: (quirks, sched) => new WdImplementation(quirks, sched ?? new ImmediateSched()),
};
