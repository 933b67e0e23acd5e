/**
 * Prints the ZIP core's scorecard against node:zlib, measured in the same run: per corpus
 * (bench/zip_corpora.ts), compression at levels 1, 6 and 9 (throughput ratio and output
 * size against node:zlib at the same level) and decompression of node:zlib's level-6
 * stream, each against the floor issue 8 sets (level 6 ≥ 0.65× at ≤ +0.5% size, level 1
 * ≥ 0.5×, level 9 ≥ 0.4×, inflate ≥ 0.65×), then fflate and pako at level 6 for reference.
 * Run: `deno run -A bench/zip_ratio.ts [corpus…]`; ZIP_RATIO_REPEATS sets the timed runs.
 *
 * Each cell times ours and node:zlib alternately, round after round, after warm-up rounds
 * over at least 16 MiB (at least two), so that V8 has compiled our hot loops with its
 * optimizing tier (on the 2 MB corpus two rounds are not enough for that). It reports the
 * median of the per-round ratios: by CPU time of this process (user + system, which also
 * charges us for V8's compiler and GC threads) and, in parentheses, by wall-clock time. On
 * a loaded machine the CPU-time ratio is the steadier one: wall-clock time also counts the
 * time the process waited for a core. Floors are judged on the CPU-time ratio.
 */

import zlib from "node:zlib";
import process from "node:process";
import * as fflate from "fflate";
import pako from "pako";
import { compress, decompress } from "../impl/zip/mod.ts";
import { zipCorpora } from "./zip_corpora.ts";

const repeats = Number(Deno.env.get("ZIP_RATIO_REPEATS") ?? 7);
const only = Deno.args;

/** Milliseconds of CPU time (user + system) this process used so far. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

/** One timed run of `f`: its result and its CPU and wall-clock milliseconds. */
function timed(f: () => Uint8Array): { out: Uint8Array; cpu: number; wall: number } {
  const c0 = cpuMs(), w0 = performance.now();
  const out = f();
  return { out, cpu: cpuMs() - c0, wall: performance.now() - w0 };
}

/**
 * Times `ours` against `node` on `bytes` of input in alternating rounds (warm-up rounds
 * over at least 16 MiB first, at least two): the medians
 * of node's time over ours per round (CPU and wall clock), our median wall-clock seconds and
 * node's, and both outputs.
 */
function race(bytes: number, ours: () => Uint8Array, node: () => Uint8Array) {
  const warmup = Math.max(2, Math.ceil((16 << 20) / bytes));
  for (let i = 0; i < warmup; i++) {
    ours();
    node();
  }
  const cpu: number[] = [], wall: number[] = [], oursWall: number[] = [], nodeWall: number[] = [];
  let a = timed(ours), b = timed(node);
  for (let i = 0; i < repeats; i++) {
    a = timed(ours);
    b = timed(node);
    cpu.push(b.cpu / a.cpu);
    wall.push(b.wall / a.wall);
    oursWall.push(a.wall / 1000);
    nodeWall.push(b.wall / 1000);
  }
  return {
    cpu: median(cpu),
    wall: median(wall),
    ours: { seconds: median(oursWall), out: a.out },
    node: { seconds: median(nodeWall), out: b.out },
  };
}

/** Median seconds of `repeats` runs of `f` (after one warm-up) and its output. */
function measure(f: () => Uint8Array): { seconds: number; out: Uint8Array } {
  let out = f();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = timed(f);
    out = t.out;
    times.push(t.wall / 1000);
  }
  return { seconds: median(times), out };
}

const mb = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(1);
const pct = (a: number, b: number) => `${a >= b ? "+" : ""}${((a / b - 1) * 100).toFixed(2)}%`;
const floors: Record<number, number> = { 1: 0.5, 6: 0.65, 9: 0.4 };
const inflateFloor = 0.65;

for (const [name, data] of zipCorpora()) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(`\n## ${name}: ${data.length} bytes`);
  console.log(
    "| level | ours MB/s | node:zlib MB/s | speed cpu (wall) | floor | ours bytes | size vs node |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const level of [1, 6, 9]) {
    const r = race(
      data.length,
      () => compress(data, "deflate", level),
      () => new Uint8Array(zlib.deflateRawSync(data, { level })),
    );
    const size = r.ours.out.length, nodeSize = r.node.out.length;
    const sizeOk = level !== 6 || size <= nodeSize * 1.005;
    const met = r.cpu >= floors[level] && sizeOk ? "met" : "MISSED";
    console.log(
      `| ${level} | ${mb(data.length, r.ours.seconds)} | ${mb(data.length, r.node.seconds)} | ` +
        `${r.cpu.toFixed(2)}x (${r.wall.toFixed(2)}x) | ${floors[level]} ${met} | ${size} | ` +
        `${pct(size, nodeSize)} |`,
    );
  }
  const packed = new Uint8Array(zlib.deflateRawSync(data, { level: 6 }));
  const r = race(
    data.length,
    () => decompress(packed, "deflate"),
    () => new Uint8Array(zlib.inflateRawSync(packed)),
  );
  console.log(
    `| inflate | ${mb(data.length, r.ours.seconds)} | ${mb(data.length, r.node.seconds)} | ` +
      `${r.cpu.toFixed(2)}x (${r.wall.toFixed(2)}x) | ${inflateFloor} ` +
      `${r.cpu >= inflateFloor ? "met" : "MISSED"} | | |`,
  );
  const f6 = measure(() => fflate.deflateSync(data, { level: 6 }));
  const p6 = measure(() => pako.deflateRaw(data, { level: 6 }));
  console.log(
    `level 6, MB/s and bytes: fflate ${mb(data.length, f6.seconds)} ${f6.out.length}, ` +
      `pako ${mb(data.length, p6.seconds)} ${p6.out.length}`,
  );
}
