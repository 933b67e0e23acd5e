/**
 * Prints the ZIP core's scorecard: per corpus (bench/zip_corpora.ts), compression
 * throughput and output size for ours at levels 1, 6 and 9 and for fflate, pako and
 * node:zlib at level 6, with the ratios the targets are stated in, then decompression
 * throughput against pako and node:zlib. Run: `deno run -A bench/zip_ratio.ts`.
 */

import zlib from "node:zlib";
import * as fflate from "fflate";
import pako from "pako";
import { compress, decompress } from "../impl/zip/mod.ts";
import { zipCorpora } from "./zip_corpora.ts";

const repeats = Number(Deno.env.get("ZIP_RATIO_REPEATS") ?? 5);

/** Median seconds of `repeats` runs (after one warm-up) and the result of the last one. */
function measure(f: () => Uint8Array): { seconds: number; out: Uint8Array } {
  let out = f();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    out = f();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return { seconds: times[times.length >> 1], out };
}

const mb = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(1);
const pct = (a: number, b: number) => `${a >= b ? "+" : ""}${((a / b - 1) * 100).toFixed(2)}%`;

for (const [name, data] of zipCorpora()) {
  console.log(`\n## ${name}: ${data.length} bytes`);
  const rows: [string, () => Uint8Array][] = [
    ["ours 1", () => compress(data, "deflate", 1)],
    ["ours 6", () => compress(data, "deflate", 6)],
    ["ours 9", () => compress(data, "deflate", 9)],
    ["fflate 6", () => fflate.deflateSync(data, { level: 6 })],
    ["pako 6", () => pako.deflateRaw(data, { level: 6 })],
    ["node:zlib 6", () => new Uint8Array(zlib.deflateRawSync(data, { level: 6 }))],
  ];
  const results = new Map(rows.map(([label, f]) => [label, measure(f)]));
  const fflate6 = results.get("fflate 6")!, pako6 = results.get("pako 6")!;
  console.log("| compress | MB/s | bytes | speed vs fflate 6 | size vs pako 6 |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [label, r] of results) {
    const speed = (fflate6.seconds / r.seconds).toFixed(2);
    console.log(
      `| ${label} | ${mb(data.length, r.seconds)} | ${r.out.length} | ${speed}x | ${
        pct(r.out.length, pako6.out.length)
      } |`,
    );
  }
  const l1 = results.get("ours 1")!, l6 = results.get("ours 6")!;
  console.log(`ours level 1 vs ours level 6 throughput: ${(l6.seconds / l1.seconds).toFixed(2)}x`);

  const packed = pako6.out;
  const inflaters: [string, () => Uint8Array][] = [
    ["ours", () => decompress(packed, "deflate")],
    ["fflate", () => fflate.inflateSync(packed)],
    ["pako", () => pako.inflateRaw(packed)],
    ["node:zlib", () => new Uint8Array(zlib.inflateRawSync(packed))],
  ];
  const inflated = new Map(inflaters.map(([label, f]) => [label, measure(f)]));
  const ours = inflated.get("ours")!;
  console.log("| decompress | MB/s (output) | ours vs this |");
  console.log("|---|---:|---:|");
  for (const [label, r] of inflated) {
    console.log(
      `| ${label} | ${mb(data.length, r.seconds)} | ${(r.seconds / ours.seconds).toFixed(2)}x |`,
    );
  }
}
