/**
 * Issue 11's floor for the `zip` CLI: through the simulated stack within 1.5× of the ZIP core
 * called directly, on 16 MiB. One run measures, per corpus (`text`: model/zip_fuzz.ts
 * `textCorpus`, seed 1; `random`: bytes of impl/sched.ts `prng`, seed 1) and direction
 * (zlib compression at the default level 6; decompression of the core's level-6 zlib stream):
 *
 * - `core` (the anchor): `compress` / `decompress` of impl/zip on the whole input, in this
 *   process;
 * - `stack`: what the CLI does after reading its arguments, in this process: a machine booted
 *   (impl/wd/zip_sample.ts `zipMachine`), a queue requested, the input streamed through
 *   `zipSample` in 1 MiB pieces (as the CLI reads stdin), the queue released, the output
 *   counted and dropped (the CLI's to a file);
 * - `cli`: `deno run -A model/cli/zip.ts [-d] < input > output` as a child process under
 *   `/usr/bin/time`, which also gives its peak RSS; Deno's start and the module loading count;
 * - `core cli` (the second anchor): bench/zip_core_pipe.ts as a child the same way: stdin read
 *   whole, the core called on it, the result written to stdout; a start, pipes and a cold JIT
 *   as the CLI has them, without the stack.
 *
 * Times are CPU time (user + system; in this process `process.cpuUsage`, of a child what
 * `/usr/bin/time` reports), as medians over rounds that run each in turn (after one warm-up
 * round); the ratios are of the medians: stack and cli against core, cli against core cli.
 * The warm-up round checks every output: compressed streams inflate (node:zlib) to the input,
 * decompressed ones equal it. Run: `deno run -A bench/zip_stack.ts [text|random]…`;
 * ZIP_STACK_REPEATS sets the rounds (default 5).
 *
 * @module
 */

import zlib from "node:zlib";
import process from "node:process";
import { compress, decompress } from "../impl/zip/mod.ts";
import { requestSampleQueue, SAMPLE_CHUNK, zipMachine, zipSample } from "../impl/wd/zip_sample.ts";
import { ZipAlgType } from "../impl/device/zip_engine.ts";
import { Platform } from "../impl/platform.ts";
import { prng } from "../impl/sched.ts";
import { concat, equalBytes, textCorpus } from "../model/zip_fuzz.ts";

const SIZE = 16 << 20;
const repeats = Number(Deno.env.get("ZIP_STACK_REPEATS") ?? 5);
const only = Deno.args;
if (!Number.isInteger(repeats) || repeats < 1) {
  console.error(`zip_stack: ZIP_STACK_REPEATS must be a positive integer`);
  Deno.exit(2);
}

/** Milliseconds of CPU time (user + system) this process used so far. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];

/** `SIZE` bytes of `prng(1)`. */
function randomCorpus(): Uint8Array {
  const rnd = prng(1);
  const out = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) out[i] = rnd() * 256;
  return out;
}

/**
 * The stack path in this process: boot, queue, stream `input` through it, release. With
 * `keep` the output is collected and returned; without, it is counted and dropped, as the CLI
 * writing to /dev/null would, so that the timed rounds do not pay for collecting it.
 */
async function throughStack(
  input: Uint8Array,
  decompressing: boolean,
  keep: boolean,
): Promise<Uint8Array | number> {
  const machine = await zipMachine(new Platform({ quirks: {} }));
  const algType = decompressing ? ZipAlgType.decompress : ZipAlgType.compress;
  const queue = await requestSampleQueue(machine, algType);
  if (typeof queue === "string") throw new Error(`requesting a queue failed: ${queue}`);
  const parts: Uint8Array[] = [];
  let produced = 0;
  function* pieces() {
    for (let at = 0; at < input.length; at += SAMPLE_CHUNK) {
      yield input.subarray(at, at + SAMPLE_CHUNK);
    }
  }
  try {
    const job = { format: "zlib" as const, decompress: decompressing, quirks: {} };
    await zipSample(queue, job, pieces(), (output) => {
      produced += output.length;
      if (keep) parts.push(output);
    });
  } finally {
    await queue.release();
  }
  return keep ? concat(parts) : produced;
}

/** What one child run used: CPU and wall-clock milliseconds, peak RSS in KiB. */
interface ChildRun {
  readonly cpu: number;
  readonly wall: number;
  readonly rssKiB: number;
}

/**
 * Runs `deno run -A SCRIPT [-d]` (a path from this directory) on file `input` into file
 * `output` under `/usr/bin/time`.
 */
