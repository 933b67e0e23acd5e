/**
 * Fuzzing the decompressor with mutated valid streams and random bytes, and the compressor
 * with generated inputs, flush points and output budgets (model/zip_fuzz.ts), with a fixed
 * seed and a bounded number of cases; WARPSPEC_SEED overrides the seed.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import zlib from "node:zlib";
import { isZipError, type ZipFormat, ZipStatus } from "../spec/zip.ts";
import { compress, DecompressStream, ZipError } from "../impl/zip/mod.ts";
import { runCompressFuzz, runZipFuzz, textCorpus } from "../model/zip_fuzz.ts";

export { runZipFuzz } from "../model/zip_fuzz.ts";

const seed = Number(Deno.env.get("WARPSPEC_SEED") ?? 20180903);
console.log(`zip_fuzz: WARPSPEC_SEED=${seed}`);

Deno.test("zip fuzz: mutated and random streams (runZipFuzz)", () => {
  const report = runZipFuzz(seed, 4000);
  assert.deepEqual(report.failures.slice(0, 3), []);
  assert.ok(report.bothRejected > 1000, `only ${report.bothRejected} cases were rejected`);
});

Deno.test("zip fuzz: compressor at every level, framing, flush point and budget", () => {
  const report = runCompressFuzz(seed, 500);
  assert.deepEqual(report.failures.slice(0, 3), []);
  assert.ok(report.flushed > 300, `only ${report.flushed} cases flushed`);
});

Deno.test("zip fuzz: truncation at every byte is an error exactly like node:zlib", () => {
  const data = textCorpus(seed, 2000);
  for (const format of ["deflate", "zlib", "gzip"] as ZipFormat[]) {
    const whole = compress(data, format, 6);
    for (let cut = 0; cut < whole.length; cut++) {
      const part = whole.subarray(0, cut);
      const r = new DecompressStream(format).push(part, 1 << 20, true);
      assert.equal(r.status, ZipStatus.truncatedInput, `${format} cut at ${cut}`);
      assert.ok(r.error instanceof ZipError);
      const node = format === "deflate"
        ? () => zlib.inflateRawSync(part)
        : format === "zlib"
        ? () => zlib.inflateSync(part)
        : () => zlib.gunzipSync(part);
      assert.throws(node);
    }
  }
});

Deno.test("zip fuzz: arbitrary bytes never throw untyped and never overrun (fast-check)", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 400 }),
      fc.constantFrom<ZipFormat>("deflate", "zlib", "gzip"),
      fc.integer({ min: 0, max: 300 }),
      (data, format, space) => {
        const s = new DecompressStream(format);
        const r = s.push(data, space, true);
        assert.ok(r.produced <= space && r.output.length === r.produced);
        if (r.error) assert.ok(isZipError(r.status) && r.error instanceof ZipError);
        const again = s.push(new Uint8Array(0), space, true);
        if (r.error) assert.equal(again.status, r.status, "errors are sticky");
      },
    ),
    { seed, numRuns: 1500 },
  );
});
