/**
 * The ZIP core called directly as a command, the second anchor of bench/zip_stack.ts:
 * `deno run -A bench/zip_core_pipe.ts [-d] < in > out` reads stdin whole, compresses it to zlib
 * at level 6 (or with `-d` decompresses a zlib stream) with impl/zip in one call, and writes
 * the result to stdout. It loads the core only, so its start is the least a Deno command pays.
 *
 * @module
 */

import { compress, decompress, ZipError } from "../impl/zip/mod.ts";
import { runCli, RunError, UsageError } from "../model/cli/common.ts";

await runCli("zip_core_pipe", async () => {
  const decompressing = Deno.args[0] === "-d";
  if (Deno.args.length > 1 || (Deno.args.length === 1 && !decompressing)) {
    throw new UsageError("usage: deno run -A bench/zip_core_pipe.ts [-d] < in > out");
  }
  const input = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  let output: Uint8Array;
  try {
    output = decompressing ? decompress(input, "zlib") : compress(input, "zlib", 6);
  } catch (e) {
    if (e instanceof ZipError) throw new RunError(`stdin: ${e.message}`);
    throw e;
  }
  for (let at = 0; at < output.length;) at += Deno.stdout.writeSync(output.subarray(at));
  return 0;
});
