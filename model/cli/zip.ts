/**
 * `npm run zip -- [-d] [-g] [--quirk NAME]... < in > out` — compresses (or with `-d`
 * decompresses) stdin to stdout through the whole simulated stack, like the seed's
 * test_hisi_zip: a wd queue, shared buffers, one ZIP request through the user QM driver, the
 * QM device running the ZIP engine with DMA through the IOMMU. zlib by default, gzip with
 * `-g`. The output is a real zlib / gzip stream (`gzip -d`, `zlib.inflateSync` accept it).
 * Empty or oversized input (over 16 MiB) and invalid compressed input are errors (exit 2).
 *
 * @module
 */
import { Kernel } from "../../impl/kernel.ts";
import { PhysMem } from "../../impl/mem/phys.ts";
import { ImmediateSched } from "../../impl/sched.ts";
import { runZipSample, SAMPLE_MAX_INPUT } from "../../impl/wd/zip_sample.ts";
import { zipQmMachine } from "../machines/wdzip.ts";
import {
  parseArgs,
  printLines,
  quirkNames,
  runCli,
  stdoutWriter,
  UsageError,
  writeAll,
} from "./common.ts";

const WHY: Record<string, string> = {
  EINVAL: "invalid input (empty, over 16 MiB, or not a valid stream)",
  ENOSPC: "the output would exceed 16 MiB",
};

async function main(): Promise<number> {
  const { flags, positional } = parseArgs(
    Deno.args.map((a) => (a === "-d" ? "--decompress" : a === "-g" ? "--gzip" : a)),
    { decompress: "bool", gzip: "bool", quirk: "list", help: "bool" },
  );
  if (flags.help) {
    await printLines("usage: npm run zip -- [-d] [-g] [--quirk NAME]... < in > out");
    return 0;
  }
  if (positional.length > 0) throw new UsageError(`unexpected argument "${positional[0]}"`);
  const quirks = Object.fromEntries(
    quirkNames(flags.quirk as string[] | undefined).map((q) => [q, true]),
  );
  const input = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  if (input.length === 0) throw new UsageError("stdin: empty input");
  if (input.length > SAMPLE_MAX_INPUT) {
    throw new UsageError(`stdin: over ${SAMPLE_MAX_INPUT} bytes`);
  }
  const kernel = new Kernel(new ImmediateSched(), new PhysMem(), quirks);
  const r = await runZipSample(zipQmMachine(kernel), {
    input,
    format: flags.gzip ? "gzip" : "zlib",
    decompress: flags.decompress === true,
  });
  if (typeof r === "string") throw new UsageError(`stdin: ${WHY[r] ?? r}`);
  await writeAll(await stdoutWriter(), r);
  return 0;
}

if (import.meta.main) await runCli("zip", main);
