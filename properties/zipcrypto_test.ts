/** The crypto path's contract with the compressor: no output exceeds compressBound. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { compressBound } from "../spec/zipcrypto.ts";
import { compress } from "../impl/zip/mod.ts";
import { testSeed } from "../model/seed.ts";

Deno.test("every level and framing stays within compressBound, incompressible data included", () => {
  const data = fc.oneof(
    fc.uint8Array({ maxLength: 70_000, size: "max" }),
    fc.string({ maxLength: 20_000 }).map((s) => new TextEncoder().encode(s)),
  );
  fc.assert(
    fc.property(data, fc.integer({ min: 0, max: 9 }), (src, level) => {
      for (const [alg, format] of [["zlib-deflate", "zlib"], ["gzip", "gzip"]] as const) {
        const out = compress(src, format, level);
        assert.ok(
          out.length <= compressBound(src.length, alg),
          `${format} L${level} ${src.length}`,
        );
      }
    }),
    { seed: testSeed(), numRuns: 60 },
  );
});