async function child(
  script: string,
  input: string,
  output: string,
  decompressing: boolean,
  dir: string,
): Promise<ChildRun> {
  const report = `${dir}/time.txt`;
  // $4 unquoted: no argument at all when not decompressing.
  const sh = 'exec /usr/bin/time -f "%e %U %S %M" -o "$1" "$2" run -A "$3" $4 < "$5" > "$6"';
  const path = new URL(script, import.meta.url).pathname;
  const args = ["-c", sh, "sh", report, Deno.execPath(), path, decompressing ? "-d" : ""];
  const run = await new Deno.Command("sh", { args: [...args, input, output], stderr: "piped" })
    .output();
  if (!run.success) {
    throw new Error(`${script} failed: ${new TextDecoder().decode(run.stderr).trim()}`);
  }
  const [wall, user, sys, rss] = Deno.readTextFileSync(report).trim().split(/\s+/).map(Number);
  return { cpu: (user + sys) * 1000, wall: wall * 1000, rssKiB: rss };
}

/** Fails unless `out` decodes to `plain` (or, `decompressing`, is `plain`). */
function check(what: string, plain: Uint8Array, out: Uint8Array, decompressing: boolean) {
  const decoded = decompressing ? out : new Uint8Array(zlib.inflateSync(out));
  if (!equalBytes(decoded, plain)) {
    throw new Error(`${what}: the output does not decode to the input`);
  }
}

try {
  await new Deno.Command("/usr/bin/time", { args: ["true"] }).output();
} catch {
  console.error("zip_stack: needs /usr/bin/time (Debian package `time`)");
  Deno.exit(2);
}

const corpora: [string, () => Uint8Array][] = [
  ["text", () => textCorpus(1, SIZE)],
  ["random", randomCorpus],
];
for (const name of only) {
  if (!corpora.some(([known]) => known === name)) {
    console.error(`zip_stack: unknown corpus "${name}" (known: text, random)`);
    Deno.exit(2);
  }
}
const dir = Deno.makeTempDirSync({ prefix: "zip_stack" });
console.log(
  "| corpus | direction | core ms | stack ms | cli ms (wall) | core cli ms | stack/core | " +
    "cli/core | cli/core cli | cli peak RSS |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
try {
  for (const [name, make] of corpora) {
    if (only.length > 0 && !only.includes(name)) continue;
    const plain = make();
    const packed = compress(plain, "zlib", 6);
    for (const decompressing of [false, true]) {
      const input = decompressing ? packed : plain;
      const inFile = `${dir}/${name}.in`, outFile = `${dir}/${name}.out`;
      Deno.writeFileSync(inFile, input);
      const core = () => decompressing ? decompress(input, "zlib") : compress(input, "zlib", 6);
      const cpu = { core: [] as number[], stack: [] as number[], cli: [] as number[] };
      const coreCli: number[] = [], walls: number[] = [], rss: number[] = [];
      for (let round = 0; round <= repeats; round++) {
        let t = cpuMs();
        const direct = core();
        const coreMs = cpuMs() - t;
        t = cpuMs();
        const stacked = await throughStack(input, decompressing, round === 0);
        const stackMs = cpuMs() - t;
        const anchor = await child("./zip_core_pipe.ts", inFile, outFile, decompressing, dir);
        if (round === 0) {
          check(`${name} core cli`, plain, Deno.readFileSync(outFile), decompressing);
        }
        const run = await child("../model/cli/zip.ts", inFile, outFile, decompressing, dir);
        if (round === 0) {
          check(`${name} core`, plain, direct, decompressing);
          check(`${name} stack`, plain, stacked as Uint8Array, decompressing);
          check(`${name} cli`, plain, Deno.readFileSync(outFile), decompressing);
          continue; // the warm-up round
        }
        cpu.core.push(coreMs);
        cpu.stack.push(stackMs);
        cpu.cli.push(run.cpu);
        coreCli.push(anchor.cpu);
        walls.push(run.wall);
        rss.push(run.rssKiB);
      }
      const [c, s, l, a] = [cpu.core, cpu.stack, cpu.cli, coreCli].map(median);
      const x = (r: number) => `${r.toFixed(2)}x`;
      console.log(
        `| ${name} | ${decompressing ? "decompress" : "compress -6"} | ${c.toFixed(0)} | ` +
          `${s.toFixed(0)} | ${l.toFixed(0)} (${median(walls).toFixed(0)}) | ${a.toFixed(0)} | ` +
          `${x(s / c)} | ${x(l / c)} | ${x(l / a)} | ${(Math.max(...rss) / 1024).toFixed(0)} MiB |`,
      );
    }
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}
