/**
 * Prints the ZIP core's scorecard against node:zlib, measured in the same run: per corpus
 * (bench/zip_corpora.ts), compression at levels 1, 6 and 9 (throughput ratio and output
 * size against node:zlib at the same level) and decompression of node:zlib's level-6
 * stream, each against the floor issue 8 sets (level 6 ≥ 0.65× at ≤ +0.5% size, level 1
 * ≥ 0.5×, level 9 ≥ 0.4×, inflate ≥ 0.65×), then fflate and pako at level 6 for reference.
 * Run: `deno run -A bench/zip_ratio.ts [corpus…]`; ZIP_RATIO_REPEATS sets the timed runs.
 */

import zlib from "node:zlib";
import * as fflate from "fflate";
import pako from "pako";
import { compress, decompress } from "../impl/zip/mod.ts";
import { zipCorpora } from "./zip_corpora.ts";

const repeats = Number(Deno.env.get("ZIP_RATIO_REPEATS") ?? 5);
const only = Deno.args;

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
const floors: Record<number, number> = { 1: 0.5, 6: 0.65, 9: 0.4 };
const inflateFloor = 0.65;

for (const [name, data] of zipCorpora()) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(`\n## ${name}: ${data.length} bytes`);
  console.log("| level | ours MB/s | node:zlib MB/s | speed | floor | ours bytes | size vs node |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const level of [1, 6, 9]) {
    const ours = measure(() => compress(data, "deflate", level));
    const node = measure(() => new Uint8Array(zlib.deflateRawSync(data, { level })));
    const speed = node.seconds / ours.seconds;
    const sizeOk = level !== 6 || ours.out.length <= node.out.length * 1.005;
    const met = speed >= floors[level] && sizeOk ? "met" : "MISSED";
    console.log(
      `| ${level} | ${mb(data.length, ours.seconds)} | ${mb(data.length, node.seconds)} | ` +
        `${speed.toFixed(2)}x | ${floors[level]} ${met} | ${ours.out.length} | ` +
        `${pct(ours.out.length, node.out.length)} |`,
    );
  }
  const packed = new Uint8Array(zlib.deflateRawSync(data, { level: 6 }));
  const ours = measure(() => decompress(packed, "deflate"));
  const node = measure(() => new Uint8Array(zlib.inflateRawSync(packed)));
  const speed = node.seconds / ours.seconds;
  console.log(
    `| inflate | ${mb(data.length, ours.seconds)} | ${mb(data.length, node.seconds)} | ` +
      `${speed.toFixed(2)}x | ${inflateFloor} ${speed >= inflateFloor ? "met" : "MISSED"} | | |`,
  );
  const f6 = measure(() => fflate.deflateSync(data, { level: 6 }));
  const p6 = measure(() => pako.deflateRaw(data, { level: 6 }));
  console.log(
    `level 6, MB/s and bytes: fflate ${mb(data.length, f6.seconds)} ${f6.out.length}, ` +
      `pako ${mb(data.length, p6.seconds)} ${p6.out.length}`,
  );
}
